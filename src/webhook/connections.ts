// At most maxConnections open connections on the webhook port. Counted as the TCP connection is
// accepted, before any TLS work, so a flood of idle or half-open connections costs a socket each and
// no more. At the cap, a new connection replaces the connection that has gone longest without
// anything happening (connected, a request started or was answered) when that was at least
// EVICT_AFTER_MS ago: an idle or slow connection (an attacker's, or a client that went quiet) makes
// room, while the API server's busy connections are kept and a new one is refused at once (the API
// server then fails open without waiting for its timeout).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { WebhookMetrics } from './metrics.ts';
import { RateLimitedLog } from './rate-limited-log.ts';

/** A genuine client sends its request within milliseconds of connecting, and its next one soon after. */
export const EVICT_AFTER_MS = 1000;

export interface ConnectionGuardOptions {
  maxConnections: number;
  metrics: WebhookMetrics;
  log: Logger;
  /**
   * True while the process has no time to spare (its event loop runs late): a new connection is
   * refused at once (the API server fails open on it) rather than cost a TLS handshake.
   */
  overloaded?: () => boolean;
  now?: () => number;
}

export class ConnectionGuard {
  private readonly options: ConnectionGuardOptions;
  private readonly now: () => number;
  /** Open connections by their TCP socket, in the order of their last event (oldest first). */
  private readonly open = new Map<Socket, number>();
  private readonly tcpOf = new WeakMap<TLSSocket, Socket>();
  /** When each connection was accepted, until its first request is read. */
  private readonly acceptedAt = new WeakMap<Socket, number>();
  private readonly limitLog: RateLimitedLog;

  constructor(server: HttpsServer, options: ConnectionGuardOptions) {
    this.options = options;
    this.now = options.now ?? (() => performance.now());
    this.limitLog = new RateLimitedLog(options.log);
    options.metrics.limits.set({ limit: 'connections' }, options.maxConnections);
    options.metrics.inFlight.connections = () => this.open.size;
    // Prepended: runs before the TLS server wraps the socket, so a refused one costs no TLS work.
    server.prependListener('connection', (socket: Socket) => this.accept(socket));
    server.on('secureConnection', (tls: TLSSocket) => {
      // The TLS socket sits on the TCP one; match them by the peer's address and port.
      const tcp = this.byPeer.get(peer(tls));
      if (tcp !== undefined) this.tcpOf.set(tls, tcp);
    });
    // One listener for every answer (its request knows the connection), not a closure per request.
    const touch = (tls: TLSSocket): void => this.touch(tls);
    function answered(this: ServerResponse): void {
      touch(this.req.socket as TLSSocket);
    }
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      touch(req.socket as TLSSocket);
      res.on('finish', answered);
    });
  }

  private readonly byPeer = new Map<string, Socket>();

  get size(): number {
    return this.open.size;
  }

  /**
   * For a connection's first request: when the connection was accepted (the client sent the request
   * as soon as its handshake was done, so it has waited since); undefined for later requests.
   */
  firstArrival(tls: TLSSocket): number | undefined {
    const tcp = this.tcpOf.get(tls);
    if (tcp === undefined) return undefined;
    const at = this.acceptedAt.get(tcp);
    this.acceptedAt.delete(tcp);
    return at;
  }

  private accept(socket: Socket): void {
    const { metrics } = this.options;
    if (this.options.overloaded?.() === true) {
      socket.destroy();
      metrics.connectionsClosed.inc({ reason: 'overload' });
      this.limitLog.note('connections-overload', 'overloaded (the event loop runs late, or ordinary reviews are being shed): refusing new connections');
      return;
    }
    const key = peer(socket);
    this.open.set(socket, this.now());
    this.acceptedAt.set(socket, this.now());
    this.byPeer.set(key, socket);
    socket.once('close', () => {
      this.open.delete(socket);
      if (this.byPeer.get(key) === socket) this.byPeer.delete(key);
    });
    if (this.open.size <= this.options.maxConnections) return;
    const [oldest, since] = this.open.entries().next().value!;
    if (oldest !== socket && this.now() - since >= EVICT_AFTER_MS) {
      this.open.delete(oldest);
      oldest.destroy();
      metrics.connectionsClosed.inc({ reason: 'evicted' });
      this.limitLog.note('connections-evicted',
        `connection cap (${this.options.maxConnections}) reached: closing the connection idle the longest to make room`);
      return;
    }
    this.open.delete(socket);
    socket.destroy();
    metrics.connectionsClosed.inc({ reason: 'limit' });
    this.limitLog.note('connections',
      `connection cap (${this.options.maxConnections}) reached and every connection busy: refusing new connections`);
  }

  /** Something happened on the connection: it moves to the back of the eviction line. */
  private touch(tls: TLSSocket): void {
    const tcp = this.tcpOf.get(tls);
    if (tcp === undefined || !this.open.has(tcp)) return;
    this.open.delete(tcp);
    this.open.set(tcp, this.now());
  }
}

function peer(socket: Socket): string {
  return `${socket.remoteAddress}:${socket.remotePort}`;
}
