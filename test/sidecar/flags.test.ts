import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { FlagError, parseSidecarFlags, usage, type SidecarOptions } from '../../src/sidecar/flags.ts';
import { REPO_ROOT } from '../helpers/tools.ts';

function options(argv: string[], env: Record<string, string> = {}): SidecarOptions {
  const parsed = parseSidecarFlags(argv, env);
  assert.equal(parsed.help, false);
  return (parsed as { options: SidecarOptions }).options;
}

test('defaults match the original multiplexer sidecar, plus on-demand scraping', () => {
  const o = options(['-m', 'app:8080']);
  assert.deepEqual(o, {
    targets: [{ container: 'app', port: 8080, path: '/metrics', scheme: 'http' }],
    listenAddress: '0.0.0.0',
    port: 13434,
    endpoint: '/metrics',
    containerLabel: 'container',
    scrapeIntervalMs: 0,
    scrapeTimeoutMs: 10_000,
    maxTargetBytes: 32 * 1024 * 1024,
  });
});

test('short, long, kebab-case and --name=value spellings are one flag each', () => {
  const spellings = [
    ['-e', '9000', '-p', '/m', '-n', 'ctr', '-i', '250', '-m', 'a:1'],
    ['--export_to', '9000', '--endpoint', '/m', '--container_label', 'ctr', '--scrape_interval', '250', '--container_to_port_map', 'a:1'],
    ['--export-to=9000', '--endpoint=/m', '--container-label=ctr', '--scrape-interval=250', '--container-to-port-map=a:1'],
    ['-e9000', '-p=/m', '-nctr', '-i250', '-ma:1'],
  ];
  for (const argv of spellings) {
    const o = options(argv);
    assert.deepEqual(
      [o.port, o.endpoint, o.containerLabel, o.scrapeIntervalMs, o.targets.map((t) => t.container)],
      [9000, '/m', 'ctr', 250, ['a']],
      argv.join(' '),
    );
  }
});

test('the target map is repeatable and comma-separated; excluded containers are removed', () => {
  const o = options(['-m', 'a:1,b:https:2/x', '-m', 'c:3', '-x', 'b', '--exclude-containers', 'nope,c']);
  assert.deepEqual(o.targets, [{ container: 'a', port: 1, path: '/metrics', scheme: 'http' }]);
});

test('durations and sizes: --scrape_interval bare integers are milliseconds, --scrape_timeout bare numbers seconds', () => {
  const o = options(['-m', 'a:1', '-i', '15s', '--scrape_timeout', '2.5', '--max_target_bytes', '1Mi']);
  assert.deepEqual([o.scrapeIntervalMs, o.scrapeTimeoutMs, o.maxTargetBytes], [15_000, 2_500, 1024 * 1024]);
  assert.equal(options(['-m', 'a:1', '--scrape-timeout', '500ms']).scrapeTimeoutMs, 500);
});

test('every flag also comes from PROMUX_* variables; the command line wins', () => {
  const env = {
    PROMUX_CONTAINER_TO_PORT_MAP: 'a:1,b:2',
    PROMUX_EXPORT_TO: '9100',
    PROMUX_ENDPOINT: '/env',
    PROMUX_CONTAINER_LABEL: 'source',
    PROMUX_SCRAPE_INTERVAL: '1000',
    PROMUX_EXCLUDE_CONTAINERS: 'b',
    PROMUX_SCRAPE_TIMEOUT: '3s',
    PROMUX_MAX_TARGET_BYTES: '1MiB',
    PROMUX_LISTEN_ADDRESS: '127.0.0.1',
  };
  const fromEnv = options([], env);
  assert.deepEqual(
    [fromEnv.targets.map((t) => t.container), fromEnv.port, fromEnv.endpoint, fromEnv.containerLabel,
      fromEnv.scrapeIntervalMs, fromEnv.scrapeTimeoutMs, fromEnv.maxTargetBytes, fromEnv.listenAddress],
    [['a'], 9100, '/env', 'source', 1000, 3000, 1024 * 1024, '127.0.0.1'],
  );
  const flagsWin = options(['-m', 'c:3', '-e', '9200', '--listen-address', '::1'], env);
  assert.deepEqual([flagsWin.targets.map((t) => t.container), flagsWin.port, flagsWin.listenAddress], [['c'], 9200, '::1']);
});

