// Bad input, one server: each case gets the documented answer, and the server keeps serving.
// Not an AdmissionReview at all -> 4xx with {"error": ...}; a body over 3 MiB -> 413; an
// AdmissionReview the webhook has nothing to do with -> allowed, no patch.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defaultConfig } from '../../src/config/defaults.ts';
import { injectPod } from '../../src/inject/index.ts';
import { MAX_REVIEW_BYTES } from '../../src/webhook/app.ts';
import { startWebhook } from '../../src/webhook/server.ts';
import { kubectlPatchLocal, schemaProblems } from '../helpers/k8s.ts';
import {
  createReview, decodePatch, fixturePods, httpsRequest, memoryLogger, postReview, tempDir, testBundle, writeKeyPair,
} from './helpers.ts';
import type { ReviewResponse } from './helpers.ts';

type Obj = Record<string, unknown>;
const bundle = testBundle();
const CA = bundle.ca.cert;
const pod = fixturePods('shop')[0]!.pod;
const valid = (): Obj => createReview(structuredClone(pod));

function withRequest(change: (request: Obj) => void): Obj {
  const review = valid();
  change(review.request as Obj);
  return review;
}

function hundredContainers(): Obj {
  const big = structuredClone(pod);
  (big.spec as Obj).containers = Array.from({ length: 100 }, (_, i) => ({
    name: `c${i}`, image: 'registry.example.com/app:1', ports: [{ name: 'metrics', containerPort: 9000 + i, protocol: 'TCP' }],
  }));
  ((big.metadata as Obj).annotations as Obj) = { 'prometheus.io/scrape': 'true' };
  return big;
}

interface Case {
  name: string;
  body: string | Buffer;
  headers?: Record<string, string>;
  status: number;
  /** For 4xx: the error message; for 200: what the response must hold. */
  error?: RegExp;
  check?: (json: ReviewResponse, review: Obj) => void;
}

const noPatch = (json: ReviewResponse, review: Obj): void => {
  assert.deepEqual(json.response, { uid: (review.request as Obj).uid, allowed: true });
};

const CASES: Case[] = [
  { name: 'invalid JSON', body: '{"kind": "AdmissionReview", ', status: 400, error: /not JSON/ },
  { name: 'a JSON array', body: '[]', status: 400, error: /expected an AdmissionReview object/ },
  { name: 'an empty body', body: '', status: 400, error: /expected an AdmissionReview object/ },
  {
    name: 'apiVersion admission.k8s.io/v1beta1',
    body: JSON.stringify({ ...valid(), apiVersion: 'admission.k8s.io/v1beta1' }),
    status: 400, error: /expected apiVersion admission.k8s.io\/v1, got "admission.k8s.io\/v1beta1"/,
  },
  { name: 'kind Pod', body: JSON.stringify(pod), status: 400, error: /expected kind AdmissionReview, got "Pod"/ },
  {
    name: 'no request',
    body: JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }),
    status: 400, error: /has no request/,
  },
  {
    name: 'no uid',
    body: JSON.stringify(withRequest((r) => delete r.uid)),
    status: 400, error: /request has no uid/,
  },
  {
    name: 'a body over 3 MiB',
    body: JSON.stringify(withRequest((r) => {
      ((r.object as Obj).metadata as Obj).annotations = { big: 'x'.repeat(MAX_REVIEW_BYTES) };
    })),
    status: 413, error: /over 3145728 bytes/,
  },
  {
    name: 'a chunked body over 3 MiB (no content-length)',
    body: Buffer.alloc(MAX_REVIEW_BYTES + 1, ' '),
    headers: { 'transfer-encoding': 'chunked' },
    status: 413, error: /over 3145728 bytes/,
  },
  {
    name: 'a Deployment (not a Pod)',
    body: JSON.stringify(withRequest((r) => {
      r.kind = { group: 'apps', version: 'v1', kind: 'Deployment' };
      r.resource = { group: 'apps', version: 'v1', resource: 'deployments' };
    })),
    status: 200, check: noPatch,
  },
  {
    name: 'the pods/ephemeralcontainers subresource',
    body: JSON.stringify(withRequest((r) => {
      r.subResource = 'ephemeralcontainers';
    })),
    status: 200, check: noPatch,
  },
  {
    name: 'operation UPDATE',
    body: JSON.stringify(withRequest((r) => {
      r.operation = 'UPDATE';
      r.oldObject = r.object;
    })),
    status: 200, check: noPatch,
  },
  {
    name: 'a null object',
    body: JSON.stringify(withRequest((r) => {
      r.object = null;
    })),
    status: 200, check: noPatch,
  },
  {
    name: 'a pod without containers',
    body: JSON.stringify(withRequest((r) => {
      (r.object as Obj).spec = {};
    })),
    status: 200, check: noPatch,
  },
  {
    name: 'non-string annotation values',
    body: JSON.stringify(withRequest((r) => {
      ((r.object as Obj).metadata as Obj).annotations = { 'prometheus.io/scrape': true, 'prometheus.io/port': 8082, 'promux.io/targets': ['gateway:8082'] };
    })),
    status: 200,
    check: (json, review) => assert.deepEqual({ ...json.response, warnings: undefined },
      { uid: (review.request as Obj).uid, allowed: true, warnings: undefined }),
  },
];

