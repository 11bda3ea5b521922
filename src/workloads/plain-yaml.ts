// Block-style YAML, the way kubectl, helm and kustomize write manifests, read and written without the
// yaml library's general machinery (its parser, composer and stringifier cost about ten times more).
// The subset: a block mapping at the top, block mappings and sequences (indentless ones too), flow
// collections on one line, plain and quoted scalars on one line, integers, true, false, null, and
// comments and blank lines. Anything else (block scalars, anchors, tags, multi-line scalars and flow
// collections, tabs, floats...) is left to yaml: reading returns undefined. Edits are written here
// when the document's only comments are lines at its top (helm's "# Source: ...") and it has no
// blank lines; otherwise (and where a rule below does not settle how yaml would write something)
// editing throws Unsupported, and yaml edits and writes the document. What is read and written here is what yaml
// reads and writes for the same text, byte for byte (test/workloads/plain-yaml.test.ts holds
// generated documents and edits against yaml), so which road a document takes never shows.
import type { Operation } from 'fast-json-patch';
import { Document, Pair, Scalar, YAMLMap, YAMLSeq } from 'yaml';

/** The quoting a scalar was written with; kept when an edit replaces its value (as yaml keeps its node). */
type Style = 'PLAIN' | 'QUOTE_DOUBLE' | 'QUOTE_SINGLE';

interface ScalarNode {
  kind: 'scalar';
  value: string | number | boolean | null;
  /** undefined for a value an edit created (yaml writes it in its default style). */
  style?: Style;
}
interface MapNode {
  kind: 'map';
  flow: boolean;
  pairs: { key: ScalarNode; value: PlainNode }[];
}
interface SeqNode {
  kind: 'seq';
  flow: boolean;
  items: PlainNode[];
}
type PlainNode = ScalarNode | MapNode | SeqNode;

/** Thrown where the subset ends; the caller hands the document to yaml. */
export class Unsupported extends Error {
  override name = 'Unsupported';
}
const UNSUPPORTED = new Unsupported('outside the block-style subset');
function no(): never {
  throw UNSUPPORTED;
}

// As close to kubectl's YAML reader as yaml allows: merge keys (<<) resolve, a duplicate key is an
// error rather than a silent last-one-wins, and values written out are quoted wherever YAML 1.1
// (Kubernetes' go-yaml) would read them differently: an annotation "yes" must not come back as a bool.
// documents.ts reads and writes with these; so does yamlWrites below, which must write as it does.
export const PARSE_OPTIONS = { merge: true, uniqueKeys: true, compat: 'yaml-1.1' } as const;
export const WRITE_OPTIONS = { lineWidth: 0, flowCollectionPadding: false } as const;

