// Reading one HTTP/1.1 response from the bytes of a connection, as they arrive in pieces of any size:
// status line and headers, then a body framed by Content-Length, chunked transfer coding, or the end
// of the connection. No I/O here: fetch.ts feeds it. Body bytes are handed on as ranges of the piece
// they arrived in, never copied or kept, so the caller may reuse its read buffer.

export interface ResponseHead {
  status: number;
  /** Lower-case names; a repeated header's values joined with ", ". */
  headers: Map<string, string>;
  /** The body's length when a Content-Length frames it (not chunked, not to the end of the connection). */
  bodyLength: number | undefined;
}

export interface ResponseSink {
  /** The status line and headers; false when the sink wants nothing more (it has failed the fetch). */
  head(head: ResponseHead): boolean;
  /** Body bytes buf[start, end), valid only during the call; false to stop. */
  body(buf: Buffer, start: number, end: number): boolean;
  /** The whole body has arrived. */
  done(): void;
  fail(reason: string): void;
}

/** Far more than any exporter sends; a target that streams endless headers is cut off here. */
const MAX_HEAD_BYTES = 64 * 1024;
const MAX_CHUNK_LINE_BYTES = 1024;
const LF = 0x0a;
const CR = 0x0d;

type State = 'head' | 'length' | 'close' | 'chunk-size' | 'chunk-data' | 'chunk-data-end' | 'trailers' | 'finished';

export class ResponseReader {
  private readonly sink: ResponseSink;
  private state: State = 'head';
  /** Bytes of the head (or of a chunk-size or trailer line) not yet complete. */
  private pending = Buffer.alloc(0);
  private pendingLength = 0;
  private headBytes = 0;
  /** Body bytes still to come: of the Content-Length, or of the current chunk. */
  private remaining = 0;
  private readonly lines: string[] = [];

  constructor(sink: ResponseSink) {
    this.sink = sink;
  }

  /** Something of the response has arrived (a closed connection then means a cut response, not no response). */
  get started(): boolean {
    return this.state !== 'head' || this.headBytes > 0;
  }

  /** Reads the connection's next bytes buf[start, end). */
  push(buf: Buffer, start: number, end: number): void {
    let p = start;
    while (p < end && this.state !== 'finished') {
      switch (this.state) {
        case 'head':
        case 'trailers':
        case 'chunk-size':
        case 'chunk-data-end': // the CR LF after a chunk's data: a line that must be empty
          p = this.line(buf, p, end);
          break;
        case 'length':
        case 'chunk-data': {
          const take = Math.min(this.remaining, end - p);
          this.remaining -= take;
          const wanted = this.sink.body(buf, p, p + take);
          p += take;
          if (!wanted) return this.finish();
          if (this.remaining === 0) {
            if (this.state === 'length') {
              this.finish();
              this.sink.done();
            } else {
              this.state = 'chunk-data-end';
            }
          }
          break;
        }
        case 'close':
          if (!this.sink.body(buf, p, end)) return this.finish();
          p = end;
          break;
      }
    }
  }

  /** The connection has ended. */
  end(): void {
    if (this.state === 'finished') return;
    const state = this.state;
    this.finish();
    if (state === 'close') this.sink.done();
    else if (state !== 'head') this.sink.fail('connection closed mid-body');
    else this.sink.fail(this.headBytes > 0 ? 'connection closed in the response headers' : 'connection closed without a response');
  }

  private finish(): void {
    this.state = 'finished';
    this.pending = Buffer.alloc(0);
  }

  private fail(reason: string): void {
    this.finish();
    this.sink.fail(reason);
  }

