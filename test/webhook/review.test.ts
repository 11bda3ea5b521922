// review(): the pure decision from an AdmissionReview to the answer, without a server.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { defaultConfig } from '../../src/config/defaults.ts';
import { injectPod } from '../../src/inject/index.ts';
import type { InjectResult } from '../../src/inject/types.ts';
import { answerJson, review } from '../../src/webhook/review.ts';
import { createReview, fixturePods } from './helpers.ts';

type Obj = Record<string, unknown>;
const config = defaultConfig();
const gateway = fixturePods('shop')[0]!.pod;

function answer(body: unknown, inject = injectPod) {
  const outcome = review(body, config, inject);
  assert.ok(outcome.ok, 'an AdmissionReview');
  return outcome;
}

const skipped = (over: Partial<InjectResult>): InjectResult => ({
  decision: 'skip', skipCode: 'no-target', reason: 'no container serves metrics', targets: [], pod: {}, patch: [],
  warnings: [], ...over,
});

test('an injected pod: JSON Patch in base64, the targets as audit annotation, the decision summarized', () => {
  const { review: out, summary } = answer(createReview(gateway));
  const patch = JSON.parse(Buffer.from(out.response.patch!, 'base64').toString('utf8')) as { op: string; path: string }[];
  assert.ok(patch.length > 0 && patch.every((op) => typeof op.op === 'string' && op.path.startsWith('/')));
  assert.deepEqual(out.response.auditAnnotations, { injected: 'gateway:8082,faas-netes:8081' });
  assert.deepEqual({ decision: summary.decision, pod: summary.pod, targets: summary.targets },
    { decision: 'injected', pod: 'gateway-7d9c8b6f5-', targets: 'gateway:8082,faas-netes:8081' });
});

test('the pod is named by metadata.name, else the request name, else generateName', () => {
  const named = structuredClone(gateway);
  (named.metadata as Obj).name = 'gateway-abc';
  assert.equal(answer(createReview(named)).summary.pod, 'gateway-abc');
  assert.equal(answer(createReview(gateway, { name: 'from-request' })).summary.pod, 'from-request');
  assert.equal(answer(createReview(gateway)).summary.pod, 'gateway-7d9c8b6f5-');
});

test('warnings: quiet skips stay quiet; a pod that asked for injection hears why not', () => {
  const quiet = answer(createReview(gateway), () => skipped({ skipCode: 'no-scrape-annotation', reason: 'not scraped' }));
  assert.equal(quiet.review.response.warnings, undefined);

  const asked = structuredClone(gateway);
  ((asked.metadata as Obj).annotations as Obj)['promux.io/inject'] = 'true';
  const told = answer(createReview(asked), () => skipped({ skipCode: 'too-few-containers', reason: 'one container' }));
  assert.deepEqual(told.review.response.warnings, ['promux: sidecar not injected: one container']);

  const again = answer(createReview(asked), () => skipped({ skipCode: 'already-injected', reason: 'already injected' }));
  assert.equal(again.review.response.warnings, undefined, 'a re-invocation is not news');
});

