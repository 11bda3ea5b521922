// Outside tools (promtool, prometheus, kubectl, helm, ...) for tests. A missing tool skips the test
// locally with the reason, and fails it under CI=true: CI must run everything.
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { TestContext } from 'node:test';

export const REPO_ROOT = join(import.meta.dirname, '..', '..');
/** Every input the tests read from disk (see test/fixtures/README.md for where each came from). */
export const FIXTURES = join(REPO_ROOT, 'test', 'fixtures');
const TOOLS_BIN = join(REPO_ROOT, '.tools', 'bin');

const KNOWN: Record<string, string> = {
  python3: '/usr/bin/python3', // Debian's, which has python3-prometheus-client
};

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The tool's path: .tools/bin first, then PATH; undefined when missing. */
export function findTool(name: string): string | undefined {
  const known = KNOWN[name];
  if (known !== undefined) return executable(known) ? known : undefined;
  for (const dir of [TOOLS_BIN, ...(process.env.PATH ?? '').split(delimiter)]) {
    if (dir !== '' && executable(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

export const IN_CI = process.env.CI === 'true';

/**
 * The tool's path, or undefined after marking the test skipped (locally) when it is missing.
 * Under CI=true a missing tool throws, so the test fails instead of passing unseen.
 */
export function requireTool(t: TestContext, name: string): string | undefined {
  const path = findTool(name);
  if (path !== undefined) return path;
  const message = `${name} is not installed (run scripts/install-tools.sh)`;
  if (IN_CI) throw new Error(`${message}; CI=true, so this test must not be skipped`);
  t.skip(message);
  return undefined;
}
