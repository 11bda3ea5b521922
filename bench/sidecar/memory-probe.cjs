// Loaded into a sidecar by `node bench/sidecar.ts --memory` (NODE_OPTIONS --require): on SIGUSR2 it
// writes V8's view of the process's memory to stderr, one JSON line, for the breakdown of its private
// memory. CommonJS so that --require takes it; it loads node:v8, which the sidecar itself does not.
'use strict';
const v8 = process.getBuiltinModule('node:v8');

process.on('SIGUSR2', () => {
  const spaces = {};
  for (const s of v8.getHeapSpaceStatistics()) spaces[s.space_name] = s.physical_space_size;
  const { rss, heapTotal, heapUsed, external, arrayBuffers } = process.memoryUsage();
  process.stderr.write(`${JSON.stringify({ probe: { rss, heapTotal, heapUsed, external, arrayBuffers, spaces } })}\n`);
});
