// AdmissionReview in, AdmissionReview out: the webhook's decisions, free of I/O. The webhook never
// blocks a pod: every review that is an AdmissionReview is answered `allowed: true`, with a patch
// only when the engine injected. Only input that is not an AdmissionReview at all gets an error.
import type { PromuxConfig } from '../config/types.ts';
import { isObject } from '../json.ts';
import { INJECT_KEY } from '../inject/annotations.ts';
import { MAX_ANNOTATION_BYTES } from '../inject/inject.ts';
import { formatTargetMap } from '../target-map.ts';
import type { InjectOptions, InjectResult, SkipCode } from '../inject/types.ts';

export type Injector = (pod: unknown, config: PromuxConfig, options?: InjectOptions) => InjectResult;

export const ADMISSION_API_VERSION = 'admission.k8s.io/v1';
/** Audit annotation key; the API server prefixes it with the webhook's name (no slash allowed here). */
export const AUDIT_INJECTED = 'injected';
const WARNING_MAX_CHARS = 200;
const MAX_WARNINGS = 5;

export interface AdmissionResponse {
  uid: string;
  allowed: true;
  patchType?: 'JSONPatch';
  patch?: string;
  warnings?: string[];
  auditAnnotations?: Record<string, string>;
}

export interface AdmissionReviewResponse {
  apiVersion: typeof ADMISSION_API_VERSION;
  kind: 'AdmissionReview';
  response: AdmissionResponse;
}

/**
 * How a review ended: injected, skipped (with a reason code: the engine's, or not-a-pod /
 * not-create / invalid-pod for reviews the engine never sees), or error (the engine threw).
 */
export type ReviewDecision = 'injected' | 'skipped' | 'error';
export type SkipReason = SkipCode | 'not-a-pod' | 'not-create';

/** Everything the log line and the metrics need about one answered review. */
export interface ReviewSummary {
  uid: string;
  namespace: string;
  /** metadata.name, or metadata.generateName for a pod created by a controller. */
  pod: string;
  operation: string;
  dryRun: boolean;
  decision: ReviewDecision;
  reason: string;
  skipCode?: SkipReason;
  targets?: string;
  error?: string;
}

export type ReviewOutcome =
  | { ok: true; review: AdmissionReviewResponse; summary: ReviewSummary }
  | { ok: false; status: 400; error: string };


