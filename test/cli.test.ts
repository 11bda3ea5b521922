import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { VERSION } from '../src/version.ts';
import { REPO_ROOT } from './helpers/tools.ts';

const bin = join(REPO_ROOT, 'bin', 'promux.js');

test('promux --help lists every mode and exits 0', () => {
  const r = spawnSync(process.execPath, [bin, '--help'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  for (const mode of ['webhook', 'sidecar', 'proxy', 'inject', 'uninject', 'demo']) assert.match(r.stdout, new RegExp(`^  ${mode} `, 'm'));
});

test('an unknown command names itself and exits 2', () => {
  const r = spawnSync(process.execPath, [bin, 'injekt'], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown command 'injekt'/);
});

test('the version in src/version.ts is the one in package.json', () => {
  const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
  assert.equal(VERSION, pkg.version);
});

function promux(args: string[], input = ''): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', input, env: { PATH: process.env.PATH ?? '' } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('command-line errors read alike in every subcommand: what is wrong, then where the help is; exit 2', () => {
  for (const mode of ['inject', 'uninject', 'webhook', 'sidecar', 'proxy', 'demo']) {
    const r = promux([mode, '--bogus']);
    assert.equal(r.status, 2, mode);
    assert.equal(r.stderr, `promux ${mode}: unknown option '--bogus' (see 'promux ${mode} --help')\n`, mode);
    assert.equal(r.stdout, '', mode);
  }
  const unknown = promux(['injekt']);
  assert.equal(unknown.stderr, "promux: unknown command 'injekt' (see 'promux --help')\n");
  const choice = promux(['inject', '-f', '-', '-o', 'xml']);
  assert.equal(choice.status, 2);
  assert.equal(choice.stderr, "promux inject: option '-o, --output <format>' argument 'xml' is invalid. Allowed choices are yaml, json, patch (see 'promux inject --help')\n");
});

test('a missing --config file is said like a missing -f file, by inject and the webhook alike', () => {
  const missing = join(REPO_ROOT, 'no-such-config.yaml');
  const input = promux(['inject', '-f', missing]);
  assert.equal(input.status, 1);
  assert.equal(input.stderr, `promux inject: ${missing}: cannot read: no such file or directory\n`);
  const config = promux(['inject', '-f', '-', '--config', missing], 'apiVersion: v1\nkind: Service\nmetadata: {name: a}\n');
  assert.equal(config.status, 1);
  assert.equal(config.stderr, `promux inject: ${missing}: cannot read: no such file or directory\n`);
  const webhook = promux(['webhook', '--config', missing, '--tls-cert-file', 'a', '--tls-private-key-file', 'b']);
  assert.equal(webhook.stderr, `promux webhook: ${missing}: cannot read: no such file or directory\n`);
});

test('a JSON syntax error is called a JSON error, with its line and column, in manifests and configuration', () => {
  const manifest = promux(['inject', '-f', '-'], '{\n  "apiVersion": "v1",\n  "kind": "Pod"\n  "metadata": {}\n}\n');
  assert.equal(manifest.status, 1);
  assert.match(manifest.stderr, /^promux inject: <stdin>: document 1 \(line 1\): not valid JSON: Expected ',' or '}' after property value \(line 4, column 3\)$/m);
  // A stream of JSON objects (what `promux inject -o json` writes) is read back, each object a document.
  const pods = readFileSync(join(REPO_ROOT, 'examples', 'two-container-pod.yaml'), 'utf8');
  const json = promux(['inject', '-f', '-', '-o', 'json'], `${pods}---\napiVersion: v1\nkind: Service\nmetadata: {name: shop}\n`);
  assert.equal(json.status, 0, json.stderr);
  const back = promux(['uninject', '-f', '-', '-o', 'json'], json.stdout);
  assert.equal(back.status, 0, back.stderr);
  assert.match(back.stderr, /^2 objects in 1 file: 1 restored, 1 passed through$/m);
  const second = promux(['inject', '-f', '-'], `${json.stdout}\n{"apiVersion": "v1", "kind": "Service",}\n`);
  assert.match(second.stderr, /<stdin>: document 3 \(line \d+\): not valid JSON: Expected double-quoted property name \(line \d+, column 40\)/);
  const dir = mkdtempSync(join(tmpdir(), 'promux-cli-'));
  try {
    const config = join(dir, 'promux.json');
    writeFileSync(config, '{"minContainers": 3,\n "sidecar": {"port": 9000,}}\n');
    const r = promux(['inject', '-f', '-', '--config', config], 'apiVersion: v1\nkind: Service\nmetadata: {name: a}\n');
    assert.equal(r.stderr, `promux inject: ${config}: not valid JSON: Expected double-quoted property name (line 2, column 27)\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
