// One error base for everything GardenOS reports to a person. Each error says
// what happened, where, and what to do next; `code` is stable for scripts.

export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'CONFIG_NOT_FOUND'
  | 'MISSING_PACKAGE'
  | 'UNSUPPORTED_VERSION'
  | 'PORT_IN_USE'
  | 'STALE_DCS_STATE'
  | 'MEMBER_FAILED'
  | 'NOT_RUNNING'
  | 'BACKEND_UNAVAILABLE'
  | 'TIMEOUT'
  | 'CONFIRMATION_REQUIRED'
  | 'STATE_CONFLICT';

export class GardenError extends Error {
  readonly code: ErrorCode;
  /** What the user can do about it; printed under the message. */
  readonly hint: string | undefined;
  /** Extra lines (log tails, lists of problems) printed after the hint. */
  readonly details: readonly string[];

  constructor(code: ErrorCode, message: string, opts: { hint?: string; details?: readonly string[]; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'GardenError';
    this.code = code;
    this.hint = opts.hint;
    this.details = opts.details ?? [];
  }
}

/** The short text of any thrown value, for evidence and log lines. */
export function describe(e: unknown): string {
  if (e instanceof Error) {
    const code = (e as NodeJS.ErrnoException).code;
    const own = code && !e.message.includes(code) ? `${code}: ${e.message}` : e.message;
    // fetch() says only "fetch failed"; the reason (ECONNREFUSED, a certificate error) is its cause.
    return e.message === 'fetch failed' && e.cause ? `${own}: ${describe(e.cause)}` : own;
  }
  return String(e);
}