test('warnings: a pod skipped for its sidecar settings (a root pod left to the platform\'s uid, a bad resource annotation) hears why', () => {
  const root = structuredClone(gateway);
  (root.spec as Obj).securityContext = { runAsUser: 0 };
  const platformUid = { ...config, sidecar: { ...config.sidecar, runAsUser: null } };
  const rootAnswer = review(createReview(root), platformUid, injectPod);
  assert.ok(rootAnswer.ok);
  assert.match(rootAnswer.review.response.warnings![0]!, /^promux: sidecar not injected: the pod's securityContext.runAsUser is 0 /);

  const sized = structuredClone(gateway);
  ((sized.metadata as Obj).annotations as Obj)['promux.io/sidecar-memory-limit'] = '256m';
  assert.match(answer(createReview(sized)).review.response.warnings![0]!,
    /^promux: sidecar not injected: annotation promux.io\/sidecar-memory-limit is "256m", not a whole number of bytes/);
});

test('warnings are single lines without control characters, of at most 200 characters, at most 5', () => {
  const noisy = answer(createReview(gateway), () => skipped({
    reason: `line one\nline two\t\u0007café ${'x'.repeat(300)}`,
    warnings: Array.from({ length: 9 }, (_, i) => `warning ${i}`),
  }));
  const warnings = noisy.review.response.warnings!;
  assert.equal(warnings.length, 5);
  for (const w of warnings) {
    assert.doesNotMatch(w, /[\p{Cc}\p{Cf}]/u);
    assert.ok(w.length <= 200);
  }
  assert.match(warnings[0]!, /^promux: sidecar not injected: line one line two café x+\.\.\.$/);
});

test('property: any request object is answered allowed with its uid, and a patch only with an injection', () => {
  fc.assert(
    fc.property(fc.jsonValue(), fc.dictionary(fc.string(), fc.jsonValue()), (object, annotations) => {
      const pod = structuredClone(gateway);
      (pod.metadata as Obj).annotations = { ...((pod.metadata as Obj).annotations as Obj), ...annotations };
      for (const candidate of [object, pod]) {
        const body = createReview(gateway, { object: candidate });
        const outcome = review(body, config, injectPod);
        assert.ok(outcome.ok);
        assert.equal(outcome.review.response.uid, (body.request as Obj).uid);
        assert.equal(outcome.review.response.allowed, true);
        assert.equal(outcome.review.response.patch !== undefined, outcome.summary.decision === 'injected');
        assert.equal(answerJson(outcome.review), JSON.stringify(outcome.review), 'the answer as written');
      }
    }),
    { numRuns: 150 },
  );
});

test('answers are written exactly as JSON.stringify writes them: injected, skipped with warnings, failed, odd uids and text', () => {
  const odd = createReview(gateway, { uid: 'a"b\\c\u2028\u0001' });
  const cases = [
    answer(createReview(gateway)),
    answer(odd),
    answer(createReview(gateway), () => skipped({ reason: 'quote " backslash \\ tab \t é 😀', warnings: ['w "1"', 'w\u0000'] })),
    answer(createReview(gateway), () => {
      throw new Error('boom');
    }),
    answer(createReview(gateway), () => ({ ...injectPod(gateway, config), targets: [{ container: 'a"b', port: 1, path: '/m"', scheme: 'http' }] })),
  ];
  for (const { review: out } of cases) assert.equal(answerJson(out), JSON.stringify(out));
  assert.equal(cases[3]!.summary.decision, 'error');
  assert.ok(cases[2]!.review.response.warnings!.length === 3);
});

test('property: a body that is not an AdmissionReview v1 with a request uid is a 400, never an answer', () => {
  fc.assert(
    fc.property(fc.jsonValue(), (body) => {
      const outcome = review(body, config, injectPod);
      assert.equal(outcome.ok, false);
      assert.equal(!outcome.ok && outcome.status, 400);
    }),
    { numRuns: 200 },
  );
});

test('a pod whose annotations are already over 256 KiB is skipped as too large before the engine runs', () => {
  const big = structuredClone(gateway);
  const annotations = (big.metadata as Obj).annotations as Record<string, string>;
  for (let i = 0; i < 40_000; i++) annotations[`prometheus.io/param_p${i}`] = 'v';
  let called = false;
  const { review: out, summary } = answer(createReview(big), (pod, c) => {
    called = true;
    return injectPod(pod, c);
  });
  assert.equal(called, false);
  assert.equal(summary.skipCode, 'too-large');
  assert.match(summary.reason, /^the pod's annotations are already \d+ bytes, over Kubernetes' limit of 262144/);
  assert.match(out.response.warnings?.[0] ?? '', /^promux: sidecar not injected: the pod's annotations are already/);
  assert.equal(out.response.patch, undefined);
});
