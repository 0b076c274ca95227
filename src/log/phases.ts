// Phases as data (k0sctl's pattern): each has a name, may say why it does not run,
// and does its work over a context the caller builds. One runner reports every
// phase the same way — start, then done with a detail, skip with the reason, or
// fail with the error — to the terminal and to `--json` alike.
import { describe } from '../errors.ts';
import type { Reporter } from './events.ts';

export interface Phase<C, N extends string = string> {
  /** The step name in progress lines and `--json` events. */
  name: N;
  /** A reason not to run in this context (nothing to do, a dry run), or undefined to run. */
  skipReason?(ctx: C): string | undefined;
  /** Does the phase's work; returns the detail for the progress line. */
  run(ctx: C): Promise<string | undefined>;
}

export interface RunPhasesOptions {
  /** Phases the user asked to leave out (`--skip`). */
  skip?: ReadonlySet<string>;
  /** Whether a failure's message goes into the fail event's detail (it is also thrown to the caller). */
  failDetail?: boolean;
}

/** Runs `phases` in order over `ctx`; the first failure is reported and thrown, and nothing after it runs. */
export async function runPhases<C>(phases: readonly Phase<C>[], ctx: C, report: Reporter, opts: RunPhasesOptions = {}): Promise<void> {
  for (const phase of phases) {
    if (opts.skip?.has(phase.name)) {
      report({ kind: 'step', step: phase.name, status: 'skip', detail: 'skipped (--skip)' });
      continue;
    }
    const reason = phase.skipReason?.(ctx);
    if (reason) {
      report({ kind: 'step', step: phase.name, status: 'skip', detail: reason });
      continue;
    }
    report({ kind: 'step', step: phase.name, status: 'start' });
    try {
      const detail = await phase.run(ctx);
      report({ kind: 'step', step: phase.name, status: 'done', ...(detail ? { detail } : {}) });
    } catch (e) {
      report({ kind: 'step', step: phase.name, status: 'fail', ...(opts.failDetail === false ? {} : { detail: describe(e) }) });
      throw e;
    }
  }
}
