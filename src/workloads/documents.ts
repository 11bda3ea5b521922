// The document model: a manifest file as a list of YAML documents, each kept with its exact source
// text. A document nobody changed is written back byte for byte (comments, key order, quoting); a
// changed one is edited in place through yaml's Document API, operation by operation, so only the
// changed nodes are rewritten and comments elsewhere in it stay. Documents in the block style that
// kubectl, helm and kustomize write take a faster road to the same bytes (plain-yaml.ts).
import { extname } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { Operation } from 'fast-json-patch';
import {
  Composer, LineCounter, Pair, Parser, isCollection, isMap, isScalar, isSeq, parseDocument, visit,
} from 'yaml';
import { jsonStreamSpans, jsonSyntaxProblem, looksLikeJson } from '../json.ts';
import type { Document, Node } from 'yaml';
import { InputError, type Source } from './input.ts';
import { PARSE_OPTIONS, PlainDocument, readPlainDocument, Unsupported, WRITE_OPTIONS } from './plain-yaml.ts';

export interface ManifestDocument {
  /** The file it came from, as the user named it. */
  source: string;
  /** 1-based position in its file. */
  index: number;
  /** 1-based line where its content starts (or its marker, when it is empty). */
  line: number;
  /** Exact source text: its comments, its "---" marker when present, its content. */
  raw: string;
  /** Whether the text carries its own "---" marker (otherwise the writer adds one between documents). */
  hasMarker: boolean;
  /** yaml's Document, or the faster plain form of a block-style document (until an edit it cannot take). */
  doc: Document | PlainDocument;
}

/** "file: document N (line L)", the prefix of every message about a document. */
export function documentLocation(d: Pick<ManifestDocument, 'source' | 'index' | 'line'>): string {
  return `${d.source}: document ${d.index} (line ${d.line})`;
}

/**
 * The documents of one source, one at a time; an InputError names the file, the document and the
 * line of bad YAML (or JSON). Each document's source text runs from the end of the one before: the
 * comments and blank lines before it are its own, a "..." end marker belongs to the document it
 * closes, and anything after the last document to the last one, so that the pieces joined give back
 * the whole file. Read as a stream, so that only the document at hand is ever parsed into nodes:
 * the source is cut at its "---" lines and each piece read on its own (in the plain form when it is
 * block-style YAML), unless only yaml's stream reader can tell the documents apart.
 */
export function* readManifests(source: Source): Generator<ManifestDocument> {
  const spans = jsonStreamOf(source);
  if (spans !== undefined) {
    yield* readJsonStream(source, spans);
    return;
  }
  const pieces = documentPieces(source.text);
  if (pieces === undefined) {
    yield* readYamlStream(source);
    return;
  }
  let index = 0;
  for (const piece of pieces) {
    const document = pieceDocument(source, piece, index + 1);
    if (document === undefined) {
      // The stream reader takes over (naming bad YAML as it always has); the documents before
      // this one are those already handed out.
      let seen = 0;
      for (const d of readYamlStream(source)) if (++seen > index) yield d;
      return;
    }
    index++;
    yield document;
  }
}

interface Piece {
  start: number;
  end: number;
  /** 1-based line where the piece starts. */
  line: number;
}

/**
 * The source cut before each "---" line, each piece one document of the stream: the comments and
 * blank lines before a marker belong to the document before it (as the stream reader has them), a
 * preamble of nothing but comments to the first marker's document. undefined when the source has what
 * makes a "---" line more than the start of the next document, or makes documents depend on each
 * other (directives, "..." end markers, a marker with content on its line, CR line ends, a byte order
 * mark): the stream reader takes those.
 */
function documentPieces(text: string): Piece[] | undefined {
  if (text.charCodeAt(0) === 0xfeff || text.includes('\r') || /^(?:%|---[ \t]|\.\.\.(?:[ \t\n]|$))/m.test(text)) return undefined;
  const markers: Piece[] = [];
  for (let at = 0, line = 1; at < text.length; line++) {
    const newline = text.indexOf('\n', at);
    const end = newline === -1 ? text.length : newline;
    if (end - at === 3 && text.startsWith('---', at)) markers.push({ start: at, end: text.length, line });
    at = end + 1;
  }
  markers.forEach((m, i) => (m.end = markers[i + 1]?.start ?? text.length));
  const preambleEnd = markers[0]?.start ?? text.length;
  if (!onlyComments(text.slice(0, preambleEnd))) return [{ start: 0, end: preambleEnd, line: 1 }, ...markers];
  if (markers.length > 0) Object.assign(markers[0]!, { start: 0, line: 1 });
  return markers;
}

