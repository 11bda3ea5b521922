// The dry run, from sources to what goes to stdout and stderr. All input is read and every object
// edited before any output exists, so a problem anywhere leaves stdout empty.
import { diff } from '../inject/patch.ts';
import { documentLocation, documentValue, editDocument, readManifests, renderYamlDocument, type ManifestDocument } from './documents.ts';
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

function summary(objects: readonly Pick<ObjectOutcome, 'status'>[], files: number): string {
  const counts = SUMMARY_ORDER.map((s) => [s, objects.filter((o) => o.status === s).length] as const)
    .filter(([, n]) => n > 0)
    .map(([s, n]) => `${n} ${s.replace('-', ' ')}`);
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  return `${plural(objects.length, 'object')} in ${plural(files, 'file')}${counts.length > 0 ? `: ${counts.join(', ')}` : ''}`;
}

/** One document's output in `format`; `first` when nothing was written before it. */
function render(document: ManifestDocument, outcome: DocumentOutcome, format: OutputFormat, first: boolean): string {
  switch (format) {
    case 'yaml': {
      // Changed is what has a patch: a skipped pod may come back as an equal copy, and is written as given.
      const changed = outcome.objects.some((o) => o.patch.length > 0);
      if (changed) {
        // A document that is one object has that object's patch already; a List's is made here.
        const [only] = outcome.objects;
        const patch = outcome.objects.length === 1 && only!.after === outcome.after
          ? only!.patch
          : diff(outcome.before as object, outcome.after as object);
        editDocument(document, patch, outcome.after);
      }
      return renderYamlDocument(document, changed, first);
    }
    case 'json':
      // One object per document, as `kubectl create --dry-run=client -o json` prints several: a
      // stream that `kubectl apply -f -` and jq both read. A List stays one List.
      return outcome.after === null ? '' : `${JSON.stringify(outcome.after, null, 2)}\n`;
    case 'patch':
      return outcome.objects.map((o) => `${JSON.stringify(o.patch)}\n`).join('');
  }
}

/**
 * Reads every document of every source, edits each object with `edit`, and renders the result.
 * Document by document: each is parsed, edited and rendered before the next is read, so only its
 * output and its report lines outlive it (memory stays near the size of input and output).
 */
export function dryRun(sources: readonly Source[], edit: PodEdit, format: OutputFormat): DryRunResult {
  const problems: string[] = [];
  const output: string[] = [];
  const objects: Pick<ObjectOutcome, 'status'>[] = [];
  const report: string[] = [];
  for (const source of sources) {
    try {
      for (const document of readManifests(source)) {
        let outcome: DocumentOutcome;
        try {
          outcome = transformDocument(documentValue(document), edit);
        } catch (err) {
          if (err instanceof ManifestError) problems.push(`${documentLocation(document)}: ${err.message}`);
          else if (err instanceof InputError) problems.push(err.message);
          else throw err;
          continue;
        }
        for (const o of outcome.objects) {
          objects.push({ status: o.status });
          report.push(`${o.description}: ${statusText(o)}`, ...o.warnings.map((w) => `${o.description}: warning: ${w}`));
        }
        // Nothing is written once a problem is known, so nothing more is rendered either.
        if (problems.length === 0) output.push(render(document, outcome, format, output.length === 0));
      }
    } catch (err) {
      if (!(err instanceof InputError)) throw err;
      problems.push(err.message);
    }
  }
  if (problems.length > 0) return { output: '', report: [], problems };
  report.push(summary(objects, sources.length));
  return { output: output.join(''), report, problems };
}