const SPACE = 32;
const NEWLINE = 10;
/** Characters that cannot start a plain scalar (YAML's indicators), "-" aside. */
const INDICATOR = /^[?:,[\]{}#&*!|>'"%@`]/;
const CANONICAL_INT = /^(?:0|-?[1-9][0-9]{0,14})$/;
/** The plain scalars that yaml's schema may resolve to other than a string: numbers, words, "~", "<<". */
const MAYBE_TYPED = /^(?:[-+.0-9~<]|[A-Za-z]{1,5}$)/;
/** The patterns by which yaml's schema (the one it reads with) resolves plain scalars to other types. */
const TYPED = new Document(null, PARSE_OPTIONS).schema.tags.flatMap((tag) =>
  tag.default && tag.tag !== 'tag:yaml.org,2002:str' && 'test' in tag && tag.test instanceof RegExp ? [tag.test] : []);
/** Control characters, DEL, C1, byte order marks, lone surrogates: yaml's rules for these are its own. */
// eslint-disable-next-line no-control-regex -- control characters are what it looks for
const UNUSUAL = /[\x00-\x09\x0b-\x1f\x7f-\x9f\ufeff\ud800-\udfff]/u;

/** The value of a plain scalar as yaml's core schema resolves it, where that is unambiguous. */
function plainValue(text: string, inFlow: boolean): string | number | boolean | null {
  if (text === '' || INDICATOR.test(text) || text.endsWith(' ') || text.endsWith(':') || text.includes(': ') || text.includes(' #')) no();
  if (text.charCodeAt(0) === 45 /* - */ && (text.length === 1 || text.charCodeAt(1) === SPACE)) no();
  // In a flow collection, a colon only before a character that cannot end the scalar ("-a:8443", URLs).
  if (inFlow && /[,[\]{}#]|:(?:[ ,[\]{}]|$)/.test(text)) no();
  if (text === 'null') return null;
  if (text === 'true') return true;
  if (text === 'false') return false;
  if (CANONICAL_INT.test(text)) return Number(text);
  if (MAYBE_TYPED.test(text) && TYPED.some((test) => test.test(text))) no();
  return text;
}

/** The value of a double-quoted scalar's content, for the escapes YAML and JSON share. */
function doubleQuotedValue(content: string): string {
  if (!content.includes('\\')) return content;
  if (/\\(?!["\\/bfnrtu])/.test(content)) no();
  try {
    return JSON.parse(`"${content}"`) as string;
  } catch {
    return no();
  }
}

/** Reads one document's text: line by line, each construct checked against the subset as it comes. */
class Reader {
  private readonly text: string;
  private pos = 0;
  private lineEnd = 0;
  private indent = 0;
  /** Whether comments or blank lines were passed over (which yaml keeps, and this writer cannot). */
  private decorated = false;

  constructor(text: string) {
    // Blank lines at the end are no part of the document as yaml writes it.
    this.text = text.replace(/\n[ \n]*$/, '\n');
  }

  document(): PlainDocument {
    const text = this.text;
    if (UNUSUAL.test(text)) no();
    const marker = text.startsWith('---') && (text.length === 3 || text.charCodeAt(3) === NEWLINE);
    if (marker) this.next(3);
    while (this.pos < text.length && text.charCodeAt(this.pos) === 35 /* # */) this.next(this.pos);
    const head = text.slice(0, this.pos);
    if (!this.toContent()) {
      if (!marker) no();
      // An empty document is where its marker is.
      return new PlainDocument(head, null, 0, this.decorated);
    }
    const contentLine = countLines(text.slice(0, this.pos));
    const root = this.blockMap(0);
    if (this.toContent()) no();
    return new PlainDocument(head, root, contentLine, this.decorated);
  }

  /**
   * Moves to the next line with content, past blank and comment lines; false at the end of the text.
   * Sets `decorated` when it passed any.
   */
  private toContent(): boolean {
    const text = this.text;
    for (; this.pos < text.length; this.next(this.lineEnd)) {
      this.load();
      if (!this.blank() && text.charCodeAt(this.pos + this.indent) !== 35 /* # */) return true;
      this.decorated = true;
    }
    return false;
  }

  /** Moves to the line after the one that ends at or after `from`. */
  private next(from: number): void {
    const end = this.text.indexOf('\n', from);
    this.pos = end === -1 ? this.text.length : end + 1;
  }

  /** Measures the line at `pos`: its end and indentation. */
  private load(): void {
    const text = this.text;
    const end = text.indexOf('\n', this.pos);
    this.lineEnd = end === -1 ? text.length : end;
    let i = this.pos;
    while (i < this.lineEnd && text.charCodeAt(i) === SPACE) i++;
    this.indent = i - this.pos;
  }

  /** Whether the loaded line is empty or all spaces (the end of the text counts as blank). */
  private blank(): boolean {
    return this.pos + this.indent >= this.lineEnd;
  }

  /** Whether the loaded line, at its indentation, is a block sequence item ("- " or a lone "-"). */
  private seqItem(): boolean {
    const at = this.pos + this.indent;
    return this.text.charCodeAt(at) === 45 /* - */ && (at + 1 === this.lineEnd || this.text.charCodeAt(at + 1) === SPACE);
  }

  private blockMap(indent: number): MapNode {
    const map: MapNode = { kind: 'map', flow: false, pairs: [] };
    this.pairsAt(map, indent);
    return checkedKeys(map);
  }

  /** The pairs of a block mapping at `indent`, from the loaded line on, into `map`. */
  private pairsAt(map: MapNode, indent: number): void {
    for (;;) {
      if (!this.toContent() || this.indent < indent) return;
      if (this.indent > indent || this.seqItem()) no();
      this.pair(map, this.pos + indent, indent);
    }
  }

  /** One "key: value" starting at column `at` of the loaded line; moves past the lines it spans. */
  private pair(map: MapNode, at: number, indent: number): void {
    const text = this.text;
    const [key, end] = this.key(at);
    if (text.charCodeAt(end) !== 58 /* : */) no();
    if (typeof key.value !== 'string' || key.value === '__proto__' || key.value.length > 1000) no();
    let value: PlainNode;
    const v = this.skipSpaces(end + 1);
    if (v === this.lineEnd || (text.charCodeAt(v) === 35 /* # */ && v > end + 1)) {
      // The value is on the lines below ("key:", perhaps with a comment after it).
      if (v !== this.lineEnd) this.decorated = true;
      this.next(this.lineEnd);
      if (!this.toContent()) no();
      if (this.indent > indent) value = this.seqItem() ? this.blockSeq(this.indent) : this.blockMap(this.indent);
      else if (this.indent === indent && this.seqItem()) value = this.blockSeq(indent);
      else no();
    } else {
      if (v === end + 1) no(); // a value right after the colon ("a":b)
      value = this.inline(v);
      this.next(this.lineEnd);
    }
    map.pairs.push({ key, value });
  }

  /** A mapping key at `at`: quoted, or plain up to the ": " (or ":" at the end of the line) after it. */
  private key(at: number): [ScalarNode, number] {
    const c = this.text.charCodeAt(at);
    if (c === 34 /* " */ || c === 39 /* ' */) return this.quoted(at, this.lineEnd);
    const i = this.keyEnd(at);
    if (i === -1) no();
    return [{ kind: 'scalar', value: plainValue(this.text.slice(at, i), false), style: 'PLAIN' }, i];
  }

  /** Whether the text at `at` is a mapping key (a compact mapping in a sequence item) rather than a value. */
  private startsPair(at: number): boolean {
    const text = this.text;
    const c = text.charCodeAt(at);
    if (c === 123 /* { */ || c === 91 /* [ */) return false;
    if (c === 34 || c === 39) return text.charCodeAt(this.quoted(at, this.lineEnd)[1]) === 58;
    return this.keyEnd(at) !== -1;
  }

  /** Where the first ": " (or ":" at the end) of the loaded line after `at` is; -1 when there is none. */
  private keyEnd(at: number): number {
    const text = this.text;
    for (let i = at; i < this.lineEnd; i++) {
      if (text.charCodeAt(i) === 58 /* : */ && (i + 1 === this.lineEnd || text.charCodeAt(i + 1) === SPACE)) return i;
    }
    return -1;
  }

  /** Where the first ` #` (a comment) of the loaded line after `at` is; the line's end when there is none. */
  private commentStart(at: number): number {
    const text = this.text;
    for (let i = at; i + 1 < this.lineEnd; i++) {
      if (text.charCodeAt(i) === SPACE && text.charCodeAt(i + 1) === 35 /* # */) return i;
    }
    return this.lineEnd;
  }

  private blockSeq(indent: number): SeqNode {
    const text = this.text;
    const seq: SeqNode = { kind: 'seq', flow: false, items: [] };
    for (;;) {
      if (!this.toContent() || this.indent < indent) break;
      if (this.indent > indent) no();
      if (!this.seqItem()) break;
      const at = this.pos + indent + 2;
      if (at > this.lineEnd) no();
      const c = text.charCodeAt(at);
      if (c === SPACE || c === 35 /* # */ || (c === 45 /* - */ && (at + 1 === this.lineEnd || text.charCodeAt(at + 1) === SPACE))) no();
      if (this.startsPair(at)) {
        const map: MapNode = { kind: 'map', flow: false, pairs: [] };
        this.pair(map, at, indent + 2);
        this.pairsAt(map, indent + 2);
        seq.items.push(checkedKeys(map));
      } else {
        seq.items.push(this.inline(at));
        this.next(this.lineEnd);
      }
    }
    return seq;
  }

  /** A value that takes the rest of the loaded line from `at` (but spaces and a comment): a flow collection or a scalar. */
  private inline(at: number): PlainNode {
    const text = this.text;
    const c = text.charCodeAt(at);
    let node: PlainNode;
    let end: number;
    if (c === 123 || c === 91) [node, end] = this.flow(at);
    else if (c === 34 || c === 39) [node, end] = this.quoted(at, this.lineEnd);
    else {
      end = this.commentStart(at);
      while (end > at && text.charCodeAt(end - 1) === SPACE) end--;
      node = { kind: 'scalar', value: plainValue(text.slice(at, end), false), style: 'PLAIN' };
    }
    const rest = this.skipSpaces(end);
    if (rest !== this.lineEnd) {
      if (text.charCodeAt(rest) !== 35 || rest === end) no();
      this.decorated = true;
    }
    return node;
  }

  /** A quoted scalar starting at `at`, closed before `limit`; returns it and the position after it. */
  private quoted(at: number, limit: number): [ScalarNode, number] {
    const text = this.text;
    if (text.charCodeAt(at) === 34) {
      let i = at + 1;
      while (i < limit && text.charCodeAt(i) !== 34) i += text.charCodeAt(i) === 92 /* \ */ ? 2 : 1;
      if (i >= limit) no();
      return [{ kind: 'scalar', value: doubleQuotedValue(text.slice(at + 1, i)), style: 'QUOTE_DOUBLE' }, i + 1];
    }
    let i = at + 1;
    for (;;) {
      while (i < limit && text.charCodeAt(i) !== 39) i++;
      if (i >= limit) no();
      if (text.charCodeAt(i + 1) !== 39) break;
      i += 2;
    }
    return [{ kind: 'scalar', value: text.slice(at + 1, i).replaceAll("''", "'"), style: 'QUOTE_SINGLE' }, i + 1];
  }

  /** A flow collection on one line, starting at `at`; returns it and the position after it. */
  private flow(at: number): [PlainNode, number] {
    const text = this.text;
    const isMap = text.charCodeAt(at) === 123;
    const close = isMap ? 125 /* } */ : 93; /* ] */
    const pairs: MapNode['pairs'] = [];
    const items: PlainNode[] = [];
    let i = this.skipSpaces(at + 1);
    if (text.charCodeAt(i) === close) i++;
    else {
      for (;;) {
        if (isMap) {
          const [key, end] = this.flowScalar(i, true);
          if (typeof key.value !== 'string' || key.value === '__proto__') no();
          if (text.charCodeAt(end) !== 58 || text.charCodeAt(end + 1) !== SPACE) no();
          const [value, after] = this.flowValue(this.skipSpaces(end + 2));
          pairs.push({ key, value });
          i = after;
        } else {
          const [value, after] = this.flowValue(i);
          items.push(value);
          i = after;
        }
        i = this.skipSpaces(i);
        const c = text.charCodeAt(i);
        if (c === close) {
          i++;
          break;
        }
        if (c !== 44 /* , */) no();
        i = this.skipSpaces(i + 1);
        if (text.charCodeAt(i) === close) no(); // a trailing comma
      }
    }
    return [isMap ? checkedKeys({ kind: 'map', flow: true, pairs }) : { kind: 'seq', flow: true, items }, i];
  }

  private flowValue(at: number): [PlainNode, number] {
    const c = this.text.charCodeAt(at);
    return c === 123 || c === 91 ? this.flow(at) : this.flowScalar(at, false);
  }

  /** A scalar inside a flow collection: quoted, or plain up to ",", a closing bracket or (a key's) ": ". */
  private flowScalar(at: number, isKey: boolean): [ScalarNode, number] {
    const text = this.text;
    const c = text.charCodeAt(at);
    if (c === 34 || c === 39) return this.quoted(at, this.lineEnd);
    let i = at;
    for (; i < this.lineEnd; i++) {
      const d = text.charCodeAt(i);
      if (d === 44 || d === 93 || d === 125 || (isKey && d === 58)) break;
    }
    let end = i;
    while (end > at && text.charCodeAt(end - 1) === SPACE) end--;
    return [{ kind: 'scalar', value: plainValue(text.slice(at, end), true), style: 'PLAIN' }, end];
  }

  private skipSpaces(i: number): number {
    while (this.text.charCodeAt(i) === SPACE) i++;
    return i;
  }
}

/** The mapping, when no key is in it twice (yaml refuses that: left to it to say so). */
function checkedKeys(map: MapNode): MapNode {
  const pairs = map.pairs;
  if (pairs.length > 16) {
    if (new Set(pairs.map((p) => p.key.value)).size !== pairs.length) no();
  } else {
    for (let i = 1; i < pairs.length; i++) for (let j = 0; j < i; j++) if (pairs[i]!.key.value === pairs[j]!.key.value) no();
  }
  return map;
}

function countLines(text: string): number {
  let n = 0;
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) n++;
  return n;
}

/** Whether the node holds exactly this JSON value (what isDeepStrictEqual(toJS(node), value) says, without building it). */
function holds(node: PlainNode, value: unknown): boolean {
  switch (node.kind) {
    case 'scalar':
      return Object.is(node.value, value);
    case 'seq':
      return Array.isArray(value) && value.length === node.items.length && node.items.every((item, i) => holds(item, value[i]));
    case 'map': {
      if (value === null || typeof value !== 'object' || Object.getPrototypeOf(value) !== Object.prototype) return false;
      const obj = value as Record<string, unknown>;
      return Object.keys(obj).length === node.pairs.length &&
        node.pairs.every(({ key, value: v }) => Object.hasOwn(obj, key.value as string) && holds(v, obj[key.value as string]));
    }
  }
}

function toJS(node: PlainNode): unknown {
  switch (node.kind) {
    case 'scalar':
      return node.value;
    case 'seq':
      return node.items.map(toJS);
    case 'map': {
      const obj: Record<string, unknown> = {};
      for (const { key, value } of node.pairs) obj[key.value as string] = toJS(value);
      return obj;
    }
  }
}

// Edits, as documents.ts applies an RFC 6902 operation to yaml's nodes (and yaml's own YAMLMap and
// YAMLSeq set, add and delete do): a scalar that gets another value of its type keeps its quoting,
// anything else becomes a node in yaml's default style.

/** The node yaml's createNode makes of a JSON value. */
function createNode(value: unknown): PlainNode {
  if (Array.isArray(value)) return { kind: 'seq', flow: false, items: value.map(createNode) };
  if (value !== null && typeof value === 'object') {
    const pairs = Object.entries(value).map(([key, v]) => {
      if (key === '__proto__') no();
      return { key: { kind: 'scalar' as const, value: key }, value: createNode(v) };
    });
    return { kind: 'map', flow: false, pairs };
  }
  if (value === null || typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return { kind: 'scalar', value };
  return no();
}

/** A collection's member set to `value`: a scalar node keeps its quoting when the value is of its type. */
function replaced(prev: PlainNode | undefined, value: unknown): PlainNode {
  // yaml keeps a null as a raw value, written differently in flow mappings; and a scalar's quoting
  // or source text decides how a value of another type is written: both are left to yaml.
  if (value === null) no();
  if (prev?.kind === 'scalar' && typeof value !== 'object') {
    if (prev.value === null || typeof prev.value !== typeof value) no();
    prev.value = value as ScalarNode['value'];
    return prev;
  }
  return createNode(value);
}

function parsePointer(pointer: string): string[] {
  return pointer.slice(1).split('/').map((part) => part.replaceAll('~1', '/').replaceAll('~0', '~'));
}

function itemIndex(key: string): number {
  const index = key === '' ? NaN : Number(key);
  return Number.isInteger(index) && index >= 0 ? index : no();
}

function child(node: PlainNode | undefined, key: string): PlainNode | undefined {
  if (node?.kind === 'map') return node.pairs.find((p) => p.key.value === key)?.value;
  if (node?.kind === 'seq') return node.items[itemIndex(key)];
  return undefined;
}

function applyOperation(root: MapNode, op: Operation): void {
  if (op.path === '' || (op.op !== 'add' && op.op !== 'replace' && op.op !== 'remove')) no();
  const path = parsePointer(op.path);
  const key = path.pop()!;
  let parent: PlainNode | undefined = root;
  for (const part of path) parent = child(parent, part);
  if (parent === undefined || parent.kind === 'scalar') no();
  if (parent.kind === 'seq') {
    const items = parent.items;
    if (op.op === 'remove') {
      if (itemIndex(key) >= items.length) no();
      items.splice(itemIndex(key), 1);
    } else if (op.op === 'add') {
      const index = key === '-' ? items.length : itemIndex(key);
      if (index > items.length) no();
      items.splice(index, 0, createNode(op.value));
    } else {
      const index = itemIndex(key);
      if (index >= items.length) no();
      items[index] = replaced(items[index], op.value);
    }
    return;
  }
  const pairs = parent.pairs;
  const at = pairs.findIndex((p) => p.key.value === key);
  if (op.op === 'remove') {
    if (at === -1) no();
    pairs.splice(at, 1);
  } else if (at !== -1) {
    pairs[at]!.value = replaced(pairs[at]!.value, op.value);
  } else {
    // yaml adds the key as a string, not a node: an empty one is then written as an explicit key.
    if (op.value === null || key === '') no();
    const pair = { key: { kind: 'scalar' as const, value: key }, value: createNode(op.value) };
    // A template that had no metadata gets it where people expect it: before its spec.
    const specAt = key === 'metadata' ? pairs.findIndex((p) => p.key.value === 'spec') : -1;
    if (specAt === -1) pairs.push(pair);
    else pairs.splice(specAt, 0, pair);
  }
}

// Writing, as yaml's stringifier writes the same nodes with WRITE_OPTIONS: two spaces per level,
// sequences indented under their key, flow collections kept on one line, every scalar quoted or
// not exactly as yaml decides (asking yaml itself for any string the rules below do not settle).

/**
 * Strings yaml writes as they are in plain style: no indicator first, and no short word or exponent
 * ("yes", "on", "null", "e5"), which YAML 1.1 readers may take for other types: those go to yaml.
 */
const SAFE_PLAIN = /^[A-Za-z_/$][\w./:=+@~,()$ -]*$/;
const MAYBE_NOT_STRING = /^(?:[A-Za-z]{1,5}|[eE][-+]?[0-9]+)$/;
const PRINTABLE_ASCII = /^[ -~]*$/;

const written = new Map<string, string>();
const WRITTEN_MAX = 10_000;

/** How yaml writes a one-line string in the given position (memoized; yaml's own answer where unsure). */
export function writeString(value: string, style: Style | undefined, implicitKey: boolean, inFlow: boolean): string {
  // With merge keys on, how yaml writes the string "<<" depends on how its node was made: left to yaml.
  if (value === '<<') no();
  if (style === 'QUOTE_DOUBLE') {
    if (PRINTABLE_ASCII.test(value) && !value.includes('"') && !value.includes('\\')) return `"${value}"`;
  } else if (style === 'QUOTE_SINGLE') {
    if (PRINTABLE_ASCII.test(value)) return `'${value.replaceAll("'", "''")}'`;
  } else if (
    SAFE_PLAIN.test(value) && !MAYBE_NOT_STRING.test(value) && !value.includes(': ') && !value.endsWith(':') &&
    !value.endsWith(' ') && !(inFlow && value.includes(','))
  ) {
    return value;
  }
  const memo = `${style ?? ''}${implicitKey ? 'k' : 'v'}${inFlow ? 'f' : 'b'}${value}`;
  let text = written.get(memo);
  if (text === undefined) {
    text = yamlWrites(value, style, implicitKey, inFlow);
    if (written.size >= WRITTEN_MAX) written.clear();
    written.set(memo, text);
  }
  return text;
}

/** yaml's writing of a string as a key or value, in block or flow context; one line or Unsupported. */
export function yamlWrites(value: string, style: Style | undefined, implicitKey: boolean, inFlow: boolean): string {
  const scalar = new Scalar(value);
  if (style !== undefined) scalar.type = style;
  const other = new Scalar('x');
  const doc = new Document(null, PARSE_OPTIONS);
  let collection: YAMLMap | YAMLSeq;
  if (inFlow && !implicitKey) {
    collection = new YAMLSeq();
    collection.items.push(scalar);
  } else {
    collection = new YAMLMap();
    collection.items.push(implicitKey ? new Pair(scalar, other) : new Pair(other, scalar));
  }
  collection.flow = inFlow;
  doc.contents = collection;
  const text = doc.toString(WRITE_OPTIONS);
  const [start, end] = inFlow ? (implicitKey ? [1, ': x}\n'] : [1, ']\n']) : implicitKey ? [0, ': x\n'] : [3, '\n'];
  if (!text.endsWith(end)) no();
  const written = text.slice(start, text.length - end.length);
  return written.includes('\n') ? no() : written;
}

function writeScalar(node: ScalarNode, implicitKey: boolean, inFlow: boolean): string {
  const value = node.value;
  if (typeof value === 'string') return writeString(value, node.style, implicitKey, inFlow);
  if (typeof value === 'number') return Number.isFinite(value) ? (Object.is(value, -0) ? '-0' : JSON.stringify(value)) : no();
  return value === null ? 'null' : String(value);
}

/** A new line indented for a node `depth` levels in ("\n" and two spaces a level). */
const LINE_STARTS: string[] = [];
const lineStart = (depth: number): string => (LINE_STARTS[depth] ??= `\n${'  '.repeat(depth)}`);

/** Writes nodes into one string, as yaml writes them. */
class Writer {
  text = '';

  node(node: PlainNode, depth: number, inFlow: boolean): void {
    if (node.kind === 'scalar') {
      this.text += writeScalar(node, false, inFlow);
    } else if (inFlow || node.flow) {
      this.flow(node);
    } else if (node.kind === 'map') {
      if (node.pairs.length === 0) this.text += '{}';
      node.pairs.forEach((pair, i) => {
        if (i > 0) this.text += lineStart(depth);
        this.pair(pair, depth, false);
      });
    } else {
      if (node.items.length === 0) this.text += '[]';
      node.items.forEach((item, i) => {
        if (i > 0) this.text += lineStart(depth);
        this.text += '- ';
        this.node(item, depth + 1, false);
      });
    }
  }

  private flow(node: MapNode | SeqNode): void {
    const map = node.kind === 'map';
    this.text += map ? '{' : '[';
    (map ? node.pairs : node.items).forEach((member, i) => {
      if (i > 0) this.text += ', ';
      if (map) this.pair(member as MapNode['pairs'][number], 0, true);
      else this.node(member as PlainNode, 0, true);
    });
    this.text += map ? '}' : ']';
  }

  private pair({ key, value }: MapNode['pairs'][number], depth: number, inFlow: boolean): void {
    const k = writeScalar(key, true, inFlow);
    if (!inFlow && k.length > 1024) no();
    // A block collection goes on the lines below its key; a flow one (or an empty one) stays on the key's line.
    const below = value.kind !== 'scalar' && !inFlow && !value.flow && (value.kind === 'map' ? value.pairs : value.items).length > 0;
    this.text += below ? `${k}:${lineStart(depth + 1)}` : `${k}: `;
    this.node(value, depth + 1, inFlow);
  }
}

/** A document of the subset: the text before its content (marker, comments), the content, and where it starts. */
export class PlainDocument {
  private readonly head: string;
  private readonly root: MapNode | null;
  /** Lines before the content (its 0-based line in the document's text). */
  readonly contentLine: number;
  /** Comments or blank lines elsewhere than before the content: yaml writes the edited document. */
  private readonly decorated: boolean;
  /** The document as yaml writes it, once an edit has been applied. */
  private text: string | undefined;

  constructor(head: string, root: MapNode | null, contentLine: number, decorated: boolean) {
    this.head = head;
    this.root = root;
    this.contentLine = contentLine;
    this.decorated = decorated;
  }

  toJS(): unknown {
    return this.root === null ? null : toJS(this.root);
  }

  /** Applies `patch` (from this document's value to `after`) and writes the result; throws Unsupported. */
  edit(patch: readonly Operation[], after: unknown): void {
    if (this.root === null || this.decorated) no();
    const first = this.root.pairs[0];
    for (const op of patch) applyOperation(this.root, op);
    if (!holds(this.root, after)) no();
    // Without a marker, yaml keeps the comments at the top with the first key: they go where it goes.
    if (!this.head.startsWith('---') && this.head !== '' && this.root.pairs[0] !== first) no();
    const writer = new Writer();
    writer.node(this.root, 0, false);
    this.text = `${this.head}${writer.text}\n`;
  }

  /** The edited document's YAML (the caller writes an unedited one as given). */
  toString(): string {
    return this.text ?? no();
  }
}

/** The document, when its text is in the subset; undefined otherwise (for yaml to read). */
export function readPlainDocument(text: string): PlainDocument | undefined {
  try {
    return new Reader(text).document();
  } catch (err) {
    if (err === UNSUPPORTED) return undefined;
    throw err;
  }
}
