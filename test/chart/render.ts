// Renders charts/promux with the real helm binary and parses the objects.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { REPO_ROOT, requireTool } from '../helpers/tools.ts';

export const CHART = join(REPO_ROOT, 'charts', 'promux');

export type K8sObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
};

export interface HelmResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs helm with `args`, values (if any) from a temporary file; undefined when helm is missing (skipped). */
export function helm(t: TestContext, args: string[], values?: object): HelmResult | undefined {
  const bin = requireTool(t, 'helm');
  if (bin === undefined) return undefined;
  const dir = mkdtempSync(join(tmpdir(), 'promux-helm-'));
  try {
    const extra: string[] = [];
    if (values !== undefined) {
      const file = join(dir, 'values.json');
      writeFileSync(file, JSON.stringify(values));
      extra.push('--values', file);
    }
    // A private HOME keeps helm away from any repositories or plugins configured on the machine.
    const result = spawnSync(bin, [...args, ...extra], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH ?? '', HOME: dir, HELM_CONFIG_HOME: dir, HELM_CACHE_HOME: dir, HELM_DATA_HOME: dir },
      timeout: 60_000,
    });
    if (result.error !== undefined) throw result.error;
    return { status: result.status, stdout: result.stdout, stderr: result.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Parses multi-document YAML into objects, dropping empty documents. */
export function parseObjects(text: string): K8sObject[] {
  return parseAllDocuments(text)
    .map((doc) => {
      if (doc.errors.length > 0) throw new Error(`rendered YAML is invalid: ${doc.errors[0]!.message}`);
      return doc.toJS() as K8sObject | null;
    })
    .filter((o): o is K8sObject => o !== null);
}

interface RenderOptions {
  release?: string;
  namespace?: string;
  /** Include the `helm test` hooks (off: the objects an install creates). */
  tests?: boolean;
}

/**
 * `helm template` of the chart (release "promux", namespace "promux" unless given), as objects;
 * undefined when skipped. A render error fails the test with helm's message.
 */
export function render(t: TestContext, values?: object, options: RenderOptions = {}): K8sObject[] | undefined {
  const text = renderText(t, values, options);
  return text === undefined ? undefined : parseObjects(text);
}

export function renderText(
  t: TestContext,
  values?: object,
  { release = 'promux', namespace = 'promux', tests = false }: RenderOptions = {},
): string | undefined {
  const result = helm(t, ['template', release, CHART, '--namespace', namespace, ...(tests ? [] : ['--skip-tests'])], values);
  if (result === undefined) return undefined;
  if (result.status !== 0) throw new Error(`helm template failed (exit ${result.status}): ${result.stderr.trim()}`);
  return result.stdout;
}

/** The one object of `kind` (and `name` when given); throws when there is not exactly one. */
export function one(objects: K8sObject[], kind: string, name?: string): K8sObject {
  const found = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  if (found.length !== 1) throw new Error(`expected one ${kind}${name === undefined ? '' : ` ${name}`}, found ${found.length}`);
  return found[0]!;
}

export function kinds(objects: K8sObject[]): string[] {
  return objects.map((o) => `${o.kind}/${o.metadata.name}`).sort();
}
