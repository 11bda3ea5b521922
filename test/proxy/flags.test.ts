import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { envNames } from '../../src/command-flags.ts';
import { FLAGS, FlagError, parseProxyFlags, usage, type ProxyOptions } from '../../src/proxy/flags.ts';
import { REPO_ROOT } from '../helpers/tools.ts';

function options(argv: string[], env: Record<string, string> = {}): ProxyOptions {
  const parsed = parseProxyFlags(argv, env);
  assert.equal(parsed.help, false);
  return (parsed as { options: ProxyOptions }).options;
}

test('the original metrics-k8s-proxy\'s configuration works as it is: POD_LABEL_SELECTOR, SCRAPE_TIMEOUT, PORT; port 15090, 9s', () => {
  assert.deepEqual(options([], { POD_LABEL_SELECTOR: 'app=ztunnel' }), {
    selector: 'app=ztunnel', namespaces: undefined, allNamespaces: false, listenAddress: '0.0.0.0', port: 15090, endpoint: '/metrics',
    scrapeTimeoutMs: 9000, concurrency: 64, maxTargetBytes: 32 * 1024 * 1024, maxTotalBytes: 64 * 1024 * 1024,
    labels: { namespace: 'namespace', pod: 'pod', container: 'container' }, kubeconfig: undefined,
  });
  const o = options([], { POD_LABEL_SELECTOR: 'app=ztunnel', SCRAPE_TIMEOUT: '15s', PORT: '9090' });
  assert.deepEqual([o.scrapeTimeoutMs, o.port], [15_000, 9090]);
  // Its earlier flags too.
  const flags = options(['--labels', 'app=ztunnel', '--scrape_timeout', '1m', '--port', '9091']);
  assert.deepEqual([flags.selector, flags.scrapeTimeoutMs, flags.port], ['app=ztunnel', 60_000, 9091]);
  assert.equal(options(['--labels=app=x', '--timeout=15s']).scrapeTimeoutMs, 15_000);
});

test('kubectl\'s spellings: -l, -n (repeatable, comma-separated), -A; PROMUX_* variables win over the original\'s, flags over both', () => {
  const o = options(['-l', 'app in (a,b)', '-n', 'shop,pay', '--namespace', 'shop']);
  assert.deepEqual([o.selector, o.namespaces], ['app in (a,b)', ['shop', 'pay']]);
  assert.equal(options(['-l', 'a=b', '-A']).allNamespaces, true);
  assert.equal(options(['-l', 'a=b', '--all-namespaces=false']).allNamespaces, false);
  assert.equal(options(['-l', 'a=b'], { PROMUX_ALL_NAMESPACES: 'true' }).allNamespaces, true);
  assert.equal(options([], { PROMUX_SELECTOR: 'a=1', POD_LABEL_SELECTOR: 'a=2' }).selector, 'a=1');
  assert.equal(options(['-l', 'a=3'], { PROMUX_SELECTOR: 'a=1' }).selector, 'a=3');
  const labels = options(['-l', 'a=b', '--pod-label', 'k8s_pod_name', '--namespace_label', 'k8s_namespace']).labels;
  assert.deepEqual(labels, { namespace: 'k8s_namespace', pod: 'k8s_pod_name', container: 'container' });
  assert.equal(options(['-l', 'a=b', '--kubeconfig', '/etc/kube.yaml']).kubeconfig, '/etc/kube.yaml');
});

test('-h and --help ask for the usage, which names every flag and the original\'s variables', () => {
  assert.deepEqual(parseProxyFlags(['--help'], {}), { help: true });
  for (const name of ['selector', 'namespace', 'all_namespaces', 'port', 'scrape_timeout', 'concurrency', 'max_total_bytes', 'pod_label']) {
    assert.match(usage(), new RegExp(`--${name}( |,|$)`, 'm'));
  }
  for (const variable of ['POD_LABEL_SELECTOR', 'SCRAPE_TIMEOUT', 'PORT']) assert.match(usage(), new RegExp(variable));
});

