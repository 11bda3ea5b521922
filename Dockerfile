# syntax=docker/dockerfile:1
# One image for every mode: `promux webhook`, the injected `promux sidecar`, `promux inject`.
# Build: docker build -t ghcr.io/promux/promux:$(node -p "require('./package.json').version") .

# Build stage: bundle src/ with esbuild into dist/ (one file per mode, dependencies included).
FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: skips the `node` devDependency's download of a second Node 24 (this image has
# one) and any other install script; esbuild runs from its platform package without one.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY scripts/build.js scripts/
COPY src/ src/
COPY examples/ examples/
RUN node scripts/build.js

# Runtime: distroless Node 24 (Debian 12, like the build stage): node and its libraries only, no
# shell, no package manager; the :nonroot variant runs as uid/gid 65532.
FROM gcr.io/distroless/nodejs24-debian12:nonroot
WORKDIR /app
COPY --from=build /src/dist/ /app/
# Numeric, so that the kubelet can verify runAsNonRoot without a runAsUser in the pod.
USER 65532:65532
ENV NODE_ENV=production
EXPOSE 8443 13434
# The binary itself: container args start with the mode (`webhook ...`, `sidecar ...`). Without
# V8's memory reducer, which wakes an idle process every 8 s after activity to shrink its heap, a
# sidecar uses no CPU between scrapes; NODE_OPTIONS cannot carry this flag, and
# v8.setFlagsFromString comes too late for it (measured with bench/sidecar.ts's idle CPU).
ENTRYPOINT ["/nodejs/bin/node", "--no-memory-reducer", "/app/promux.mjs"]
CMD ["--help"]
LABEL org.opencontainers.image.title="promux" \
      org.opencontainers.image.description="One correct Prometheus endpoint for every multi-container pod" \
      org.opencontainers.image.source="https://github.com/promux/promux" \
      org.opencontainers.image.licenses="Apache-2.0"
