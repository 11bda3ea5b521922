// Command-line errors, in one style for every subcommand: what is wrong, then where the usage is.
// Loaded by every mode (the sidecar's included): node built-ins only.
import { FlagError, type FlagsOf } from './command-flags.ts';

/** "promux inject: unknown option '--bogus' (see 'promux inject --help')", with its newline. */
export function usageError(command: string | undefined, message: string): string {
  const name = command === undefined ? 'promux' : `promux ${command}`;
  return `${name}: ${message} (see '${name} --help')\n`;
}

/** Why a file could not be read, in words: the same for a manifest (-f) and a configuration file. */
export function fileErrorReason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file or directory';
  if (code === 'EACCES') return 'permission denied';
  if (code === 'EISDIR') return 'is a directory';
  return (err as Error).message;
}

/**
 * The main of a mode with snake_case flags (sidecar, proxy): its flags read from argv and the
 * environment (a bad one: the usage hint on stderr, exit 2), --help printed, else `run`.
 */
export async function runWithFlags<O>(
  mode: string,
  argv: string[],
  parse: (argv: readonly string[], env: Readonly<Record<string, string | undefined>>) => FlagsOf<O>,
  usage: () => string,
  run: (options: O) => Promise<number>,
): Promise<number> {
  let parsed: FlagsOf<O>;
  try {
    parsed = parse(argv, process.env);
  } catch (e) {
    if (!(e instanceof FlagError)) throw e;
    process.stderr.write(usageError(mode, e.message));
    return 2;
  }
  if (parsed.help) {
    process.stdout.write(usage());
    return 0;
  }
  return run(parsed.options);
}
