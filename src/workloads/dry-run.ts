// The dry run, from sources to what goes to stdout and stderr. All input is read and every object
// edited before any output exists, so a problem anywhere leaves stdout empty.
import jsonpatch from 'fast-json-patch';
import { documentLocation, documentValue, editDocument, parseManifests, renderYaml, type ManifestDocument } from './documents.ts';
import { InputError, type Source } from './input.ts';
import { ManifestError, transformDocument, type DocumentOutcome, type ObjectOutcome, type ObjectStatus, type PodEdit } from './transform.ts';

export const OUTPUT_FORMATS = ['yaml', 'json', 'patch'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export interface DryRunResult {
  /** What goes to stdout; empty when there are problems. */
  output: string;
  /** One line per object (and per warning), then a summary; for stderr. */
  report: string[];
  /** Unreadable input, each naming the file and document; non-empty means nothing was written. */
  problems: string[];
}

interface Edited {
  document: ManifestDocument;
  outcome: DocumentOutcome;
}

function statusText(o: ObjectOutcome): string {
  switch (o.status) {
    case 'injected':
      return `injected (${o.detail})`;
    case 'passed-through':
      return 'passed through';
    case 'restored':
      // The engine's sentence says what it undid ("uninjected: removed the promux container ...").
      return o.detail === '' ? 'restored' : o.detail;
    default:
      return o.detail === '' ? o.status : `${o.status}: ${o.detail}`;
  }
}

const SUMMARY_ORDER: readonly ObjectStatus[] = ['injected', 'restored', 'skipped', 'unchanged', 'passed-through'];

function summary(objects: readonly ObjectOutcome[], files: number): string {
  const counts = SUMMARY_ORDER.map((s) => [s, objects.filter((o) => o.status === s).length] as const)
    .filter(([, n]) => n > 0)
    .map(([s, n]) => `${n} ${s.replace('-', ' ')}`);
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  return `${plural(objects.length, 'object')} in ${plural(files, 'file')}${counts.length > 0 ? `: ${counts.join(', ')}` : ''}`;
}

function render(edited: readonly Edited[], format: OutputFormat): string {
  switch (format) {
    case 'yaml':
      return renderYaml(
        edited.map(({ document, outcome }) => {
          const changed = outcome.after !== outcome.before;
          if (changed) editDocument(document, jsonpatch.compare(outcome.before as object, outcome.after as object), outcome.after);
          return { document, changed };
        }),
      );
    case 'json':
      // One object per document, as `kubectl create --dry-run=client -o json` prints several: a
      // stream that `kubectl apply -f -` and jq both read. A List stays one List.
      return edited
        .filter(({ outcome }) => outcome.after !== null)
        .map(({ outcome }) => `${JSON.stringify(outcome.after, null, 2)}\n`)
        .join('');
    case 'patch':
      return edited.flatMap(({ outcome }) => outcome.objects.map((o) => `${JSON.stringify(o.patch)}\n`)).join('');
  }
}

/** Reads every document of every source, edits each object with `edit`, and renders the result. */
export function dryRun(sources: readonly Source[], edit: PodEdit, format: OutputFormat): DryRunResult {
  const problems: string[] = [];
  const edited: Edited[] = [];
  for (const source of sources) {
    let documents: ManifestDocument[];
    try {
      documents = parseManifests(source);
    } catch (err) {
      if (!(err instanceof InputError)) throw err;
      problems.push(err.message);
      continue;
    }
    for (const document of documents) {
      try {
        edited.push({ document, outcome: transformDocument(documentValue(document), edit) });
      } catch (err) {
        if (err instanceof ManifestError) problems.push(`${documentLocation(document)}: ${err.message}`);
        else if (err instanceof InputError) problems.push(err.message);
        else throw err;
      }
    }
  }
  if (problems.length > 0) return { output: '', report: [], problems };

  const objects = edited.flatMap((e) => e.outcome.objects);
  const report = objects.flatMap((o) => [
    `${o.description}: ${statusText(o)}`,
    ...o.warnings.map((w) => `${o.description}: warning: ${w}`),
  ]);
  report.push(summary(objects, sources.length));
  return { output: render(edited, format), report, problems };
}
