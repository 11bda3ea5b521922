// The protobuf codec of `promux sidecar` (src/sidecar/exposition/protobuf/codec.ts, hand-written for
// io.prometheus.client.MetricFamily) against @bufbuild/protobuf and protobufjs on the same input:
// the sidecar benchmark's three targets (3 x 16.8k series, bench/sidecar/generate.ts) as protobuf
// bodies with native histograms added (bench/sidecar/protobuf-input.ts). Each codec decodes the three
// delimited bodies and encodes them back, as a merge does, in a process of its own (its own memory):
// time per round, peak RSS over the process before the codec was loaded, and its bundle (esbuild,
// minified, what the sidecar image would carry). Run on demand: `npm run bench -- protobuf`; writes
// the "Protobuf codecs" section of BENCHMARKS.md.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import * as esbuild from 'esbuild';
import { SIDECAR_NODE_OPTIONS } from '../src/inject/sidecar.ts';
import { cpuModel, entrypointFlags, ROOT, writeSection } from './lib/children.ts';

const CODECS = ['promux (merge path: metrics copied as bytes)', 'promux (every field decoded)', '@bufbuild/protobuf', 'protobufjs'] as const;
type Codec = (typeof CODECS)[number];
const ROUNDS = 15;

interface Delimited {
  decodeAll(body: Uint8Array): unknown[];
  encodeAll(messages: unknown[]): Uint8Array;
}

function readVarint(buf: Uint8Array, pos: number): [number, number] {
  let value = 0;
  let scale = 1;
  for (;;) {
    const b = buf[pos++]!;
    value += (b & 0x7f) * scale;
    if (b < 0x80) return [value, pos];
    scale *= 128;
  }
}

/** Splits a delimited body into its messages' bytes (for the libraries that decode one message at a time). */
function frames(body: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let pos = 0; pos < body.length;) {
    const [size, start] = readVarint(body, pos);
    out.push(body.subarray(start, start + size));
    pos = start + size;
  }
  return out;
}

