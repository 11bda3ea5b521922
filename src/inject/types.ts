// The injection engine's contract: a pod in, a decision, the mutated pod and its patch out. No I/O.
import type { Operation } from 'fast-json-patch';
import type { Target } from '../target-map.ts';

export type { Target };

/** A Pod as plain JSON (as decoded from an AdmissionReview or a manifest). */
export type PodObject = Record<string, unknown>;

export type SkipCode =
  | 'invalid-pod' // not a usable Pod object (no spec.containers, duplicate names, ...)
  | 'invalid-annotation' // an annotation promux reads cannot be used (promux.io/targets, a port, a scheme, ...)
  | 'opted-out' // promux.io/inject "false" (label or annotation)
  | 'no-scrape-annotation'
  | 'scrape-false'
  | 'host-network'
  | 'already-injected'
  | 'too-few-containers'
  | 'no-target'
  | 'authenticated-metrics' // the scraped endpoint is behind kube-rbac-proxy: promux would serve it without authentication
  | 'needs-native-sidecar' // restartPolicy is not Always and the cluster is not known to run native sidecars
  | 'runs-as-root' // the pod runs as uid 0 and sidecar.runAsUser is null: the sidecar would inherit root
  | 'too-large'; // what injection adds would push the pod past a Kubernetes or Linux limit

export interface InjectOptions {
  /**
   * The pod is JSON.parse's own result (the webhook's AdmissionReview): plain JSON data by
   * construction, so the engine does not walk it to check (a walk of the whole pod for each review).
   */
  parsedJson?: boolean;
}

export interface InjectResult {
  decision: 'inject' | 'skip';
  /** Set when decision is "skip". */
  skipCode?: SkipCode;
  /** One human sentence: why injected (with the targets) or why skipped. */
  reason: string;
  /** The scrape targets the sidecar gets, in map order (empty when skipped). */
  targets: Target[];
  /** The mutated pod; the input itself (unmodified) when skipped. */
  pod: PodObject;
  /** RFC 6902 patch from the input pod to `pod` (fast-json-patch compare's, sharing `pod`'s new values); [] when skipped. */
  patch: Operation[];
  /** Things a user should know even though injection went ahead (or was skipped). */
  warnings: string[];
}

export interface UninjectResult {
  changed: boolean;
  /** Why nothing changed, or what was restored. */
  reason: string;
  pod: PodObject;
  patch: Operation[];
}

/**
 * The `promux.io/status` annotation (JSON) on an injected pod: marks it injected and lets
 * `uninject` restore it exactly.
 */
export interface PromuxStatus {
  /** promux version that injected. */
  version: string;
  /** Name of the injected container (in spec.containers, or spec.initContainers as a native sidecar). */
  sidecar: string;
  /** Port the sidecar serves on. */
  port: number;
  /** The sidecar's target map (`-m` syntax). */
  targets: string;
  /** Every annotation promux set or removed, with its value before injection; null: it did not exist. */
  original: Record<string, string | null>;
  /** Removed annotations' positions among the original annotations, so uninject puts them back in place. */
  removedAt?: Record<string, number>;
  /** Set when promux created spec.initContainers for a native sidecar. */
  createdInitContainers?: true;
  /** Secrets promux appended to spec.imagePullSecrets (sidecar.imagePullSecrets the pod lacked), by name. */
  addedImagePullSecrets?: string[];
  /** Set when promux created spec.imagePullSecrets. */
  createdImagePullSecrets?: true;
  /** An env entry promux removed from a container (istio-proxy's ISTIO_PROMETHEUS_ANNOTATIONS), and its position. */
  removedEnv?: { container: string; index: number; entry: Record<string, unknown> };
  /** Containers whose args promux changed (istio-init's inbound exclusions), with their args before. */
  originalArgs?: Record<string, string[]>;
  /** A container promux replaced (the original multiplexer sidecar), whole, and where it was. */
  removedContainer?: { field: 'containers' | 'initContainers'; index: number; container: Record<string, unknown> };
}
