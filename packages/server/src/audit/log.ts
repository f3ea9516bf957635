import { createWriteStream, openSync, type WriteStream } from 'node:fs';
import type { Clock } from '@beacon/core';

/** Where a request came in. */
export type AuditInterface = 'native' | 'consul' | 'eureka' | 'dns' | 'sse' | 'xds';

/** One line of the audit log: who did what to which thing, and how it ended. Never a secret. */
export interface AuditEntry {
  /** The token's AccessorID (the anonymous token's for no token, `acl-disabled` with ACLs off, `unresolved` for a secret that names no token). */
  accessor: string;
  /** The client's address. */
  remote: string;
  interface: AuditInterface;
  /** Method and route pattern (`PUT /v1/kv/*`), never the raw URL: a query string may carry `?token=`. */
  action: string;
  /** What the request named: a service, key, instance id… (empty when it named nothing). */
  target: string;
  /** The HTTP status answered (for an xDS stream refused for its token: 401, as `UNAUTHENTICATED` maps to it). */
  result: number;
}

/** Where audit entries go; the HTTP front end records, the server's composition root owns the file. */
export interface AuditSink {
  record(entry: AuditEntry): void;
}

/**
 * Beyond this many bytes waiting for the disk, lines are dropped (and counted on the next line
 * that gets through) rather than grown in memory without bound: a full or stalled disk must not
 * take the server down with it.
 */
export const AUDIT_BUFFER_BYTES = 8 * 1024 * 1024;

/**
 * The audit log file (`--audit-log FILE`): one JSON line per entry, appended through a buffered
 * stream so a request never waits for the disk. {@link reopen} (on SIGHUP) starts writing to the
 * file at the same path again, after logrotate moved the old one away.
 */
export class AuditFile implements AuditSink {
  private stream: WriteStream;
  private dropped = 0;

  constructor(
    readonly path: string,
    private readonly clock: Clock,
    private readonly onError: (err: Error) => void,
  ) {
    this.stream = this.open();
  }

  record(entry: AuditEntry): void {
    if (this.stream.writableLength > AUDIT_BUFFER_BYTES) {
      this.dropped++;
      return;
    }
    const line: Record<string, unknown> = { time: new Date(this.clock.now()).toISOString(), ...entry };
    if (this.dropped > 0) {
      line.droppedBefore = this.dropped;
      this.dropped = 0;
    }
    this.stream.write(JSON.stringify(line) + '\n');
  }

  /** Closes the current file (after what is buffered is written) and opens the path again; if that fails, keeps writing to the old one. */
  reopen(): void {
    const old = this.stream;
    try {
      this.stream = this.open();
    } catch (err) {
      this.onError(err as Error);
      return;
    }
    old.end();
  }

  /** Resolves once every recorded line is on its way to the file. */
  close(): Promise<void> {
    return new Promise((resolve) => this.stream.end(resolve));
  }

  /** Opens synchronously, so a path that cannot be written fails the server's start (or the reopen) at once. */
  private open(): WriteStream {
    // Mode 0600: the log names who did what, which is nobody else's business on the host.
    const s = createWriteStream('', { fd: openSync(this.path, 'a', 0o600) });
    s.on('error', this.onError);
    return s;
  }
}
