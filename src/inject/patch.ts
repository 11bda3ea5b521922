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

function keysOf(value: object): string[] {
  return Array.isArray(value) ? Array.from(value, (_, i) => String(i)) : Object.keys(value);
}

function generate(before: object, after: object, patch: Operation[], path: string): void {
  if (before === after) return;
  const was = before as Record<string, unknown>;
  const now = after as Record<string, unknown>;
  const isArray = Array.isArray(after);
  const oldKeys = keysOf(before);
  const newKeys = keysOf(after);
  let deleted = false;
  // Old keys last to first, so that removals from an array keep the indexes of those still to come.
  for (let t = oldKeys.length - 1; t >= 0; t--) {
    const key = oldKeys[t]!;
    const oldValue = was[key];
    if (Object.hasOwn(now, key) && !(now[key] === undefined && oldValue !== undefined && !isArray)) {
      const newValue = now[key];
      if (typeof oldValue === 'object' && oldValue !== null && typeof newValue === 'object' && newValue !== null
        && Array.isArray(oldValue) === Array.isArray(newValue)) {
        generate(oldValue, newValue, patch, `${path}/${segment(key)}`);
      } else if (oldValue !== newValue) {
        patch.push({ op: 'replace', path: `${path}/${segment(key)}`, value: newValue === undefined ? null : newValue });
      }
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
