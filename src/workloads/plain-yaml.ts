// Block-style YAML, the way kubectl, helm and kustomize write manifests, read and written without the
// yaml library's general machinery (its parser, composer and stringifier cost about ten times more).
// The subset: a block mapping at the top, block mappings and sequences (indentless ones too), flow
// collections on one line, plain and quoted scalars on one line, comment lines between the "---"
// marker and the content. Anything else (block scalars, anchors, tags, comments elsewhere, blank
// lines inside the content, tabs, numbers other than plain integers...) is left to yaml: reading
// returns undefined and editing or writing throws Unsupported. What is read and written here is what
// yaml reads and writes for the same text, byte for byte (test/workloads/plain-yaml.test.ts holds
// generated documents and edits against yaml), so which path a document takes never shows.
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
/** What yaml (and YAML 1.1 readers) would not read back as a string, or reads in more than one way. */
const NOT_PLAIN_STRING = /^(?:[-+]?[.0-9~]|<<$|(?:[Nn]ull|NULL|[Tt]rue|TRUE|[Ff]alse|FALSE)$)/;
const CANONICAL_INT = /^(?:0|-?[1-9][0-9]{0,14})$/;
/** Control characters, DEL, C1, byte order marks, lone surrogates: yaml's rules for these are its own. */
// eslint-disable-next-line no-control-regex -- control characters are what it looks for
const UNUSUAL = /[\x00-\x09\x0b-\x1f\x7f-\x9f\ufeff\ud800-\udfff]/u;

