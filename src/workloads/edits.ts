// The engine's two pod edits, in the terms of the dry run's report.
import type { PromuxConfig } from '../config/types.ts';
import { injectPod, uninjectPod } from '../inject/index.ts';
import { formatTarget } from '../target-map.ts';
import type { PodEdit } from './transform.ts';

export function injectEdit(config: PromuxConfig): PodEdit {
  return (pod) => {
    const r = injectPod(pod, config);
    return r.decision === 'inject'
      ? { status: 'injected', detail: r.targets.map(formatTarget).join(', '), warnings: r.warnings, pod: r.pod, patch: r.patch }
      : { status: 'skipped', detail: r.reason, warnings: r.warnings, pod: r.pod, patch: [] };
  };
}

export function uninjectEdit(config: PromuxConfig): PodEdit {
  return (pod) => {
    const r = uninjectPod(pod, config);
    return { status: r.changed ? 'restored' : 'unchanged', detail: r.reason, warnings: [], pod: r.pod, patch: r.patch };
  };
}
