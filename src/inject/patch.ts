// The RFC 6902 patch from one object to another (the webhook's and the dry run's), as fast-json-patch's compare() makes it (the same
// operations, in the same order), but with the new values themselves rather than deep copies of
// them: compare() copies each value it adds through JSON.stringify and JSON.parse, and the sidecar
// container it adds cost the webhook more to copy than to diff. The engine's new objects are its
// own and are never modified afterwards, so the patch may share them.
import type { Operation } from 'fast-json-patch';

/** "/"-joined path segment with "~" and "/" escaped (RFC 6901). */
function segment(key: string): string {
  return key.includes('/') || key.includes('~') ? key.replaceAll('~', '~0').replaceAll('/', '~1') : key;
}

/** A value present before and after: the patch between them at `path`. */
function change(oldValue: unknown, newValue: unknown, patch: Operation[], path: string): void {
  if (typeof oldValue === 'object' && oldValue !== null && typeof newValue === 'object' && newValue !== null
    && Array.isArray(oldValue) === Array.isArray(newValue)) {
    generate(oldValue, newValue, patch, path);
  } else if (oldValue !== newValue) {
    patch.push({ op: 'replace', path, value: newValue === undefined ? null : newValue });
  }
}

// Arrays walked by index: compare()'s key lists of index strings cost more than the rest of the walk.
function generateArray(was: unknown[], now: unknown[], patch: Operation[], path: string): void {
  let deleted = false;
  // Last to first, so that removals keep the indexes of those still to come.
  for (let i = was.length - 1; i >= 0; i--) {
    if (Object.hasOwn(now, i)) {
      // The same value (a container the engine did not touch) has no patch: its path is not even built.
      if (now[i] !== was[i]) change(was[i], now[i], patch, `${path}/${i}`);
    } else {
      patch.push({ op: 'remove', path: `${path}/${i}` });
      deleted = true;
    }
  }
  if (!deleted && now.length === was.length) return;
  for (let i = 0; i < now.length; i++) {
    if (!Object.hasOwn(was, i) && now[i] !== undefined) patch.push({ op: 'add', path: `${path}/${i}`, value: now[i] });
  }
}

function generate(before: object, after: object, patch: Operation[], path: string): void {
  if (before === after) return;
  const isArray = Array.isArray(after);
  if (isArray && Array.isArray(before)) {
    generateArray(before, after, patch, path);
    return;
  }
  const was = before as Record<string, unknown>;
  const now = after as Record<string, unknown>;
  const oldKeys = Array.isArray(before) ? Array.from(before, (_, i) => String(i)) : Object.keys(before);
  const newKeys = isArray ? Array.from(after, (_, i) => String(i)) : Object.keys(after);
  let deleted = false;
  // Old keys last to first, as compare() does.
  for (let t = oldKeys.length - 1; t >= 0; t--) {
    const key = oldKeys[t]!;
    const oldValue = was[key];
    if (Object.hasOwn(now, key) && !(now[key] === undefined && oldValue !== undefined && !isArray)) {
      if (now[key] !== oldValue) change(oldValue, now[key], patch, `${path}/${segment(key)}`);
    } else if (Array.isArray(before) === isArray) {
      patch.push({ op: 'remove', path: `${path}/${segment(key)}` });
      deleted = true;
    } else {
      patch.push({ op: 'replace', path, value: after });
    }
  }
  if (!deleted && newKeys.length === oldKeys.length) return;
  for (const key of newKeys) {
    if (!Object.hasOwn(was, key) && now[key] !== undefined) patch.push({ op: 'add', path: `${path}/${segment(key)}`, value: now[key] });
  }
}

/** The patch from `before` to `after` (plain JSON objects); its values are `after`'s own, not copies. */
export function diff(before: object, after: object): Operation[] {
  const patch: Operation[] = [];
  generate(before, after, patch, '');
  return patch;
}
