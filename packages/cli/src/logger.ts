import { pino, type Logger } from 'pino';

/**
 * Stops a long-running command on SIGTERM or SIGINT (the first one): runs `stop`, then logs
 * `stopped` and exits 0, or logs what failed and exits 1.
 */
export function exitAfterStop(logger: Logger, stop: (signal: NodeJS.Signals) => Promise<unknown>): void {
  let stopping = false;
  const on = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    stop(signal).then(
      () => {
        logger.info('stopped');
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err: (err as Error).message }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => on('SIGTERM'));
  process.on('SIGINT', () => on('SIGINT'));
}

/** How log lines look: one JSON object per line for machines, one readable line for people. */
export const LOG_FORMATS = ['pretty', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** People read a terminal; anything else (a file, a pipe, journald, a log shipper) gets JSON. */
export function defaultLogFormat(stdout: { isTTY?: boolean } = process.stdout): LogFormat {
  return stdout.isTTY ? 'pretty' : 'json';
}

/**
 * The log of a long-running command, on stdout. Written synchronously: pino's default
 * asynchronous stream flushes at exit with a loop that retries EPIPE forever, so a server whose
 * log reader had gone (`beacon server | head`, a dead log shipper) hung on SIGTERM instead of
 * exiting. A synchronous write sees EPIPE at once, and pino's destination then stops writing;
 * the pretty form writes through the same destination, so it stops the same way.
 */
export function stdoutLogger(level: string, svc: string, format: LogFormat = 'json'): Logger {
  const dest = pino.destination({ dest: 1, sync: true });
  switch (format) {
    case 'json':
      return pino({ level, base: { svc } }, dest);
    case 'pretty':
      // Looked up at each write: after EPIPE pino has replaced `dest.write` with a no-op.
      return pino({ level, base: { svc } }, { write: (line: string) => dest.write(prettyLine(line)) });
  }
}

/** Fields every line has, shown in their own places rather than as key=value. */
const PLACED = new Set(['level', 'time', 'msg', 'svc']);

/** One JSON log line as `time LEVEL message key=value …`, still on one line. */
export function prettyLine(json: string): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const level = (pino.levels.labels[rec.level as number] ?? String(rec.level)).toUpperCase();
  const time = typeof rec.time === 'number' ? new Date(rec.time).toISOString() : '-';
  let out = `${time} ${level.padEnd(5)} ${typeof rec.msg === 'string' ? rec.msg : ''}`;
  for (const [k, v] of Object.entries(rec)) {
    if (PLACED.has(k) || v === undefined) continue;
    out += ` ${k}=${pretty(k, v)}`;
  }
  return out + '\n';
}

function pretty(key: string, v: unknown): string {
  // An error's message is what a person needs on the line; its stack is in the JSON format.
  if (key === 'err' && v && typeof v === 'object' && 'message' in v) return quote(String((v as { message: unknown }).message));
  if (typeof v === 'string') return quote(v);
  return JSON.stringify(v);
}

/** Bare when unambiguous, JSON-quoted when it has spaces, quotes, `=` or line breaks. */
function quote(s: string): string {
  return s !== '' && /^[^\s"=]+$/.test(s) ? s : JSON.stringify(s);
}
