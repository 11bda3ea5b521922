import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';
import { REPO_ROOT } from '../helpers/tools.ts';
import { CHART } from './render.ts';

// Values documented as one row though they are mappings: Kubernetes objects passed through whole.
const WHOLE = new Set(['podSecurityContext', 'securityContext', 'resources', 'metrics.serviceMonitor.tlsConfig', 'metrics.podMonitor.tlsConfig', 'metrics.grafanaDashboard.labels']);

/** Each documented value's path and default: nested mappings are walked, lists and empty mappings are leaves. */
function leaves(value: unknown, path = '', out = new Map<string, unknown>()): Map<string, unknown> {
  const walk = typeof value === 'object' && value !== null && !Array.isArray(value) && Object.keys(value).length > 0 && !WHOLE.has(path);
  if (!walk) {
    out.set(path, value);
    return out;
  }
  for (const [key, v] of Object.entries(value)) leaves(v, path === '' ? key : `${path}.${key}`, out);
  return out;
}

/** The configuration reference table of docs/install.md: key -> default, parsed as YAML. */
function documented(): Map<string, unknown> {
  const text = readFileSync(join(REPO_ROOT, 'docs', 'install.md'), 'utf8');
  const rows = new Map<string, unknown>();
  for (const line of text.split('\n')) {
    const m = /^\| `([^`]+)` \| `([^`]*)` \| (.+) \|$/.exec(line);
    if (m === null) continue;
    assert.ok(!rows.has(m[1]!), `docs/install.md documents ${m[1]} twice`);
    assert.notEqual(m[3]!.trim(), '', `docs/install.md: ${m[1]} has no meaning`);
    rows.set(m[1]!, parse(m[2]!));
  }
  return rows;
}

test('docs/install.md documents every value of values.yaml, with its default, and nothing else', () => {
  const values = leaves(parse(readFileSync(join(CHART, 'values.yaml'), 'utf8')));
  const docs = documented();
  assert.ok(values.size > 50);
  assert.deepEqual([...docs.keys()].filter((k) => !values.has(k)), [], 'documented but not in values.yaml');
  assert.deepEqual([...values.keys()].filter((k) => !docs.has(k)), [], 'in values.yaml but not documented');
  for (const [key, value] of values) assert.deepEqual(docs.get(key), value, `default of ${key}`);
});
