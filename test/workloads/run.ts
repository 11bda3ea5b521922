// Runs `promux inject|uninject` for tests: in-process (fast, for golden files) or as a real child
// process of bin/promux.js (for exit codes, streams and stdin).
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { runCommand, type Mode } from '../../src/workloads/command.ts';
import { REPO_ROOT } from '../helpers/tools.ts';

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

export async function runInProcess(mode: Mode, args: string[], stdin = ''): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const code = await runCommand(mode, args, {
    readStdin: async () => stdin,
    stdout: (text) => (stdout += text),
    stderr: (text) => (stderr += text),
  });
  return { code, stdout, stderr };
}

const BIN = join(REPO_ROOT, 'bin', 'promux.js');

export function runCli(args: string[], stdin = ''): Run {
  const r = spawnSync(process.execPath, [BIN, ...args], { input: stdin, encoding: 'utf8', cwd: REPO_ROOT, timeout: 60_000 });
  if (r.error !== undefined) throw r.error;
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

type Json = Record<string, unknown>;

/** The values of a YAML stream, empty documents left out. */
export function yamlValues(text: string): Json[] {
  return parseAllDocuments(text, { merge: true })
    .map((d) => d.toJS() as Json | null)
    .filter((v): v is Json => v !== null);
}

/** The objects of a stream of values as the dry run counts them: a List's items one by one. */
export function objectsOf(values: readonly Json[]): Json[] {
  return values.flatMap((v) => (v.kind === 'List' && v.apiVersion === 'v1' ? objectsOf((v.items ?? []) as Json[]) : [v]));
}