test('-h and --help ask for the usage, which names every flag and its variable', () => {
  assert.deepEqual(parseSidecarFlags(['-h'], {}), { help: true });
  assert.deepEqual(parseSidecarFlags(['--help', '--bogus'], {}), { help: true });
  for (const name of ['container_to_port_map', 'export_to', 'endpoint', 'container_label', 'scrape_interval',
    'exclude_containers', 'scrape_timeout', 'max_target_bytes', 'listen_address']) {
    assert.match(usage(), new RegExp(`--${name} `));
  }
  assert.match(usage(), /PROMUX_<NAME>/);
});

test('bad flags are FlagErrors naming the flag and the value', () => {
  const cases: [string[], Record<string, string>, RegExp][] = [
    [[], {}, /no targets/],
    [['-m', 'a:1', '-x', 'a'], {}, /excludes every container/],
    [['-m', 'a:http'], {}, /--container_to_port_map: .*not a port number/],
    [['-m', 'a:1', '-m', 'a:1/metrics'], {}, /--container_to_port_map: "a:1" appears twice: the same endpoint would be scraped twice/],
    [['-m', 'a:1/x y'], {}, /--container_to_port_map: "a:1\/x y": path "\/x y" has a character HTTP does not allow/],
    [[], { PROMUX_CONTAINER_TO_PORT_MAP: 'A_B:1' }, /PROMUX_CONTAINER_TO_PORT_MAP: .*not a container name/],
    [['-m', 'a:1', '-e', '70000'], {}, /--export_to: "70000" is not a port/],
    [['-m', 'a:1', '-p', 'metrics'], {}, /--endpoint: "metrics" must start with "\/"/],
    [['-m', 'a:1', '-n', 'my-label'], {}, /--container_label: "my-label" is not a Prometheus label name/],
    [['-m', 'a:1', '-n', '__name__'], {}, /not a Prometheus label name/],
    [['-m', 'a:1', '-n', 'endpoint'], {}, /--container_label: "endpoint" is a label of promux's own metrics/],
    [['-m', 'a:1', '-i', 'often'], {}, /--scrape_interval: "often"/],
    [['-m', 'a:1', '--scrape_timeout', '0s'], {}, /--scrape_timeout: "0s" is not a positive duration/],
    [['-m', 'a:1'], { PROMUX_SCRAPE_TIMEOUT: 'soon' }, /PROMUX_SCRAPE_TIMEOUT: "soon"/],
    [['-m', 'a:1', '--max_target_bytes', 'lots'], {}, /--max_target_bytes: "lots"/],
    [['-m', 'a:1', '--colour'], {}, /unknown option '--colour'/],
    [['-m', 'a:1', '-z'], {}, /unknown option '-z'/],
    [['-m', 'a:1', '-e', '1', '-e', '2'], {}, /--export_to given twice/],
    [['-m'], {}, /--container_to_port_map needs a value/],
    [['a:1'], {}, /unexpected argument "a:1"/],
  ];
  for (const [argv, env, message] of cases) {
    assert.throws(() => parseSidecarFlags(argv, env), (e: unknown) => e instanceof FlagError && message.test(e.message),
      `${argv.join(' ')} ${JSON.stringify(env)}`);
  }
});

test('promux sidecar with a bad flag prints one line, no stack trace, and exits 2', () => {
  const r = spawnSync(process.execPath, [join(REPO_ROOT, 'bin', 'promux.js'), 'sidecar', '-m', 'app:8080', '-e', 'abc'], {
    encoding: 'utf8',
    env: { ...process.env, PROMUX_CONTAINER_TO_PORT_MAP: '' },
  });
  assert.equal(r.status, 2);
  assert.equal(r.stderr, 'promux sidecar: --export_to: "abc" is not a port (0-65535) (see \'promux sidecar --help\')\n');
  assert.equal(r.stdout, '');
});
