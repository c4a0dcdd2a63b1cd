/**
 * What a PostgreSQL error means for the client. Data exceptions (class 22: a value that does not
 * fit its type, a NUL byte in text, a number out of range…) come from what the client sent: 400.
 * A cancelled statement (statement_timeout) or a lost/restarting database: 503 with Retry-After.
 * Anything else is ours: 500, without internals.
 */
export interface DbErrorClass {
  status: 400 | 503 | 500;
  /** Client-facing message (no SQL, no internals). */
  message: string;
  retryAfter?: number;
}

export function classifyDbError(e: unknown): DbErrorClass | null {
  if (e instanceof Error && e.name === 'ServerBusy')
    return { status: 503, message: e.message, retryAfter: (e as { retryAfter?: number }).retryAfter ?? 2 };
  const code = (e as { code?: unknown })?.code;
  // the database cannot be reached: refused, reset, timed out (pg-pool), or the client died mid-query
  if (typeof code === 'string' && /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EHOSTUNREACH|ENOTFOUND|EAI_AGAIN)$/.test(code)) {
    return { status: 503, message: 'the database is unavailable; retry shortly', retryAfter: 5 };
  }
  const msg = e instanceof Error ? e.message : '';
  if (
    /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Connection terminated unexpectedly/.test(
      msg,
    )
  ) {
    return { status: 503, message: 'the database is unavailable; retry shortly', retryAfter: 5 };
  }
  if (typeof code !== 'string' || !/^[0-9A-Z]{5}$/.test(code)) return null;
  if (code.startsWith('22')) {
    const msg = String((e as Error).message ?? '')
      .replace(/\s+/g, ' ')
      .slice(0, 200);
    return { status: 400, message: `invalid value in the request: ${msg}` };
  }
  if (code === '57014') return { status: 503, message: 'the request took longer than the server allows and was cancelled', retryAfter: 5 };
  if (code.startsWith('08') || code.startsWith('57P') || code.startsWith('53')) {
    return { status: 503, message: 'the database is unavailable or overloaded; retry shortly', retryAfter: 5 };
  }
  return null;
}
