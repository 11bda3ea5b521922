// Load for test/webhook/stress.test.ts, in a process of its own so that the attacks the test
// process makes (thousands of handshakes, 270 MB of bodies) never stall the measurement.
//   probe <port> <ca file>: an ordinary review every 100 ms on kept-alive connections (as the API
//     server sends them) and every second on a new one, until stdin closes; prints the latencies.
//   overload <port> <ca file> <rate> <seconds> <body file>: that review at a fixed rate on 200
//     kept-alive connections (?timeout=5s, given up after 5 s). When all 200 are busy the API server
//     would open another, which an overloaded webhook refuses at once: counted as noConnection, not
//     sent (a load process on a shared 2-core machine cannot afford thousands of TLS handshakes).
//     Prints the outcomes and latencies, from each request's scheduled time and from when it was sent.
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { SERVER_NAME, createReview, fixturePods } from './helpers.ts';

type Obj = Record<string, unknown>;
const [mode, portText, caFile, rateText, secondsText, bodyFile] = process.argv.slice(2);
const port = Number(portText);
const ca = readFileSync(caFile!, 'utf8');
const pod = fixturePods('shop')[0]!.pod;

function review(): { body: string; uid: string } {
  const r = createReview(structuredClone(pod));
  return { body: JSON.stringify(r), uid: String((r.request as Obj).uid) };
}

type Outcome = ({ status: number; body: string } | { error: string }) & { sentAt?: number };

/** POSTs a review; `sentAt`: when the request was on the wire (written to the connection). */
function post(body: string, agent: Agent | false): Promise<Outcome> {
  return new Promise((resolve) => {
    let sentAt: number | undefined;
    const req = request({
      host: '127.0.0.1', port, servername: SERVER_NAME, ca, method: 'POST', path: '/mutate?timeout=5s', agent,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }, timeout: 5000,
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), sentAt }));
      res.on('error', (err) => resolve({ error: err.message }));
    });
    req.on('finish', () => (sentAt = performance.now()));
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err) => resolve({ error: (err as NodeJS.ErrnoException).code ?? err.message }));
    req.end(body);
  });
}

async function probe(): Promise<void> {
  const agent = new Agent({ keepAlive: true, maxSockets: 2 });
  const keptAlive: number[] = [];
  const fresh: number[] = [];
  const refusedAtOnce: number[] = [];
  const failures: string[] = [];
  const pending: Promise<void>[] = [];
  // Its kept-alive connections first, as the API server has them before any attack (retried: the
  // webhook may be refusing new connections, still busy from what came before).
  for (let warm = 0; warm < 2;) {
    const answers = await Promise.all([post(review().body, agent), post(review().body, agent)]);
    if (answers.every((a) => !('error' in a))) warm = 2;
    else await new Promise((resolve) => setTimeout(resolve, 200));
  }
  process.stdout.write('ready\n');
  let i = 0;
  const timer = setInterval(() => {
    const viaNew = ++i % 10 === 0;
    const { body, uid } = review();
    const sent = performance.now();
    pending.push(post(body, viaNew ? false : agent).then((answer) => {
      const took = performance.now() - sent;
      if ('error' in answer) {
        // A new connection refused at the cap fails at once; the API server fails open on it.
        if (viaNew && took < 500) refusedAtOnce.push(took);
        else failures.push(`${viaNew ? 'new' : 'kept-alive'} connection: ${answer.error} after ${Math.round(took)} ms`);
        return;
      }
      const json = JSON.parse(answer.body) as { response?: { uid?: string; allowed?: boolean } };
      if (answer.status !== 200 || json.response?.uid !== uid || json.response.allowed !== true) {
        failures.push(`status ${answer.status}: ${answer.body.slice(0, 200)}`);
      }
      (viaNew ? fresh : keptAlive).push(took);
    }));
  }, 100);
  process.stdin.resume();
  await new Promise((resolve) => process.stdin.once('end', resolve));
  clearInterval(timer);
  await Promise.all(pending);
  agent.destroy();
  process.stdout.write(`${JSON.stringify({ keptAlive, fresh, refusedAtOnce, failures })}\n`);
}

async function overload(rate: number, seconds: number): Promise<void> {
  const connections = 200;
  const agent = new Agent({ keepAlive: true, maxSockets: connections, maxFreeSockets: connections });
  const body = readFileSync(bodyFile!, 'utf8');
  // The API server's kept-alive connections after a busy spell, opened before the load.
  await Promise.all(Array.from({ length: connections }, () => post(body, agent)));
  const outcomes = { full: 0, skipped: 0, shed: 0, noConnection: 0, refused: 0, timedOut: 0, other: 0 };
  let inFlight = 0;
  const latencies: number[] = [];
  const onWire: number[] = [];
  let behind = 0;
  const pending: Promise<void>[] = [];
  const start = performance.now();
  const total = Math.round(rate * seconds);
  for (let i = 0; i < total; i++) {
    const scheduled = start + (i * 1000) / rate;
    const wait = scheduled - performance.now();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    behind = Math.max(behind, performance.now() - scheduled);
    if (inFlight >= connections) {
      outcomes.noConnection += 1;
      continue;
    }
    inFlight += 1;
    pending.push(post(body, agent).then((r) => {
      inFlight -= 1;
      const took = performance.now() - scheduled;
      if ('error' in r) {
        if (r.error === 'timeout') outcomes.timedOut += 1;
        else outcomes.refused += 1;
        return;
      }
      latencies.push(took);
      if (r.sentAt !== undefined) onWire.push(performance.now() - r.sentAt);
      if (r.status !== 200) outcomes.other += 1;
      else if (r.body.includes('"patch"')) outcomes.full += 1;
      else if (r.body.includes('the webhook')) outcomes.shed += 1;
      else outcomes.skipped += 1;
    }));
  }
  const sentMs = performance.now() - start;
  await Promise.all(pending);
  agent.destroy();
  latencies.sort((a, b) => a - b);
  onWire.sort((a, b) => a - b);
  process.stdout.write(JSON.stringify({
    total, sentMs, behindMs: behind, outcomes,
    p50: latencies[Math.floor(latencies.length / 2)] ?? 0,
    p99: latencies[Math.floor(latencies.length * 0.99)] ?? 0,
    max: latencies.at(-1) ?? 0,
    wireP50: onWire[Math.floor(onWire.length / 2)] ?? 0,
    wireP99: onWire[Math.floor(onWire.length * 0.99)] ?? 0,
    wireMax: onWire.at(-1) ?? 0,
  }));
}

if (mode === 'probe') await probe();
else if (mode === 'overload') await overload(Number(rateText), Number(secondsText));
else throw new Error(`unknown mode ${mode}`);