function text(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

/** A warning the API server relays to kubectl: one short line, prefixed so users know its source. */
function warning(message: string): string {
  const line = `promux: ${message.replace(/[\s\p{Cc}\p{Cf}]+/gu, ' ').trim()}`;
  return line.length <= WARNING_MAX_CHARS ? line : `${line.slice(0, WARNING_MAX_CHARS - 3)}...`;
}

/**
 * Skips a user should hear about: the pod asked to be scraped and has several containers, but
 * promux could not help it. Opt-outs, pods without scrape annotations, single-container pods and
 * pods already injected are the normal case and stay quiet (they are still logged and counted).
 * The chart's PromuxPodsNotInjected alert watches exactly these (a test keeps them equal).
 */
export const WARN_ON_SKIP: ReadonlySet<SkipCode> = new Set<SkipCode>([
  'host-network', 'no-target', 'too-large', 'invalid-annotation', 'authenticated-metrics', 'needs-native-sidecar', 'runs-as-root',
]);

function askedForInjection(pod: unknown): boolean {
  return isObject(pod) && isObject(pod.metadata) && isObject(pod.metadata.annotations)
    && pod.metadata.annotations[INJECT_KEY] === 'true';
}

function warningsFor(pod: unknown, result: InjectResult): string[] {
  const out = result.warnings.map(warning);
  if (result.decision === 'skip' && result.skipCode !== 'already-injected'
    && (WARN_ON_SKIP.has(result.skipCode as SkipCode) || askedForInjection(pod))) {
    out.unshift(warning(`sidecar not injected: ${result.reason}`));
  }
  return out.slice(0, MAX_WARNINGS);
}

function isPodRequest(request: Record<string, unknown>): boolean {
  const kind = request.kind;
  return isObject(kind) && kind.group === '' && kind.version === 'v1' && kind.kind === 'Pod'
    && (request.subResource === undefined || request.subResource === '');
}

/** The request of an admission.k8s.io/v1 AdmissionReview, or why the body is not one. */
function parseEnvelope(body: unknown): { request: Record<string, unknown>; uid: string } | string {
  if (!isObject(body)) return 'expected an AdmissionReview object';
  const shown = (v: unknown): string => (v === undefined ? 'none' : JSON.stringify(v));
  if (body.kind !== 'AdmissionReview') return `expected kind AdmissionReview, got ${shown(body.kind)}`;
  if (body.apiVersion !== ADMISSION_API_VERSION) {
    return `expected apiVersion ${ADMISSION_API_VERSION}, got ${shown(body.apiVersion)}`
      + ' (set admissionReviewVersions: ["v1"] in the webhook configuration)';
  }
  if (!isObject(body.request)) return 'the AdmissionReview has no request';
  const uid = body.request.uid;
  if (typeof uid !== 'string' || uid === '') return 'the AdmissionReview request has no uid';
  return { request: body.request, uid };
}

function podName(request: Record<string, unknown>): string {
  const metadata = isObject(request.object) && isObject(request.object.metadata) ? request.object.metadata : {};
  return text(metadata.name) || text(request.name) || text(metadata.generateName);
}

/**
 * The answer to one AdmissionReview: `body` as JSON.parse gives it (JSON data, so the engine need not
 * check the pod is). `inject` is the injection engine; it may throw.
 */
export function review(body: unknown, config: PromuxConfig, inject: Injector): ReviewOutcome {
  const envelope = parseEnvelope(body);
  if (typeof envelope === 'string') return { ok: false, status: 400, error: envelope };
  const { request, uid } = envelope;
  const summary: ReviewSummary = {
    uid,
    namespace: text(request.namespace),
    pod: podName(request),
    operation: text(request.operation),
    dryRun: request.dryRun === true,
    decision: 'skipped',
    reason: '',
  };
  const response: AdmissionResponse = { uid, allowed: true };
  const answer = (): ReviewOutcome => ({
    ok: true,
    review: { apiVersion: ADMISSION_API_VERSION, kind: 'AdmissionReview', response },
    summary,
  });
  const skip = (skipCode: SkipReason, reason: string): ReviewOutcome => {
    summary.skipCode = skipCode;
    summary.reason = reason;
    return answer();
  };

  if (!isPodRequest(request)) return skip('not-a-pod', 'not a Pod (check the webhook rules)');
  if (request.operation !== 'CREATE') return skip('not-create', 'promux only mutates pods on CREATE');
  if (!isObject(request.object)) return skip('invalid-pod', 'the review carries no pod object');
  const given = annotationBytes(request.object);
  if (given > MAX_ANNOTATION_BYTES) {
    // The API server refuses this pod whatever promux does; deciding would only cost time (the
    // engine's work grows with the annotations: a second for 90,000 of them), which every other
    // review would wait for.
    const reason = `the pod's annotations are already ${given} bytes, over Kubernetes' limit of ${MAX_ANNOTATION_BYTES} `
      + '(256 KiB): the API server will refuse the pod';
    response.warnings = [warning(`sidecar not injected: ${reason}`)];
    return skip('too-large', reason);
  }

  // Whatever the engine returns or throws, the pod is allowed: an answer the engine cannot give
  // (it threw, returned something that is not a result, or a patch that does not serialize) is an
  // error, answered without a patch.
  try {
    const result = inject(request.object, config, { parsedJson: true });
    const problem = resultProblem(result);
    if (problem !== undefined) throw new Error(`the injection engine returned ${problem}`);
    const warnings = warningsFor(request.object, result);
    if (result.decision === 'skip') {
      if (warnings.length > 0) response.warnings = warnings;
      return skip(result.skipCode ?? 'invalid-pod', result.reason);
    }
    const targets = formatTargetMap(result.targets);
    const patch = Buffer.from(JSON.stringify(result.patch)).toString('base64');
    if (warnings.length > 0) response.warnings = warnings;
    response.patchType = 'JSONPatch';
    response.patch = patch;
    response.auditAnnotations = { [AUDIT_INJECTED]: targets };
    summary.decision = 'injected';
    summary.reason = result.reason;
    summary.targets = targets;
    return answer();
  } catch (err) {
    const error = err instanceof Error ? (err.stack ?? err.message) : String(err);
    for (const key of ['warnings', 'patchType', 'patch', 'auditAnnotations'] as const) delete response[key];
    Object.assign(summary, { decision: 'error', reason: 'the injection engine failed', error });
    return answer();
  }
}

/** UTF-8 bytes of a pod's annotation keys and string values, as the API server counts them. */
function annotationBytes(pod: Record<string, unknown>): number {
  const annotations = isObject(pod.metadata) && isObject(pod.metadata.annotations) ? pod.metadata.annotations : {};
  let bytes = 0;
  for (const key in annotations) {
    const value = annotations[key];
    bytes += Buffer.byteLength(key) + (typeof value === 'string' ? Buffer.byteLength(value) : 0);
  }
  return bytes;
}

/** Why `result` is not an InjectResult the webhook can answer with, or undefined when it is. */
function resultProblem(result: unknown): string | undefined {
  if (!isObject(result)) return `${result === null ? 'null' : typeof result}, not a result`;
  if (result.decision !== 'inject' && result.decision !== 'skip') return `decision ${JSON.stringify(result.decision)}`;
  if (typeof result.reason !== 'string') return 'no reason';
  if (!Array.isArray(result.warnings) || !result.warnings.every((w) => typeof w === 'string')) return 'warnings that are not strings';
  if (result.decision === 'inject' && (!Array.isArray(result.patch) || result.patch.length === 0)) return 'an injection without a patch';
  if (result.decision === 'inject' && !Array.isArray(result.targets)) return 'an injection without targets';
  return undefined;
}

/**
 * The JSON of an answer, exactly as JSON.stringify writes it, made of pieces: the patch (base64, most
 * of an injected pod's answer, with nothing to escape) is copied in rather than scanned character by
 * character. The fields in the order review() sets them.
 */
export function answerJson({ response }: AdmissionReviewResponse): string {
  let json = `{"apiVersion":"${ADMISSION_API_VERSION}","kind":"AdmissionReview","response":{"uid":${JSON.stringify(response.uid)},"allowed":true`;
  if (response.warnings !== undefined) json += `,"warnings":${JSON.stringify(response.warnings)}`;
  if (response.patchType !== undefined) json += `,"patchType":"${response.patchType}"`;
  if (response.patch !== undefined) json += `,"patch":"${response.patch}"`;
  if (response.auditAnnotations !== undefined) json += `,"auditAnnotations":${JSON.stringify(response.auditAnnotations)}`;
  return `${json}}}`;
}

/** The answer to a review the webhook sheds (`why`: it was full, or out of time): allowed, no patch, a warning. */
export function shedReview(uid: string, why: string): string {
  const response: AdmissionResponse = {
    uid, allowed: true, warnings: [warning(`sidecar not injected: ${why}; re-create the pod to have it injected`)],
  };
  return JSON.stringify({ apiVersion: ADMISSION_API_VERSION, kind: 'AdmissionReview', response } satisfies AdmissionReviewResponse);
}
