// Shape checks for decoded JSON/YAML, shared by every mode that reads Kubernetes objects or config.

export type JsonObject = Record<string, unknown>;

/** A JSON object (a mapping): not null, not an array. */
export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Whether a text is JSON rather than YAML, decided as kubectl does: its first character after spaces is "{". */
export function looksLikeJson(text: string): boolean {
  return /^\uFEFF?[ \t\r\n]*\{/.test(text);
}

/** "line L, column C" (1-based) of an offset in `text`. */
function position(text: string, offset: number): string {
  let line = 1;
  let start = 0;
  for (let i = text.indexOf('\n'); i !== -1 && i < offset; i = text.indexOf('\n', i + 1)) {
    line++;
    start = i + 1;
  }
  return `line ${line}, column ${offset - start + 1}`;
}

/**
 * The syntax error of the JSON value at [start, end) of `text`, as "what (line L, column C)" counted
 * in the whole text; undefined when it parses.
 */
export function jsonSyntaxProblem(text: string, start = 0, end = text.length): string | undefined {
  try {
    JSON.parse(text.slice(start, end));
    return undefined;
  } catch (err) {
    const message = (err as Error).message;
    const at = / in JSON at position (\d+)/.exec(message);
    const what = message.replace(/ in JSON at position \d+.*$/, '').replace(/ \(line \d+ column \d+\)$/, '');
    return `${what} (${position(text, at === null ? end : start + Number(at[1]))})`;
  }
}

/**
 * Where each top-level value of a JSON stream starts and ends ("{...} {...}", as kubectl reads and
 * `promux inject -o json` writes): a scan of brackets outside strings, checked by JSON.parse after.
 */
export function jsonStreamSpans(text: string): { start: number; end: number }[] {
  const spans: { start: number; end: number }[] = [];
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  const space = (c: string | undefined): boolean => c === ' ' || c === '\t' || c === '\n' || c === '\r';
  while (i < text.length) {
    while (space(text[i])) i++;
    if (i >= text.length) break;
    const start = i;
    let depth = 0;
    let inString = false;
    for (; i < text.length; i++) {
      const c = text[i];
      if (inString) {
        if (c === '\\') i++;
        else if (c === '"') inString = false;
      } else if (c === '"') inString = true;
      else if (c === '{' || c === '[') depth++;
      else if (c === '}' || c === ']') {
        depth--;
        if (depth <= 0) {
          i++;
          break;
        }
      } else if (depth === 0 && space(c)) break;
    }
    spans.push({ start, end: i });
  }
  return spans;
}
