/**
 * The one error catalog. Every failure that crosses an interface is a {@link BeaconError}
 * with one of these codes; only the HTTP error handler and the DNS responder translate them.
 */
export const ERROR_CATALOG = {
  invalid_argument: { http: 400, rcode: 'FORMERR', retryable: false },
  unauthorized: { http: 401, rcode: 'REFUSED', retryable: false },
  forbidden: { http: 403, rcode: 'REFUSED', retryable: false },
  not_found: { http: 404, rcode: 'NXDOMAIN', retryable: false },
  conflict: { http: 409, rcode: 'SERVFAIL', retryable: false },
  compacted: { http: 410, rcode: 'SERVFAIL', retryable: false },
  precondition_failed: { http: 412, rcode: 'SERVFAIL', retryable: false },
  payload_too_large: { http: 413, rcode: 'FORMERR', retryable: false },
  unsupported_media_type: { http: 415, rcode: 'FORMERR', retryable: false },
  too_many_requests: { http: 429, rcode: 'REFUSED', retryable: true },
  internal: { http: 500, rcode: 'SERVFAIL', retryable: true },
  unavailable: { http: 503, rcode: 'SERVFAIL', retryable: true },
  timeout: { http: 504, rcode: 'SERVFAIL', retryable: true },
} as const satisfies Record<string, { http: number; rcode: DnsRcode; retryable: boolean }>;

export type DnsRcode = 'NOERROR' | 'FORMERR' | 'SERVFAIL' | 'NXDOMAIN' | 'NOTIMP' | 'REFUSED';
export type ErrorCode = keyof typeof ERROR_CATALOG;

/** The JSON body of every error answer: `{"error":{"code","message"}}`. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string; details?: unknown };
}

export class BeaconError extends Error {
  override readonly name = 'BeaconError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
  get httpStatus(): number {
    return ERROR_CATALOG[this.code].http;
  }
  get rcode(): DnsRcode {
    return ERROR_CATALOG[this.code].rcode;
  }
  get retryable(): boolean {
    return ERROR_CATALOG[this.code].retryable;
  }
  toJSON(): ErrorBody {
    return { error: { code: this.code, message: this.message, ...(this.details === undefined ? {} : { details: this.details }) } };
  }
}

export const isBeaconError = (e: unknown): e is BeaconError => e instanceof BeaconError;

export function isErrorCode(s: unknown): s is ErrorCode {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(ERROR_CATALOG, s);
}

/** Maps an HTTP status back to a code, for clients reading an answer that had no JSON body. */
export function codeForHttpStatus(status: number): ErrorCode {
  for (const [code, v] of Object.entries(ERROR_CATALOG)) if (v.http === status) return code as ErrorCode;
  return status >= 500 ? 'internal' : 'invalid_argument';
}

export const errors = {
  invalid: (message: string, details?: unknown) => new BeaconError('invalid_argument', message, details),
  notFound: (message: string) => new BeaconError('not_found', message),
  conflict: (message: string) => new BeaconError('conflict', message),
  precondition: (message: string) => new BeaconError('precondition_failed', message),
  compacted: (message: string) => new BeaconError('compacted', message),
  unavailable: (message: string) => new BeaconError('unavailable', message),
  tooLarge: (message: string) => new BeaconError('payload_too_large', message),
  forbidden: (message: string) => new BeaconError('forbidden', message),
  tooMany: (message: string) => new BeaconError('too_many_requests', message),
};
