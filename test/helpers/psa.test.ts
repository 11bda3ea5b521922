import assert from 'node:assert/strict';
import { test } from 'node:test';
import { psaRestrictedProblems } from './psa.ts';

const restrictedContext = {
  allowPrivilegeEscalation: false,
  capabilities: { drop: ['ALL'] },
  readOnlyRootFilesystem: true,
};

function podSpec(over: Record<string, unknown> = {}, container: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
    containers: [{ name: 'app', image: 'app:1', securityContext: { ...restrictedContext }, ...container }],
    volumes: [{ name: 'config', configMap: { name: 'app' } }, { name: 'tmp', emptyDir: {} }],
    ...over,
  };
}

test('psaRestrictedProblems: a restricted pod spec has none', () => {
  assert.deepEqual(psaRestrictedProblems(podSpec()), []);
  // Container-level settings stand in for the pod's, and NET_BIND_SERVICE may be added.
  const perContainer = podSpec({ securityContext: {} }, {
    securityContext: {
      ...restrictedContext,
      runAsNonRoot: true,
      seccompProfile: { type: 'Localhost', localhostProfile: 'p.json' },
      capabilities: { drop: ['ALL'], add: ['NET_BIND_SERVICE'] },
    },
  });
  assert.deepEqual(psaRestrictedProblems(perContainer), []);
});

test('psaRestrictedProblems: each restricted rule is reported with the field', () => {
  const cases: [Record<string, unknown>, Record<string, unknown>, string][] = [
    [{ hostNetwork: true }, {}, 'hostNetwork must not be true'],
    [{ hostPID: true }, {}, 'hostPID must not be true'],
    [{ securityContext: { seccompProfile: { type: 'RuntimeDefault' } } }, {},
      'containers[app].securityContext.runAsNonRoot must be true (here or in the pod\'s securityContext)'],
    [{ securityContext: { runAsNonRoot: true } }, {},
      'containers[app].securityContext.seccompProfile.type must be set (here or in the pod\'s securityContext)'],
    [{ volumes: [{ name: 'host', hostPath: { path: '/' } }] }, {}, 'volumes[host]: volume type hostPath is not allowed'],
    [{}, { securityContext: { ...restrictedContext, allowPrivilegeEscalation: true } },
      'containers[app].securityContext.allowPrivilegeEscalation must be false'],
    [{}, { securityContext: { allowPrivilegeEscalation: false } }, 'containers[app].securityContext.capabilities.drop must include ALL'],
    [{}, { securityContext: { ...restrictedContext, capabilities: { drop: ['ALL'], add: ['NET_ADMIN'] } } },
      'containers[app].securityContext.capabilities.add: NET_ADMIN is not allowed (only NET_BIND_SERVICE)'],
    [{}, { securityContext: { ...restrictedContext, privileged: true } }, 'containers[app].securityContext.privileged must not be true'],
    [{}, { securityContext: { ...restrictedContext, runAsUser: 0 } }, 'containers[app].securityContext.runAsUser must not be 0'],
    [{}, { securityContext: { ...restrictedContext, runAsNonRoot: false } },
      'containers[app].securityContext.runAsNonRoot must be true (here or in the pod\'s securityContext)'],
    [{}, { securityContext: { ...restrictedContext, seccompProfile: { type: 'Unconfined' } } },
      'containers[app].securityContext.seccompProfile.type must be RuntimeDefault or Localhost, is Unconfined'],
    [{}, { ports: [{ containerPort: 80, hostPort: 80 }] }, 'containers[app].ports: hostPort 80 is not allowed'],
    [{ securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' }, sysctls: [{ name: 'kernel.msgmax', value: '1' }] } },
      {}, 'securityContext.sysctls: kernel.msgmax is not a safe sysctl'],
  ];
  for (const [over, container, expected] of cases) {
    assert.deepEqual(psaRestrictedProblems(podSpec(over, container)), [expected], JSON.stringify({ over, container }));
  }
});

test('psaRestrictedProblems: init and ephemeral containers are checked too', () => {
  const spec = podSpec({
    initContainers: [{ name: 'init', image: 'i:1' }],
    ephemeralContainers: [{ name: 'debug', image: 'd:1', securityContext: { ...restrictedContext } }],
  });
  assert.deepEqual(psaRestrictedProblems(spec), [
    'initContainers[init].securityContext.allowPrivilegeEscalation must be false',
    'initContainers[init].securityContext.capabilities.drop must include ALL',
  ]);
});
