// The sidecar's resources: the configured ones, each value overridden by the pod's own
// promux.io/sidecar-* annotation where it has one (as Linkerd's config.linkerd.io/proxy-cpu-request
// does; Istio's sidecar.istio.io/proxyCPU instead drops every configured value once any is set).
// A value the API server would refuse (not a quantity, or a limit below its request) is an
// AnnotationError, so the pod is skipped as its owner wrote it: injecting it with the configured
// value instead would hand the sidecar a size its owner said was wrong.
import { limitsBelowRequests, quantityExpectation } from '../config/quantity.ts';
import type { ResourceList, SidecarConfig } from '../config/types.ts';
import { RESOURCE_ANNOTATIONS } from './annotations.ts';
import { AnnotationError } from './pod.ts';

export interface SidecarResources {
  requests: ResourceList;
  limits: ResourceList;
}

export function sidecarResources(annotations: Record<string, string>, configured: SidecarConfig['resources']): SidecarResources {
  const resources: SidecarResources = { requests: { ...configured.requests }, limits: { ...configured.limits } };
  const from = new Map<string, string>();
  for (const { key, list, resource } of RESOURCE_ANNOTATIONS) {
    const value = annotations[key];
    if (value === undefined) continue;
    const expected = quantityExpectation(resource, value);
    if (expected !== undefined) throw new AnnotationError(`annotation ${key} is ${JSON.stringify(value)}, not ${expected}`);
    resources[list][resource] = value;
    from.set(`${list}.${resource}`, key);
  }
  // The configuration's own values were checked when it was loaded.
  if (from.size === 0) return resources;
  const [name] = limitsBelowRequests(resources);
  if (name === undefined) return resources;
  const request = resources.requests[name]!;
  const limit = resources.limits[name]!;
  const requestKey = from.get(`requests.${name}`);
  const limitKey = from.get(`limits.${name}`);
  if (requestKey === undefined && limitKey === undefined) return resources; // the configuration's own
  const refused = `the API server would refuse the pod (a ${name} request must not exceed its limit)`;
  if (requestKey !== undefined && limitKey !== undefined) {
    throw new AnnotationError(`annotation ${limitKey} is ${JSON.stringify(limit)}, below ${requestKey} (${JSON.stringify(request)}): ${refused}`);
  }
  if (limitKey !== undefined) {
    throw new AnnotationError(`annotation ${limitKey} is ${JSON.stringify(limit)}, below the sidecar's ${name} request of ` +
      `${request} (sidecar.resources.requests.${name} in promux's configuration): ${refused}; set promux.io/sidecar-${name}-request too`);
  }
  throw new AnnotationError(`annotation ${requestKey!} is ${JSON.stringify(request)}, above the sidecar's ${name} limit of ` +
    `${limit} (sidecar.resources.limits.${name} in promux's configuration): ${refused}; set promux.io/sidecar-${name}-limit too`);
}