/** Whether the text is nothing but blank lines and comment lines. */
function onlyComments(text: string): boolean {
  return !/^[ \t]*[^ \t\n#]/m.test(text);
}

/**
 * One piece as a document: in the plain form when it is block-style YAML, else yaml's. undefined
 * where only the stream reader can tell: bad YAML (its message), and where a document that is a flow
 * collection ends (the stream reader gives some of the blank lines after one to the next document).
 */
function pieceDocument(source: Source, piece: Piece, index: number): ManifestDocument | undefined {
  const raw = source.text.slice(piece.start, piece.end);
  const hasMarker = raw.startsWith('---');
  const plain = readPlainDocument(raw);
  if (plain !== undefined) return { source: source.name, index, line: piece.line + plain.contentLine, raw, hasMarker, doc: plain };
  const lines = new LineCounter();
  const doc = parseDocument(raw, { ...PARSE_OPTIONS, lineCounter: lines });
  if (doc.errors.length > 0 || (isCollection(doc.contents) && doc.contents.flow === true)) return undefined;
  const line = piece.line + lines.linePos(doc.contents?.range[0] ?? doc.range[0]).line - 1;
  return { source: source.name, index, line, raw, hasMarker: doc.directives.docStart === true, doc };
}

/** The documents of a YAML source as yaml's stream parser sees them (see readManifests), all in yaml's form. */
export function* readYamlStream(source: Source): Generator<ManifestDocument> {
  const text = source.text;
  const lines = new LineCounter();
  const composer = new Composer(PARSE_OPTIONS);
  const at = (offset: number) => lines.linePos(offset);
  /** Where the source text of each document seen so far starts. */
  const starts: number[] = [];
  /** Where the next document's text starts: right after the last document and its end marker. */
  let boundary = 0;
  let afterDocument = false;
  let index = 0;
  const finish = (doc: Document.Parsed, end: number): ManifestDocument => {
    const start = starts[index]!;
    index++;
    const contentStart = doc.contents?.range[0] ?? doc.range[0];
    const d = { source: source.name, index, line: at(contentStart).line };
    const error = doc.errors[0];
    if (error !== undefined) {
      const { line, col } = at(error.pos[0]);
      throw new InputError(`${documentLocation(d)}: not valid YAML: ${error.message} (line ${line}, column ${col})`);
    }
    return { ...d, raw: text.slice(start, end), hasMarker: doc.directives.docStart === true, doc };
  };
  for (const token of new Parser(lines.addNewLine).parse(text)) {
    if (afterDocument && token.type !== 'doc-end') {
      boundary = token.offset;
      afterDocument = false;
    }
    if (token.type === 'document') starts.push(boundary);
    if (token.type === 'document' || token.type === 'doc-end') afterDocument = true;
    // The composer hands over a document when the next one arrives: it ends where that one starts.
    for (const doc of composer.next(token)) yield finish(doc, boundary);
  }
  const last = [...composer.end()];
  const streamError = composer.streamInfo().errors[0];
  if (index === 0 && last.length === 0 && streamError !== undefined) {
    const { line, col } = at(streamError.pos[0]);
    throw new InputError(`${source.name}: not valid YAML: ${streamError.message} (line ${line}, column ${col})`);
  }
  for (const doc of last) yield finish(doc, text.length);
}

/**
 * The values of a JSON source, or undefined for YAML. JSON, as kubectl reads it: a *.json file, or a
 * text that starts with "{" and is nothing but JSON values one after the other (which `promux
 * inject -o json` writes). YAML documents in flow style separated by "---" stay YAML.
 */
function jsonStreamOf(source: Source): { start: number; end: number }[] | undefined {
  const json = extname(source.name).toLowerCase() === '.json';
  if (!json && !looksLikeJson(source.text)) return undefined;
  const spans = jsonStreamSpans(source.text);
  if (json || spans.every(({ start }) => source.text[start] === '{' || source.text[start] === '[')) return spans;
  return undefined;
}

/** A JSON source: a stream of values, each one document (its syntax errors are called JSON errors). */
function* readJsonStream(source: Source, spans: { start: number; end: number }[]): Generator<ManifestDocument> {
  const text = source.text;
  const lines = new LineCounter();
  lines.addNewLine(0);
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) lines.addNewLine(i + 1);
  let index = 0;
  for (const { start, end } of spans) {
    index++;
    const d = { source: source.name, index, line: lines.linePos(start).line };
    const problem = jsonSyntaxProblem(text, start, end);
    if (problem !== undefined) throw new InputError(`${documentLocation(d)}: not valid JSON: ${problem}`);
    const raw = text.slice(start, end);
    const doc = parseDocument(raw, PARSE_OPTIONS);
    const error = doc.errors[0];
    if (error !== undefined) {
      const { line, col } = lines.linePos(start + error.pos[0]);
      throw new InputError(`${documentLocation(d)}: not valid JSON: ${error.message} (line ${line}, column ${col})`);
    }
    yield { ...d, raw, hasMarker: false, doc };
  }
}

