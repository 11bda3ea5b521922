// Reads the -f arguments the way `kubectl apply -f` does: a file, a folder (its *.yaml, *.yml and
// *.json files, sorted by name, not recursive) or "-" for standard input. Everything is read before
// anything is processed, so a missing file fails the run before a byte is written.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileErrorReason as reason } from '../usage.ts';

/** The text of one input file, named as the user gave it (or "<stdin>"). */
export interface Source {
  name: string;
  text: string;
}

/** A problem with the input that the user has to fix; printed without a stack trace. */
export class InputError extends Error {
  override name = 'InputError';
}

export const MANIFEST_EXTENSIONS = ['.yaml', '.yml', '.json'];
export const STDIN_NAME = '<stdin>';

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new InputError(`${path}: cannot read: ${reason(err)}`);
  }
}

function manifestsIn(dir: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch (err) {
    throw new InputError(`${dir}: cannot read the folder: ${reason(err)}`);
  }
  const files = entries
    .filter((name) => MANIFEST_EXTENSIONS.includes(extname(name).toLowerCase()))
    .sort()
    .map((name) => join(dir, name))
    .filter((path) => statSync(path, { throwIfNoEntry: false })?.isFile() === true);
  if (files.length === 0) {
    throw new InputError(`${dir}: no ${MANIFEST_EXTENSIONS.map((e) => `*${e}`).join(', ')} files in this folder`);
  }
  return files;
}

/** Every source named by the -f arguments, in order; `readStdin` is called for "-" (at most once). */
export async function readSources(paths: readonly string[], readStdin: () => Promise<string>): Promise<Source[]> {
  if (paths.filter((p) => p === '-').length > 1) throw new InputError('-f -: standard input can be read only once');
  const sources: Source[] = [];
  for (const path of paths) {
    if (path === '-') {
      sources.push({ name: STDIN_NAME, text: await readStdin() });
      continue;
    }
    let isDirectory: boolean;
    try {
      isDirectory = statSync(path).isDirectory();
    } catch (err) {
      throw new InputError(`${path}: cannot read: ${reason(err)}`);
    }
    const files = isDirectory ? manifestsIn(path) : [path];
    for (const file of files) sources.push({ name: file, text: readText(file) });
  }
  return sources;
}