async function load(codec: Codec): Promise<Delimited> {
  switch (codec) {
    case 'promux (merge path: metrics copied as bytes)': {
      // What mergeProtobuf does: families read, metrics located (not decoded) and copied.
      const { scanFamilies, Writer } = await import('../src/sidecar/exposition/protobuf/codec.ts');
      let body: Uint8Array = new Uint8Array(0);
      return {
        decodeAll: (b) => {
          body = b;
          return scanFamilies(b);
        },
        encodeAll: (families) => {
          const w = new Writer(body.length + 1024);
          for (const f of families as ReturnType<typeof scanFamilies>) {
            w.message(0, () => {
              w.string(1, f.name);
              w.string(2, f.help);
              if (f.type !== undefined) w.uint(3, f.type);
              for (let i = 0; i < f.metrics.length; i += 2) w.message(4, () => w.bytes(body.subarray(f.metrics[i]!, f.metrics[i + 1]!)));
              w.string(5, f.unit);
              for (const u of f.unknown) w.bytes(u);
            });
          }
          return w.finish();
        },
      };
    }
    case 'promux (every field decoded)': {
      const { decodeBody, encodeBody } = await import('../src/sidecar/exposition/protobuf/codec.ts');
      return { decodeAll: (body) => decodeBody(body), encodeAll: (families) => encodeBody(families as ReturnType<typeof decodeBody>) };
    }
    case '@bufbuild/protobuf': {
      const { createFileRegistry, fromBinary } = await import('@bufbuild/protobuf');
      const { sizeDelimitedEncode } = await import('@bufbuild/protobuf/wire');
      const { file_google_protobuf_timestamp } = await import('@bufbuild/protobuf/wkt');
      const { fileDescriptorProto } = await import('./protobuf/metrics-proto.ts');
      const registry = createFileRegistry(fileDescriptorProto(), (name) => (name === 'google/protobuf/timestamp.proto' ? file_google_protobuf_timestamp : undefined));
      const desc = registry.getMessage('io.prometheus.client.MetricFamily')!;
      return {
        decodeAll: (body) => frames(body).map((f) => fromBinary(desc, f)),
        encodeAll: (messages) => concat(messages.map((m) => sizeDelimitedEncode(desc, m as never))),
      };
    }
    case 'protobufjs': {
      const protobuf = (await import('protobufjs')).default;
      const { protoText } = await import('./protobuf/metrics-proto.ts');
      const root = protobuf.Root.fromJSON(protobuf.common.get('google/protobuf/timestamp.proto')!);
      protobuf.parse(protoText(), root);
      root.resolveAll();
      const type = root.lookupType('io.prometheus.client.MetricFamily');
      return {
        decodeAll: (body) => {
          const reader = protobuf.Reader.create(body);
          const out: unknown[] = [];
          while (reader.pos < reader.len) out.push(type.decodeDelimited(reader));
          return out;
        },
        encodeAll: (messages) => {
          const writer = protobuf.Writer.create();
          for (const m of messages) type.encodeDelimited(m as protobuf.Message, writer);
          return writer.finish();
        },
      };
    }
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let pos = 0;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

interface ChildResult {
  msPerRound: number;
  rssBeforeLoad: number;
  rssAfterLoad: number;
  peakRss: number;
}

/** In a process of its own: load the codec, decode and encode the bodies ROUNDS times, write one round's output. */
async function child(codec: Codec, out: string, files: string[]): Promise<void> {
  const bodies = files.map((f) => new Uint8Array(readFileSync(f)));
  const rssBeforeLoad = process.memoryUsage().rss;
  const c = await load(codec);
  const rssAfterLoad = process.memoryUsage().rss;
  const times: number[] = [];
  let outputs: Uint8Array[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const t0 = performance.now();
    outputs = bodies.map((b) => c.encodeAll(c.decodeAll(b)));
    times.push(performance.now() - t0);
  }
  writeFileSync(out, JSON.stringify(outputs.map((o) => Buffer.from(o).toString('base64'))));
  times.sort((a, b) => a - b);
  const result: ChildResult = { msPerRound: times[Math.floor(ROUNDS / 2)]!, rssBeforeLoad, rssAfterLoad, peakRss: process.resourceUsage().maxRSS * 1024 };
  console.log(JSON.stringify(result));
}

async function bundleSize(codec: Codec): Promise<{ bytes: number; gzip: number }> {
  const source = codec.startsWith('promux')
    ? "import { decodeBody, encodeBody, scanFamilies, Writer } from './src/sidecar/exposition/protobuf/codec.ts'; export { decodeBody, encodeBody, scanFamilies, Writer };"
    : codec === '@bufbuild/protobuf'
      ? "import { createFileRegistry, fromBinary } from '@bufbuild/protobuf'; import { sizeDelimitedEncode } from '@bufbuild/protobuf/wire'; " +
        "import { file_google_protobuf_timestamp } from '@bufbuild/protobuf/wkt'; import { fileDescriptorProto } from './bench/protobuf/metrics-proto.ts'; " +
        'export { createFileRegistry, fromBinary, sizeDelimitedEncode, file_google_protobuf_timestamp, fileDescriptorProto };'
      : "import protobuf from 'protobufjs'; import { protoText } from './bench/protobuf/metrics-proto.ts'; export { protobuf, protoText };";
  const result = await esbuild.build({
    stdin: { contents: source, resolveDir: ROOT, loader: 'ts' }, bundle: true, minify: true, platform: 'node', target: 'node24', format: 'esm', write: false,
  });
  const js = result.outputFiles[0]!.contents;
  return { bytes: js.length, gzip: gzipSync(js).length };
}

async function main(): Promise<void> {
  const loadBefore = loadavg().map((l) => l.toFixed(2)).join(', ');
  const { generateExposition } = await import('./sidecar/generate.ts');
  const { protobufExposition } = await import('./sidecar/protobuf-input.ts');
  const { decodeBody } = await import('../src/sidecar/exposition/protobuf/codec.ts');
  const dir = mkdtempSync(join(tmpdir(), 'promux-bench-protobuf-'));
  try {
    const bodies = ['shop', 'pay', 'edge'].map((app, i) => protobufExposition(app, generateExposition(app, 16_800, i + 1).body));
    const files = bodies.map((b, i) => {
      const file = join(dir, `body${i}.pb`);
      writeFileSync(file, b);
      return file;
    });
    const families = bodies.map((b) => decodeBody(new Uint8Array(b)));
    const metrics = families.flat().reduce((n, f) => n + f.metrics.length, 0);
    const rows: string[] = [];
    for (const codec of CODECS) {
      const out = join(dir, 'out.json');
      // Twice: with Node's defaults, and with the injected sidecar's flags, whose heap limits bound
      // what a scrape's garbage may grow to (and make the collector run more often).
      const runs = [{ flags: [] as string[], nodeOptions: '' }, { flags: entrypointFlags(), nodeOptions: SIDECAR_NODE_OPTIONS }].map((setup) => {
        const run = spawnSync(process.execPath, [...setup.flags, import.meta.filename, '--child', codec, out, ...files], {
          encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: setup.nodeOptions },
        });
        if (run.status !== 0) throw new Error(`${codec}: ${run.stderr}`);
        // What it wrote back decodes to the same families (byte layouts may differ: field order, packing).
        const outputs = (JSON.parse(readFileSync(out, 'utf8')) as string[]).map((b) => Buffer.from(b, 'base64'));
        outputs.forEach((o, i) => assert.deepEqual(decodeBody(new Uint8Array(o)), families[i], `${codec}: body ${i} round-trips`));
        return JSON.parse(run.stdout.trim().split('\n').at(-1)!) as ChildResult;
      });
      const [defaults, injected] = runs as [ChildResult, ChildResult];
      const size = await bundleSize(codec);
      const mib = (n: number): string => (n / 1024 / 1024).toFixed(1);
      const row = `| ${codec} | ${defaults.msPerRound.toFixed(1)} | ${injected.msPerRound.toFixed(1)} | ` +
        `${mib(injected.rssAfterLoad - injected.rssBeforeLoad)} | ${mib(defaults.peakRss - defaults.rssBeforeLoad)} | ` +
        `${mib(injected.peakRss - injected.rssBeforeLoad)} | ${(size.bytes / 1024).toFixed(1)} | ${(size.gzip / 1024).toFixed(1)} |`;
      console.log(row);
      rows.push(row);
    }
    const section = [
      '## Protobuf codecs (issue 14)',
      '',
      `Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC on ${cpuModel()}, ${cpus().length} cores, Node ${process.version}, ` +
        `by \`npm run bench -- protobuf\` (bench/protobuf.ts); load average before the run: ${loadBefore}.`,
      '',
      `Input: the sidecar benchmark's three targets as protobuf bodies (${bodies.map((b) => (b.length / 1024 / 1024).toFixed(2)).join(' / ')} MiB, ` +
        `${metrics} metrics in all: the text series converted as client_golang would serve them, a histogram's buckets one metric, plus ` +
        'native histograms with negative and positive spans, one per 50 series). Each codec, in a process of its own, decodes the three ' +
        `delimited bodies and encodes them back (what a merge does), ${ROUNDS} rounds, median; the output is checked to decode to the same ` +
        `families. Each runs twice: with Node's defaults, and as injected (\`${[...entrypointFlags(), `NODE_OPTIONS="${SIDECAR_NODE_OPTIONS}"`].join(' ')}\`). ` +
        'Memory: RSS the codec\'s modules added once loaded, and peak RSS (getrusage) over the process before loading. Bundle: ' +
        'esbuild, minified, of the codec and what it needs (the descriptor of metrics.proto for the libraries).',
      '',
      '| codec | ms per round, Node defaults | ms per round, as injected | RSS of loading MiB | peak RSS added MiB, Node defaults | peak RSS added MiB, as injected | bundle KiB | bundle gzip KiB |',
      '|---|---|---|---|---|---|---|---|',
      ...rows,
      '',
    ].join('\n');
    writeSection('Protobuf codecs (issue 14)', section);
    console.log(`\n${section}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const at = process.argv.indexOf('--child');
if (at === -1) await main();
else await child(process.argv[at + 1] as Codec, process.argv[at + 2]!, process.argv.slice(at + 3));
