// The document model: a manifest file as a list of YAML documents, each kept with its exact source
// text. A document nobody changed is written back byte for byte (comments, key order, quoting); a
// changed one is edited in place through yaml's Document API, operation by operation, so only the
// changed nodes are rewritten and comments elsewhere in it stay.
import { isDeepStrictEqual } from 'node:util';
import type { Operation } from 'fast-json-patch';
import {
  Composer, CST, LineCounter, Pair, Parser, isCollection, isMap, isScalar, isSeq, visit,
} from 'yaml';
import type { Document, Node } from 'yaml';
import { InputError, type Source } from './input.ts';

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
  doc: Document;
}

// As close to kubectl's YAML reader as yaml allows: merge keys (<<) resolve, a duplicate key is an
// error rather than a silent last-one-wins, and values written out are quoted wherever YAML 1.1
// (Kubernetes' go-yaml) would read them differently: an annotation "yes" must not come back as a bool.
const PARSE_OPTIONS = { merge: true, uniqueKeys: true, compat: 'yaml-1.1' } as const;

/** "file: document N (line L)", the prefix of every message about a document. */
export function documentLocation(d: Pick<ManifestDocument, 'source' | 'index' | 'line'>): string {
  return `${d.source}: document ${d.index} (line ${d.line})`;
}

/**
 * The source text of each document. Stream-level tokens (comments, blank lines, directives) belong to
 * the document that follows them, a "..." end marker to the one it closes, anything after the last
 * document to the last one: joined, the pieces give back the whole file.
 */
function documentTexts(tokens: readonly CST.Token[]): string[] {
  const texts: string[] = [];
  let pending = '';
  for (const token of tokens) {
    const text = CST.stringify(token);
    if (token.type === 'document') {
      texts.push(pending + text);
      pending = '';
    } else if (token.type === 'doc-end' && texts.length > 0) {
      texts[texts.length - 1] += text;
    } else {
      pending += text;
    }
  }
  if (texts.length > 0) texts[texts.length - 1] += pending;
  return texts;
}

/** The documents of one source; an InputError names the file, the document and the line on bad YAML. */
export function parseManifests(source: Source): ManifestDocument[] {
  const lines = new LineCounter();
  const tokens = [...new Parser(lines.addNewLine).parse(source.text)];
  const composer = new Composer(PARSE_OPTIONS);
  const docs = [...composer.compose(tokens)];
  const texts = documentTexts(tokens);
  const at = (offset: number) => lines.linePos(offset);

  const streamError = composer.streamInfo().errors[0];
  if (docs.length === 0 && streamError !== undefined) {
    const { line, col } = at(streamError.pos[0]);
    throw new InputError(`${source.name}: not valid YAML: ${streamError.message} (line ${line}, column ${col})`);
  }
  return docs.map((doc, i) => {
    const contentStart = doc.contents?.range[0] ?? doc.range[0];
    const d = { source: source.name, index: i + 1, line: at(contentStart).line };
    const error = doc.errors[0];
    if (error !== undefined) {
      const { line, col } = at(error.pos[0]);
      throw new InputError(`${documentLocation(d)}: not valid YAML: ${error.message} (line ${line}, column ${col})`);
    }
    return { ...d, raw: texts[i] ?? doc.toString(), hasMarker: doc.directives.docStart === true, doc };
  });
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
    const specAt = parent.items.findIndex((p) => isScalar(p.key) && p.key.value === 'spec');
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

/** The YAML stream: the documents in order, each untouched one as given, separated by "---". */
export function renderYaml(docs: readonly { document: ManifestDocument; changed: boolean }[]): string {
  let out = '';
  docs.forEach(({ document, changed }, i) => {
    let text = changed ? document.doc.toString({ lineWidth: 0, flowCollectionPadding: false }) : document.raw;
    if (i > 0 && !document.hasMarker) text = `---\n${text}`;
    if (!text.endsWith('\n')) text += '\n';
    out += text;
  });
  return out;
}
