// TLS from a certificate and a key file (cert-manager, or any mounted Secret), reloaded when they
// change. Kubernetes updates a Secret volume by swapping the `..data` symlink in its directory, and
// cert-manager rewrites the files in place, so the directories are watched rather than the files,
// with a periodic re-read as a safety net for file systems that drop events.
import { createHash } from 'node:crypto';
import { watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createSecureContext } from 'node:tls';
import type { KeyPairPem } from './certs.ts';

export interface TlsSourceEvents {
  /** New material that makes a valid secure context. */
  onChange: (material: KeyPairPem) => void;
  /** The files changed but cannot be used; the previous material stays in use. */
  onInvalid: (problem: string) => void;
}

/** Why a certificate and key cannot be served together, or undefined when they can. */
export function tlsProblem(material: KeyPairPem): string | undefined {
  try {
    createSecureContext({ cert: material.cert, key: material.key });
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

export async function readKeyPair(certFile: string, keyFile: string): Promise<KeyPairPem> {
  const [cert, key] = await Promise.all([readFile(certFile, 'utf8'), readFile(keyFile, 'utf8')]);
  return { cert, key };
}

function fingerprint(material: KeyPairPem): string {
  return createHash('sha256').update(material.cert).update('\0').update(material.key).digest('hex');
}

export class FileTlsSource {
  readonly certFile: string;
  readonly keyFile: string;
  private readonly pollMs: number;
  private readonly debounceMs: number;
  private watchers: FSWatcher[] = [];
  private poll: NodeJS.Timeout | undefined;
  private pending: NodeJS.Timeout | undefined;
  private current = '';
  private lastProblem = '';
  private reloading: Promise<void> = Promise.resolve();

  constructor(certFile: string, keyFile: string, options: { pollMs?: number; debounceMs?: number } = {}) {
    this.certFile = certFile;
    this.keyFile = keyFile;
    this.pollMs = options.pollMs ?? 60_000;
    this.debounceMs = options.debounceMs ?? 100;
  }

  /** The material at start; throws with the file names when it cannot be read or used. */
  async load(): Promise<KeyPairPem> {
    let material: KeyPairPem;
    try {
      material = await readKeyPair(this.certFile, this.keyFile);
    } catch (err) {
      throw new Error(`cannot read the TLS files: ${(err as Error).message}`, { cause: err });
    }
    const problem = tlsProblem(material);
    if (problem !== undefined) {
      throw new Error(`${this.certFile} and ${this.keyFile} are not a usable certificate and key: ${problem}`);
    }
    this.current = fingerprint(material);
    return material;
  }

  /** Watches both files' directories; `events` get every change after load(). */
  watch(events: TlsSourceEvents): void {
    const schedule = (): void => {
      // Several events arrive for one update (symlink swap, or cert then key): read once they settle.
      clearTimeout(this.pending);
      this.pending = setTimeout(() => {
        this.reloading = this.reloading.then(() => this.reload(events));
      }, this.debounceMs);
    };
    for (const dir of new Set([dirname(this.certFile), dirname(this.keyFile)])) {
      const watcher = watch(dir, schedule);
      watcher.on('error', (err) => events.onInvalid(`watching ${dir} failed: ${err.message}`));
      this.watchers.push(watcher);
    }
    this.poll = setInterval(schedule, this.pollMs);
    this.poll.unref();
  }

  private async reload(events: TlsSourceEvents): Promise<void> {
    let material: KeyPairPem;
    try {
      material = await readKeyPair(this.certFile, this.keyFile);
    } catch (err) {
      this.report(events, `cannot read the TLS files: ${(err as Error).message}`);
      return;
    }
    const print = fingerprint(material);
    if (print === this.current) return;
    const problem = tlsProblem(material);
    if (problem !== undefined) {
      // Often a half-written update (the new certificate before its key): the next event retries.
      this.report(events, `${this.certFile} and ${this.keyFile} changed but do not make a usable pair: ${problem}`);
      return;
    }
    this.current = print;
    this.lastProblem = '';
    events.onChange(material);
  }

  private report(events: TlsSourceEvents, problem: string): void {
    // The poll re-reads the same bad files every minute: say it once per distinct problem.
    if (problem === this.lastProblem) return;
    this.lastProblem = problem;
    events.onInvalid(problem);
  }

  close(): void {
    for (const w of this.watchers) w.close();
    this.watchers = [];
    clearInterval(this.poll);
    clearTimeout(this.pending);
  }
}
