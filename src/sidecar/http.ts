// node:http for the sidecar, taken with process.getBuiltinModule rather than an ES import: an ES
// import of node:http reads every export, and its lazy `WebSocket` getter loads Node's bundled undici,
// which costs every sidecar 13 MiB of RSS (a bare server: 60 MiB against 47) for a client it never
// uses. Types still come from `import type ... from 'node:http'`.
export const http = process.getBuiltinModule('node:http');