test('bad input table: each case gets its documented answer and the server keeps serving', async (t) => {
  const files = writeKeyPair(tempDir(t), bundle.serving);
  const { log, lines } = memoryLogger();
  const server = await startWebhook(
    { port: 0, listenAddress: '127.0.0.1', logLevel: 'info', tls: { mode: 'files', ...files } },
    { config: defaultConfig(), inject: injectPod, log },
  );
  t.after(() => server.close(1000));

  let rejected = 0;
  for (const c of CASES) {
    const answer = await httpsRequest(server.port, CA, { method: 'POST', path: '/mutate', body: c.body, headers: c.headers ?? {} });
    assert.equal(answer.status, c.status, `${c.name}: ${answer.body}`);
    assert.match(String(answer.headers['content-type']), /^application\/json/, c.name);
    const json = JSON.parse(answer.body) as Obj;
    if (c.error !== undefined) {
      rejected += 1;
      assert.deepEqual(Object.keys(json), ['error'], c.name);
      assert.match(String(json.error), c.error, c.name);
    } else {
      c.check!(json as unknown as ReviewResponse, JSON.parse(c.body.toString()) as Obj);
    }
    // Still serving: a good review right after is injected.
    const { json: good } = await postReview(server.port, CA, valid());
    assert.equal(good.response.patchType, 'JSONPatch', `after ${c.name}`);
  }

  const metrics = await httpsRequest(server.port, CA, { path: '/metrics' });
  assert.match(metrics.body, new RegExp(`^promux_webhook_reviews_total\\{result="rejected"\\} ${rejected}$`, 'm'));
  assert.match(metrics.body, /^promux_webhook_skips_total\{reason="not-a-pod"\} 2$/m);
  assert.match(metrics.body, /^promux_webhook_skips_total\{reason="not-create"\} 1$/m);
  assert.equal(lines.filter((l) => l.msg === 'rejected a request that is not an AdmissionReview').length, rejected);
});

test('a pod with 100 containers is answered, and its patch applies and validates', async (t) => {
  const files = writeKeyPair(tempDir(t), bundle.serving);
  const server = await startWebhook(
    { port: 0, listenAddress: '127.0.0.1', logLevel: 'info', tls: { mode: 'files', ...files } },
    { config: defaultConfig(), inject: injectPod, log: memoryLogger().log },
  );
  t.after(() => server.close(1000));
  const big = hundredContainers();
  const { answer, json } = await postReview(server.port, CA, createReview(big));
  assert.equal(answer.status, 200);
  assert.equal(json.response.allowed, true);
  assert.equal(json.response.patchType, 'JSONPatch');
  assert.equal(json.response.auditAnnotations?.injected?.split(',').length, 100);
  const patched = kubectlPatchLocal(t, big, decodePatch(json));
  if (patched === undefined) return;
  assert.deepEqual(schemaProblems(patched), []);
  assert.equal(((patched as Obj).spec as { containers: unknown[] }).containers.length, 101);
});
