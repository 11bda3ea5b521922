// The webhook learns the cluster's version (for native sidecars in Job pods) from the API server's
// /version at start, unless the configuration gives it. No API server runs here: a local stand-in
// answers /version as the API server does.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import { defaultConfig } from '../../src/config/defaults.ts';
import { withKubernetesVersion } from '../../src/webhook/main.ts';
import { readServerVersion } from '../../src/webhook/tls/kube.ts';

async function standIn(answer: boolean): Promise<{ kubeConfig: KubeConfig; paths: string[]; close: () => Promise<void> }> {
  const paths: string[] = [];
  const server = createServer((req, res) => {
    paths.push(`${req.method} ${req.url}`);
    if (!answer) return; // hangs, as an API server that is not there
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ major: '1', minor: '30+', gitVersion: 'v1.30.4-eks-a737599', platform: 'linux/amd64' }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [{ name: 'c', server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, skipTLSVerify: true }],
    users: [{ name: 'u', token: 't' }],
    contexts: [{ name: 'c', cluster: 'c', user: 'u' }],
    currentContext: 'c',
  });
  return {
    kubeConfig, paths,
    close: () => { server.closeAllConnections(); return new Promise((resolve) => server.close(() => resolve())); },
  };
}

test('stand-in API: readServerVersion reads gitVersion from GET /version, and gives up after its timeout', async () => {
  const api = await standIn(true);
  try {
    assert.equal(await readServerVersion(api.kubeConfig), 'v1.30.4-eks-a737599');
    assert.deepEqual(api.paths, ['GET /version']);
  } finally {
    await api.close();
  }
  const silent = await standIn(false);
  try {
    await assert.rejects(readServerVersion(silent.kubeConfig, 200), { message: "no answer from the API server's /version within 0.2s" });
  } finally {
    await silent.close();
  }
});

test('withKubernetesVersion: the configuration wins; else the API server in a cluster; unknown otherwise, with a warning', async () => {
  const lines: string[] = [];
  const log = { info: (...a: unknown[]) => lines.push(`info ${String(a.at(-1))}`), warn: (...a: unknown[]) => lines.push(`warn ${String(a.at(-1))}`) };
  const configured = { ...defaultConfig(), kubernetesVersion: '1.29' };
  const never = async (): Promise<string> => assert.fail('the API server is not asked when the configuration says');
  assert.equal(await withKubernetesVersion(configured, log, never, true), configured);
  assert.equal((await withKubernetesVersion(defaultConfig(), log, async () => 'v1.31.0', true)).kubernetesVersion, 'v1.31.0');
  assert.equal((await withKubernetesVersion(defaultConfig(), log, never, false)).kubernetesVersion, '');
  const failing = async (): Promise<string> => { throw new Error('HTTP 403'); };
  assert.equal((await withKubernetesVersion(defaultConfig(), log, failing, true)).kubernetesVersion, '');
  assert.deepEqual(lines, [
    'info Kubernetes version from the configuration',
    'info Kubernetes version from the API server',
    'warn Kubernetes version unknown (not running in a cluster): pods whose restartPolicy is not Always are skipped (they need a native sidecar); set kubernetesVersion in the configuration',
    "warn cannot read the API server's /version: pods whose restartPolicy is not Always are skipped (they need a native sidecar); set kubernetesVersion in the configuration",
  ]);
});
