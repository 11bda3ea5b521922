// `promux inject` and `promux uninject`: the dry run on the command line, modelled on
// `istioctl kube-inject` and `linkerd inject`. Manifests (or patches) go to stdout, the report to
// stderr. Exit codes: 0 when the input was read (even if every pod was skipped), 1 for input or
// configuration that cannot be used, 2 for a command line that cannot be understood.
import { setFlagsFromString } from 'node:v8';
import { Command, CommanderError, Option } from 'commander';
import { parseKubernetesVersion } from '../config/kubernetes-version.ts';
import { ConfigError, loadConfig } from '../config/load.ts';
import { dryRun, OUTPUT_FORMATS, type OutputFormat } from './dry-run.ts';
import { injectEdit, uninjectEdit } from './edits.ts';
import { InputError, readSources } from './input.ts';
import { usageError } from '../usage.ts';

export type Mode = 'inject' | 'uninject';

/** Where the command reads stdin and writes its output; the process's own streams, or a test's. */
export interface CommandIO {
  readStdin(): Promise<string>;
  stdout(text: string): void;
  stderr(text: string): void;
}

const DESCRIPTIONS: Record<Mode, string> = {
  inject:
    'Print manifests as the promux webhook would admit them: every pod and pod template that asks to be ' +
    'scraped and has several containers gets the promux sidecar, and scrape annotations that point at it. ' +
    'Nothing is sent to a cluster.',
  uninject: "Print manifests with promux's injection undone, restored from the promux.io/status annotation.",
};

const EXAMPLES: Record<Mode, string> = {
  inject: `
Kinds edited: Pod, and the pod templates of Deployment, StatefulSet, DaemonSet, ReplicaSet,
ReplicationController, Job and CronJob (also inside a List). Other kinds pass through unchanged;
documents nothing changed are written exactly as given, comments included.

Output (-o): yaml  the manifests, as one YAML stream
             json  one JSON object per document (a List stays one List)
             patch one line per object: its RFC 6902 JSON patch, [] when unchanged

Examples:
  promux inject -f examples/
  promux inject -f deploy.yaml | kubectl apply -f -
  helm template my-app ./chart | promux inject -f -
  kubectl patch --local -f pod.yaml --type=json -o yaml -p "$(promux inject -f pod.yaml -o patch)"
`,
  uninject: `
Examples:
  promux uninject -f injected.yaml
  kubectl get deploy gateway -o yaml | promux uninject -f -
`,
};

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

function program(mode: Mode, io: CommandIO): Command {
  return new Command(`promux ${mode}`)
    .description(DESCRIPTIONS[mode])
    .option('-f, --filename <path>', 'a manifest file, a folder of *.yaml/*.yml/*.json files, or - for stdin (repeatable)', collect)
    .addOption(new Option('-o, --output <format>', 'output format').choices(OUTPUT_FORMATS).default('yaml'))
    .option('--config <file>', 'promux configuration file (YAML), as mounted into the webhook')
    .option('--kubernetes-version <version>',
      'the cluster\'s Kubernetes version ("1.31"), which decides whether Job pods get a native sidecar; overrides the configuration\'s kubernetesVersion')
    .addHelpText('after', EXAMPLES[mode])
    .helpOption('-h, --help', 'show this help')
    .exitOverride()
    // Errors are written below, in the style of every promux command.
    .configureOutput({ writeOut: io.stdout, writeErr: () => {} });
}

interface Options {
  filename?: string[];
  output: OutputFormat;
  config?: string;
  kubernetesVersion?: string;
}

export async function runCommand(mode: Mode, argv: string[], io: CommandIO): Promise<number> {
  const cli = program(mode, io);
  try {
    cli.parse(argv, { from: 'user' });
  } catch (err) {
    if (!(err instanceof CommanderError)) throw err;
    if (err.exitCode === 0) return 0;
    io.stderr(usageError(mode, err.message.replace(/^error: /, '').replace(/\.$/, '')));
    return 2;
  }
  const options = cli.opts<Options>();
  const fail = (message: string) => {
    io.stderr(`promux ${mode}: ${message}\n`);
    return 1;
  };
  if (options.filename === undefined) {
    io.stderr(usageError(mode, 'no input: give -f FILE, -f FOLDER or -f - (standard input)'));
    return 2;
  }
  const version = options.kubernetesVersion;
  if (version !== undefined && parseKubernetesVersion(version) === undefined) {
    io.stderr(usageError(mode, `--kubernetes-version: ${JSON.stringify(version)} is not a Kubernetes version such as 1.31`));
    return 2;
  }
  try {
    const config = loadConfig(options.config);
    if (version !== undefined) config.kubernetesVersion = version;
    const sources = await readSources(options.filename, io.readStdin);
    const edit = mode === 'inject' ? injectEdit(config) : uninjectEdit(config);
    const result = dryRun(sources, edit, options.output);
    if (result.problems.length > 0) {
      for (const problem of result.problems) io.stderr(`promux ${mode}: ${problem}\n`);
      return fail(`nothing written: ${result.problems.length === 1 ? 'fix the problem above' : `fix the ${result.problems.length} problems above`}`);
    }
    // The report comes last, so that on a terminal the summary is what stays in view.
    io.stdout(result.output);
    io.stderr(result.report.map((line) => `${line}\n`).join(''));
    return 0;
  } catch (err) {
    if (err instanceof InputError || err instanceof ConfigError) return fail(err.message);
    throw err;
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function main(mode: Mode, argv: string[]): Promise<number> {
  // One document is alive at a time, so V8's young generation need not grow past its first size:
  // ~15 MiB less peak memory at the same speed (BENCHMARKS.md, "Dry run"). This process only; the
  // flag is read each time V8 would grow the young generation, so setting it now takes effect.
  setFlagsFromString('--semi-space-growth-factor=1');
  // `promux inject ... | head` closes the pipe early: that is the reader's choice, not an error.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
  });
  return runCommand(mode, argv, {
    readStdin,
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
  });
}