/** The value of a plain scalar as yaml's core schema resolves it, where that is unambiguous. */
function plainValue(text: string, inFlow: boolean): string | number | boolean | null {
  if (text === '' || INDICATOR.test(text) || text.endsWith(' ') || text.endsWith(':') || text.includes(': ') || text.includes(' #')) no();
  if (text.charCodeAt(0) === 45 /* - */ && (text.length === 1 || text.charCodeAt(1) === SPACE)) no();
  if (inFlow && /[,[\]{}:#]/.test(text)) no();
  if (text === 'null') return null;
  if (text === 'true') return true;
  if (text === 'false') return false;
  if (CANONICAL_INT.test(text)) return Number(text);
  if (NOT_PLAIN_STRING.test(text)) no();
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

  constructor(text: string) {
    this.text = text;
  }

  document(): PlainDocument {
    const text = this.text;
    if (UNUSUAL.test(text)) no();
    const marker = text.startsWith('---') && (text.length === 3 || text.charCodeAt(3) === NEWLINE);
    if (marker) this.next(3);
    while (this.pos < text.length && text.charCodeAt(this.pos) === 35 /* # */) this.next(this.pos);
    const head = text.slice(0, this.pos);
    this.load();
    const root = this.blank() ? null : this.blockMap(0);
    // Only blank lines may follow the content (yaml drops them when it writes the document).
    while (this.pos < text.length) {
      this.load();
      if (!this.blank()) no();
      this.next(this.lineEnd);
    }
    if (root === null && !marker) no();
    // An empty document is where its marker is.
    return new PlainDocument(head, root, root === null ? 0 : countLines(head));
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
    this.pairsAt(map, new Set(), indent);
    return map;
  }

  /** The pairs of a block mapping at `indent`, from the loaded line on, into `map`. */
  private pairsAt(map: MapNode, keys: Set<string>, indent: number): void {
    for (;;) {
      if (this.pos >= this.text.length) return;
      this.load();
      if (this.blank() || this.indent < indent) return;
      if (this.indent > indent || this.seqItem()) no();
      this.pair(map, keys, this.pos + indent, indent);
    }
  }

  /** One "key: value" starting at column `at` of the loaded line; moves past the lines it spans. */
  private pair(map: MapNode, keys: Set<string>, at: number, indent: number): void {
    const text = this.text;
    const [key, end] = this.key(at);
    if (text.charCodeAt(end) !== 58 /* : */) no();
    if (typeof key.value !== 'string' || key.value === '__proto__' || key.value.length > 1000 || keys.has(key.value)) no();
    keys.add(key.value);
    let value: PlainNode;
    if (end + 1 === this.lineEnd) {
      this.next(this.lineEnd);
      if (this.pos >= text.length) no();
      this.load();
      if (this.blank()) no();
      if (this.indent > indent) value = this.seqItem() ? this.blockSeq(this.indent) : this.blockMap(this.indent);
      else if (this.indent === indent && this.seqItem()) value = this.blockSeq(indent);
      else no();
    } else {
      if (text.charCodeAt(end + 1) !== SPACE) no();
      let v = end + 2;
      while (text.charCodeAt(v) === SPACE) v++;
      value = this.inline(v);
      this.next(this.lineEnd);
    }
    map.pairs.push({ key, value });
  }

  /** A mapping key at `at`: quoted, or plain up to the ": " (or ":" at the end of the line) after it. */
  private key(at: number): [ScalarNode, number] {
    const c = this.text.charCodeAt(at);
    if (c === 34 /* " */ || c === 39 /* ' */) return this.quoted(at, this.lineEnd);
    let i = this.text.indexOf(':', at);
    while (i !== -1 && i < this.lineEnd && i + 1 !== this.lineEnd && this.text.charCodeAt(i + 1) !== SPACE) i = this.text.indexOf(':', i + 1);
    if (i === -1 || i >= this.lineEnd) no();
    return [{ kind: 'scalar', value: plainValue(this.text.slice(at, i), false), style: 'PLAIN' }, i];
  }

  /** Whether the text at `at` is a mapping key (a compact mapping in a sequence item) rather than a value. */
  private startsPair(at: number): boolean {
    const text = this.text;
    const c = text.charCodeAt(at);
    if (c === 123 /* { */ || c === 91 /* [ */) return false;
    if (c === 34 || c === 39) return text.charCodeAt(this.quoted(at, this.lineEnd)[1]) === 58;
    for (let i = text.indexOf(':', at); i !== -1 && i < this.lineEnd; i = text.indexOf(':', i + 1)) {
      if (i + 1 === this.lineEnd || text.charCodeAt(i + 1) === SPACE) return true;
    }
    return false;
  }

  private blockSeq(indent: number): SeqNode {
    const text = this.text;
    const seq: SeqNode = { kind: 'seq', flow: false, items: [] };
    for (;;) {
      if (this.pos >= text.length) break;
      this.load();
      if (this.blank() || this.indent < indent) break;
      if (this.indent > indent) no();
      if (!this.seqItem()) break;
      const at = this.pos + indent + 2;
      if (at > this.lineEnd) no();
      const c = text.charCodeAt(at);
      if (c === SPACE || c === 35 /* # */ || (c === 45 /* - */ && (at + 1 === this.lineEnd || text.charCodeAt(at + 1) === SPACE))) no();
      if (this.startsPair(at)) {
        const map: MapNode = { kind: 'map', flow: false, pairs: [] };
        const keys = new Set<string>();
        this.pair(map, keys, at, indent + 2);
        this.pairsAt(map, keys, indent + 2);
        seq.items.push(map);
      } else {
        seq.items.push(this.inline(at));
        this.next(this.lineEnd);
      }
    }
    return seq;
  }

  /** A value that takes the rest of the loaded line from `at`: a flow collection or a scalar. */
  private inline(at: number): PlainNode {
    const text = this.text;
    const c = text.charCodeAt(at);
    let node: PlainNode;
    let end: number;
    if (c === 123 || c === 91) [node, end] = this.flow(at);
    else if (c === 34 || c === 39) [node, end] = this.quoted(at, this.lineEnd);
    else return { kind: 'scalar', value: plainValue(text.slice(at, this.lineEnd), false), style: 'PLAIN' };
    if (end !== this.lineEnd) no();
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
      i = text.indexOf("'", i);
      if (i === -1 || i >= limit) no();
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
    const keys = new Set<string>();
    let i = this.skipSpaces(at + 1);
    if (text.charCodeAt(i) === close) i++;
    else {
      for (;;) {
        if (isMap) {
          const [key, end] = this.flowScalar(i, true);
          if (typeof key.value !== 'string' || key.value === '__proto__' || keys.has(key.value)) no();
          keys.add(key.value);
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
    return [isMap ? { kind: 'map', flow: true, pairs } : { kind: 'seq', flow: true, items }, i];
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

function writeNode(node: PlainNode, indent: string, inFlow: boolean): string {
  if (node.kind === 'scalar') return writeScalar(node, false, inFlow);
  if (inFlow || node.flow) return writeFlow(node);
  if (node.kind === 'map') {
    if (node.pairs.length === 0) return '{}';
    return node.pairs.map((p) => writePair(p, indent, false)).join(`\n${indent}`);
  }
  if (node.items.length === 0) return '[]';
  return node.items.map((item) => `- ${writeNode(item, `${indent}  `, false)}`).join(`\n${indent}`);
}

function writeFlow(node: MapNode | SeqNode): string {
  return node.kind === 'map'
    ? `{${node.pairs.map((p) => writePair(p, '', true)).join(', ')}}`
    : `[${node.items.map((item) => writeNode(item, '', true)).join(', ')}]`;
}

function writePair({ key, value }: MapNode['pairs'][number], indent: string, inFlow: boolean): string {
  const k = writeScalar(key, true, inFlow);
  if (!inFlow && k.length > 1024) no();
  const valueIndent = `${indent}  `;
  const v = writeNode(value, valueIndent, inFlow);
  // A block collection goes on the lines below its key; a flow one (or an empty one) stays on the key's line.
  if (value.kind === 'scalar' || inFlow || value.flow || (value.kind === 'map' ? value.pairs : value.items).length === 0) return `${k}: ${v}`;
  return `${k}:\n${valueIndent}${v}`;
}

/** A document of the subset: the text before its content (marker, comments), the content, and where it starts. */
export class PlainDocument {
  private readonly head: string;
  private readonly root: MapNode | null;
  /** Lines before the content (its 0-based line in the document's text). */
  readonly contentLine: number;
  /** The document as yaml writes it, once an edit has been applied. */
  private text: string | undefined;

  constructor(head: string, root: MapNode | null, contentLine: number) {
    this.head = head;
    this.root = root;
    this.contentLine = contentLine;
  }

  toJS(): unknown {
    return this.root === null ? null : toJS(this.root);
  }

  /** Applies `patch` (from this document's value to `after`) and writes the result; throws Unsupported. */
  edit(patch: readonly Operation[], after: unknown): void {
    if (this.root === null) no();
    const first = this.root.pairs[0];
    for (const op of patch) applyOperation(this.root, op);
    if (!holds(this.root, after)) no();
    // Without a marker, yaml keeps the comments at the top with the first key: they go where it goes.
    if (!this.head.startsWith('---') && this.head !== '' && this.root.pairs[0] !== first) no();
    this.text = `${this.head}${writeNode(this.root, '', false)}\n`;
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
