import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { InputError, readSources } from '../../src/workloads/input.ts';

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'promux-input-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const noStdin = async (): Promise<string> => assert.fail('stdin read');

test('a folder gives its *.yaml, *.yml and *.json files sorted by name, not its subfolders', async (t) => {
  const dir = tempDir(t);
  for (const name of ['b.yml', 'a.yaml', 'c.JSON', 'notes.txt', 'kustomization.yaml.bak']) writeFileSync(join(dir, name), name);
  mkdirSync(join(dir, 'nested.yaml'));
  writeFileSync(join(dir, 'nested.yaml', 'd.yaml'), 'd');
  const sources = await readSources([dir], noStdin);
  assert.deepEqual(sources.map((s) => [s.name, s.text]), [
    [join(dir, 'a.yaml'), 'a.yaml'], [join(dir, 'b.yml'), 'b.yml'], [join(dir, 'c.JSON'), 'c.JSON'],
  ]);
});

test('files, folders and stdin are read in the order given', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'one.yaml'), '1');
  mkdirSync(join(dir, 'more'));
  writeFileSync(join(dir, 'more', 'two.json'), '2');
  const sources = await readSources([join(dir, 'more'), '-', join(dir, 'one.yaml')], async () => 'from stdin');
  assert.deepEqual(sources.map((s) => s.text), ['2', 'from stdin', '1']);
  assert.equal(sources[1]?.name, '<stdin>');
});

test('unreadable input is an InputError naming the path and the reason', async (t) => {
  const dir = tempDir(t);
  mkdirSync(join(dir, 'empty'));
  writeFileSync(join(dir, 'secret.yaml'), 'x');
  chmodSync(join(dir, 'secret.yaml'), 0o000);
  const cases: [string[], RegExp][] = [
    [[join(dir, 'missing.yaml')], /missing\.yaml: cannot read: no such file or directory$/],
    [[join(dir, 'empty')], /empty: no \*\.yaml, \*\.yml, \*\.json files in this folder$/],
    [['-', '-'], /^-f -: standard input can be read only once$/],
  ];
  if (process.getuid?.() !== 0) cases.push([[join(dir, 'secret.yaml')], /secret\.yaml: cannot read: permission denied$/]);
  for (const [paths, expected] of cases) {
    await assert.rejects(readSources(paths, async () => ''), (err: unknown) => {
      assert.ok(err instanceof InputError);
      assert.match(err.message, expected);
      return true;
    });
  }
});