test('bad flags are FlagErrors naming the flag and the value', () => {
  const cases: [string[], Record<string, string>, RegExp][] = [
    [[], {}, /no selector: give --selector app=<name> \(or POD_LABEL_SELECTOR\)/],
    [['-l', ' '], {}, /no selector/],
    [['-l', 'a=b', '-n', 'Shop'], {}, /--namespace: "Shop" is not a namespace name/],
    [['-l', 'a=b', '-n', 'x', '-A'], {}, /exclude each other/],
    [['-l', 'a=b', '--all_namespaces=maybe'], {}, /--all_namespaces: "maybe" is not true or false/],
    [['-l', 'a=b'], { PORT: '99999' }, /PORT: "99999" is not a port/],
    [['-l', 'a=b'], { SCRAPE_TIMEOUT: 'soon' }, /SCRAPE_TIMEOUT: "soon" is not a positive duration/],
    [['-l', 'a=b', '--concurrency', '0'], {}, /--concurrency: "0" is not a positive whole number/],
    [['-l', 'a=b', '--max_total_bytes', 'lots'], {}, /--max_total_bytes: "lots"/],
    [['-l', 'a=b', '--pod_label', 'pod-name'], {}, /--pod_label: "pod-name" is not a Prometheus label name/],
    [['-l', 'a=b', '--pod_label', 'endpoint'], {}, /is a label of promux's own metrics/],
    [['-l', 'a=b', '--pod_label', 'namespace'], {}, /must differ/],
    [['-l', 'a=b', 'extra'], {}, /unexpected argument "extra"/],
  ];
  for (const [argv, env, message] of cases) {
    assert.throws(() => parseProxyFlags(argv, env), (e: unknown) => e instanceof FlagError && message.test(e.message), `${argv.join(' ')} ${JSON.stringify(env)}`);
  }
});

test('promux proxy with a bad flag prints one line and exits 2; --help exits 0', () => {
  const bin = join(REPO_ROOT, 'bin', 'promux.js');
  const env = { ...process.env, POD_LABEL_SELECTOR: '', PROMUX_SELECTOR: '' };
  const bad = spawnSync(process.execPath, [bin, 'proxy', '-l', 'a=b', '--port', 'x'], { encoding: 'utf8', env });
  assert.equal(bad.status, 2);
  assert.equal(bad.stderr, 'promux proxy: --port: "x" is not a port (0-65535) (see \'promux proxy --help\')\n');
  const help = spawnSync(process.execPath, [bin, 'proxy', '--help'], { encoding: 'utf8', env });
  assert.equal(help.status, 0);
  assert.match(help.stdout, /^Usage: promux proxy --selector/);
});

test('the README\'s table of the proxy\'s flags is the code\'s: every flag, its variables and its default', () => {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf('\n## Proxy: `promux proxy`\n');
  assert.notEqual(start, -1);
  const rows = readme.slice(start, readme.indexOf('\n## ', start + 1)).split('\n').filter((l) => l.startsWith('| `-'));
  assert.equal(rows.length, FLAGS.length, rows.join('\n'));
  for (const spec of FLAGS) {
    const row = rows.find((r) => r.split('|')[1]!.includes(`\`--${spec.name}\``));
    assert.ok(row !== undefined, `README documents --${spec.name}`);
    const [, flag, env, dflt] = row.split('|').map((c) => c.trim());
    for (const alias of [...(spec.aliases ?? []).map((a) => `--${a}`), ...(spec.short === undefined ? [] : [`-${spec.short}`])]) {
      assert.ok(flag!.includes(`\`${alias}\``), `${spec.name}: ${alias}`);
    }
    assert.deepEqual(env!.split(',').map((e) => e.trim().replaceAll('`', '')), envNames(spec), `${spec.name}: variables`);
    if (spec.defaultText !== '') assert.equal(dflt, spec.defaultText, `${spec.name}: default`);
  }
});