/** Every document of one source (see readManifests). */
export function parseManifests(source: Source): ManifestDocument[] {
  return [...readManifests(source)];
}

/** The document's value as plain JSON data (null for an empty document). */
export function documentValue(d: ManifestDocument): unknown {
  try {
    return d.doc.toJS();
  } catch (err) {
    // yaml refuses to expand aliases without bound (a "billion laughs" document).
    throw new InputError(`${documentLocation(d)}: ${(err as Error).message}`);
  }
}

function parsePointer(pointer: string): string[] {
  if (pointer === '') return [];
  return pointer.slice(1).split('/').map((part) => part.replaceAll('~1', '/').replaceAll('~0', '~'));
}

/** A scalar replaced by a scalar keeps its node (and the comments on it); anything else is a new node. */
function nodeFor(doc: Document, value: unknown): unknown {
  return value === null || typeof value !== 'object' ? value : doc.createNode(value);
}

function applyOperation(doc: Document, op: Operation): void {
  const path = parsePointer(op.path);
  const key = path.at(-1);
  if (key === undefined) {
    if (op.op === 'remove') doc.contents = null;
    else if (op.op === 'add' || op.op === 'replace') doc.contents = doc.createNode(op.value) as Node;
    else throw new Error(`unexpected operation ${op.op}`);
    return;
  }
  const parent = path.length === 1 ? doc.contents : doc.getIn(path.slice(0, -1), true);
  if (op.op === 'remove') {
    if (!doc.deleteIn(path)) throw new Error(`nothing to remove at ${op.path}`);
    return;
  }
  if (op.op !== 'add' && op.op !== 'replace') throw new Error(`unexpected operation ${op.op}`);
  if (isSeq(parent)) {
    const index = key === '-' ? parent.items.length : Number(key);
    if (op.op === 'add') parent.items.splice(index, 0, doc.createNode(op.value));
    else parent.set(index, nodeFor(doc, op.value));
  } else if (isMap(parent)) {
    const known = parent.has(key);
    // A key set by an earlier operation of the patch is a plain string, not a Scalar (see YAMLMap.set).
    const specAt = parent.items.findIndex((p) => (isScalar(p.key) ? p.key.value : p.key) === 'spec');
    if (!known && key === 'metadata' && specAt !== -1) {
      // A template that had no metadata gets it where people expect it: before its spec.
      parent.items.splice(specAt, 0, new Pair(doc.createNode(key), doc.createNode(op.value)));
    } else {
      parent.set(key, nodeFor(doc, op.value));
    }
  } else {
    throw new Error(`no collection at the parent of ${op.path}`);
  }
}

/** Written out as block YAML: a document given as JSON (all flow) is rewritten in YAML's usual style. */
function blockStyle(doc: Document): void {
  visit(doc, {
    Collection(_, node) {
      node.flow = false;
    },
    Scalar(_, node) {
      node.type = undefined;
    },
  });
}

/**
 * Applies `patch` (RFC 6902, from the document's value to `after`) to the document's nodes. Should
 * the YAML not take the patch as JSON would (a numeric key, an alias), the document is rebuilt from
 * `after`: the content is right either way, only comments inside it are lost then.
 */
export function editDocument(d: ManifestDocument, patch: readonly Operation[], after: unknown): void {
  if (d.doc instanceof PlainDocument) {
    try {
      d.doc.edit(patch, after);
      return;
    } catch (err) {
      if (!(err instanceof Unsupported)) throw err;
      d.doc = parseDocument(d.raw, PARSE_OPTIONS);
    }
  }
  const doc = d.doc;
  const wasFlow = isCollection(doc.contents) && doc.contents.flow === true;
  try {
    for (const op of patch) applyOperation(doc, op);
  } catch {
    // Falls through to the check below.
  }
  if (!isDeepStrictEqual(doc.toJS(), after)) doc.contents = doc.createNode(after) as Node;
  if (wasFlow) blockStyle(doc);
}

/** One document of the YAML stream: as given when untouched; "---" before it unless it is the first or has its own. */
export function renderYamlDocument(document: ManifestDocument, changed: boolean, first: boolean): string {
  const doc = document.doc;
  let text = !changed ? document.raw : doc instanceof PlainDocument ? doc.toString() : doc.toString(WRITE_OPTIONS);
  if (!first && !document.hasMarker) text = `---\n${text}`;
  if (!text.endsWith('\n')) text += '\n';
  return text;
}

/** The YAML stream: the documents in order, each untouched one as given, separated by "---". */
export function renderYaml(docs: readonly { document: ManifestDocument; changed: boolean }[]): string {
  return docs.map(({ document, changed }, i) => renderYamlDocument(document, changed, i === 0)).join('');
}