  /** Collects bytes up to a line feed; returns where reading goes on. */
  private line(buf: Buffer, p: number, end: number): number {
    const lf = buf.indexOf(LF, p);
    const lineEnd = lf === -1 || lf >= end ? end : lf;
    const limit = this.state === 'head' ? MAX_HEAD_BYTES : MAX_CHUNK_LINE_BYTES;
    const length = lineEnd - p;
    if (this.state === 'head') this.headBytes += length + (lineEnd < end ? 1 : 0);
    if (this.pendingLength + length > limit || (this.state === 'head' && this.headBytes > MAX_HEAD_BYTES)) {
      this.fail(this.state === 'head' ? `response headers larger than ${MAX_HEAD_BYTES} bytes` : 'invalid chunked body: line too long');
      return end;
    }
    if (this.pending.length < this.pendingLength + length) {
      const grown = Buffer.alloc(Math.min(Math.max(2 * this.pending.length, this.pendingLength + length, 256), limit));
      this.pending.copy(grown, 0, 0, this.pendingLength);
      this.pending = grown;
    }
    buf.copy(this.pending, this.pendingLength, p, lineEnd);
    this.pendingLength += length;
    if (lineEnd === end) return end;
    let lineLength = this.pendingLength;
    if (lineLength > 0 && this.pending[lineLength - 1] === CR) lineLength--;
    const text = this.pending.toString('latin1', 0, lineLength);
    this.pendingLength = 0;
    this.onLine(text);
    return lineEnd + 1;
  }

  private onLine(text: string): void {
    switch (this.state) {
      case 'head':
        if (text !== '') this.lines.push(text);
        else if (this.lines.length > 0) this.startBody();
        return; // blank lines before the status line are skipped, as RFC 9112 allows
      case 'chunk-size': {
        const size = /^([0-9a-fA-F]{1,12})[ \t]*(;.*)?$/.exec(text);
        if (size === null) return this.fail(`invalid chunked body: chunk size line ${JSON.stringify(text.slice(0, 40))}`);
        this.remaining = Number.parseInt(size[1]!, 16);
        this.state = this.remaining === 0 ? 'trailers' : 'chunk-data';
        return;
      }
      case 'chunk-data-end':
        if (text !== '') return this.fail('invalid chunked body: no line end after a chunk');
        this.state = 'chunk-size';
        return;
      case 'trailers':
        if (text === '') {
          this.finish();
          this.sink.done();
        }
        return;
    }
  }

  private startBody(): void {
    const [statusLine, ...headerLines] = this.lines;
    const status = /^HTTP\/1\.[01] ([0-9]{3})(?: .*)?$/.exec(statusLine!);
    if (status === null) return this.fail(`not an HTTP/1.x response: ${JSON.stringify(statusLine!.slice(0, 60))}`);
    const headers = new Map<string, string>();
    for (const line of headerLines) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).toLowerCase();
      if (colon <= 0 || !/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(name)) {
        return this.fail(`invalid HTTP response header ${JSON.stringify(line.slice(0, 60))}`);
      }
      const value = line.slice(colon + 1).trim();
      const before = headers.get(name);
      headers.set(name, before === undefined ? value : `${before}, ${value}`);
    }
    const framing = this.framing(headers);
    if (typeof framing === 'string') return this.fail(framing);
    this.state = framing.state;
    this.remaining = framing.length;
    const bodyLength = this.state === 'length' ? this.remaining : undefined;
    if (!this.sink.head({ status: Number(status[1]), headers, bodyLength })) return this.finish();
    if (this.state === 'length' && this.remaining === 0) {
      this.finish();
      this.sink.done();
    }
  }

  /** How the body ends (RFC 9112 section 6.3), or why that cannot be told. */
  private framing(headers: Map<string, string>): { state: State; length: number } | string {
    const transferEncoding = headers.get('transfer-encoding');
    if (transferEncoding !== undefined) {
      const codings = transferEncoding.split(',').map((c) => c.trim().toLowerCase());
      if (codings.length !== 1 || codings[0] !== 'chunked') return `unsupported Transfer-Encoding "${transferEncoding}"`;
      return { state: 'chunk-size', length: 0 };
    }
    const contentLength = headers.get('content-length');
    if (contentLength === undefined) return { state: 'close', length: 0 };
    const values = new Set(contentLength.split(',').map((v) => v.trim()));
    const [value] = values;
    if (values.size !== 1 || !/^[0-9]{1,15}$/.test(value!)) return `invalid Content-Length "${contentLength}"`;
    return { state: 'length', length: Number(value) };
  }
}
