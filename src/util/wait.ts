// Waiting for conditions (a member is leader, a port answers) with a deadline;
// never a fixed sleep. The last failure is kept so a timeout says why.
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, GardenError } from '../errors.ts';

export interface WaitOptions {
  timeoutMs: number;
  intervalMs?: number;
  signal?: AbortSignal;
  /** Errors that end the wait at once instead of counting as "not yet" (default: a member that failed). */
  isFatal?: (e: unknown) => boolean;
}

const memberFailed = (e: unknown) => e instanceof GardenError && e.code === 'MEMBER_FAILED';

/** Calls `check` until it returns a value other than undefined/false, or the deadline passes. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false>, opts: WaitOptions): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  let last = 'not yet';
  for (;;) {
    opts.signal?.throwIfAborted();
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      if ((opts.isFatal ?? memberFailed)(e)) throw e;
      last = describe(e);
    }
    if (Date.now() >= deadline) {
      throw new GardenError('TIMEOUT', `timed out after ${Math.round(opts.timeoutMs / 1000)}s waiting for ${what}`, { details: [`last check: ${last}`] });
    }
    await sleep(opts.intervalMs ?? 200, undefined, opts.signal ? { signal: opts.signal } : undefined);
  }
}

/** Rejects with a TIMEOUT error if `p` has not settled within `ms`. */
export async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new GardenError('TIMEOUT', `${what} did not answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
