import { pino, type Logger } from 'pino';

/**
 * The JSON log of a long-running command, on stdout. Written synchronously: pino's default
 * asynchronous stream flushes at exit with a loop that retries EPIPE forever, so a server whose
 * log reader had gone (`beacon server | head`, a dead log shipper) hung on SIGTERM instead of
 * exiting. A synchronous write sees EPIPE at once, and pino then stops logging.
 */
export function stdoutLogger(level: string, svc: string): Logger {
  return pino({ level, base: { svc } }, pino.destination({ dest: 1, sync: true }));
}
