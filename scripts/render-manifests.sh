#!/usr/bin/env bash
# Renders manifests/promux.yaml, the plain install for `kubectl apply` users: the promux namespace
# (Pod Security "restricted" enforced) and the chart with its default values, release "promux",
# for Kubernetes 1.30 (pinned, so the file does not depend on the helm version's default cluster
# version; 1.30 is where matchConditions are GA, which the chart renders from that version on).
# Usage: scripts/render-manifests.sh [OUTPUT]   (default manifests/promux.yaml; "-" for stdout)
# test/chart/manifests.test.ts fails when the committed file differs from this output.
set -euo pipefail
cd "$(dirname "$0")/.."
helm="${HELM:-}"
if [ -z "$helm" ]; then
  if [ -x .tools/bin/helm ]; then helm=.tools/bin/helm; else helm=helm; fi
fi
out="${1:-manifests/promux.yaml}"

render() {
  cat <<'YAML'
# promux: plain install manifests, generated from charts/promux by scripts/render-manifests.sh
# (helm template promux charts/promux --namespace promux --kube-version 1.30.0 --skip-tests).
# Do not edit: change the chart and re-run.
#   kubectl apply -f manifests/promux.yaml
---
apiVersion: v1
kind: Namespace
metadata:
  name: promux
  labels:
    pod-security.kubernetes.io/enforce: restricted
    app.kubernetes.io/part-of: promux
YAML
  # As for a cluster that serves ValidatingAdmissionPolicy (GA in 1.30): the chart's caBundle-only policy is included.
  "$helm" template promux charts/promux --namespace promux --kube-version 1.30.0 --skip-tests \
    --api-versions admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy
}

if [ "$out" = "-" ]; then
  render
else
  tmp="$(mktemp)"
  render >"$tmp"
  mv "$tmp" "$out"
  chmod 0644 "$out"
fi
