// Command-line errors, in one style for every subcommand: what is wrong, then where the usage is.
// Loaded by every mode (the sidecar's included): node built-ins only.

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
