// The injection engine: pure functions from a pod to a decision, the mutated pod and its patch.
export { injectPod } from './inject.ts';
export { uninjectPod } from './uninject.ts';
export {
  STATUS_ANNOTATION, TARGETS_ANNOTATION, EXCLUDE_ANNOTATION, INJECT_KEY, sanitizeAnnotationName,
} from './annotations.ts';
export type {
  InjectResult, UninjectResult, PodObject, PromuxStatus, SkipCode, Target,
} from './types.ts';
