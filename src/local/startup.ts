// Waiting for members that were just started, without leaving anyone to dig
// through logs: a member that exits, or whose log shows a cause that will not
// heal by itself, ends the wait at once with that cause and its fix; a timeout
// says what each member's log has shown since this command began — a known
// cause, or the error lines verbatim.
import { errorLines, findCauses, groupCauses, linesSince, sinceLastStart, type LogCause } from '../doctor/causes.ts';
import { GardenError } from '../errors.ts';
import { waitFor } from '../util/wait.ts';
import type { LocalCluster } from './cluster.ts';
import { portHolder } from './preflight.ts';
import { tail, type ProcessSpec } from './supervisor.ts';

export interface StartLog {
  process: string;
  logFile: string;
  causes: LogCause[];
  /** Error lines since the last start, verbatim, for causes no rule knows. */
  errors: string[];
}

/** A process's log since its last start (optionally narrowed, e.g. to a time window): its known causes and error lines. */
export async function readStartLog(spec: Pick<ProcessSpec, 'id' | 'logFile'>, narrow: (lines: string[]) => string[] = (l) => l): Promise<StartLog> {
  const lines = narrow(sinceLastStart(await tail(spec.logFile, 400)));
  return { process: spec.id, logFile: spec.logFile, causes: findCauses(spec.id, lines), errors: errorLines(lines) };
}

/** The port-in-use causes get the process holding the port, as far as `ss` can tell. */
async function withHolders(causes: LogCause[]): Promise<LogCause[]> {
  return Promise.all(
    causes.map(async (c) => {
      if (!c.address) return c;
      const holder = await portHolder(c.address.host, c.address.port);
      return holder ? { ...c, summary: `${c.summary} (held by ${holder})` } : c;
    }),
  );
}

/**
 * The lines an error shows for these logs: each known cause once, with the processes that show it
 * and its newest evidence, else each process's last error lines verbatim. A cause's fix is shown
 * here unless it is the only one (then it is the error's hint).
 */
export function explainLogs(logs: readonly StartLog[]): string[] {
  const groups = groupCauses(logs.flatMap((l) => l.causes));
  const out: string[] = [];
  for (const { processes, cause } of groups) {
    out.push(`${processes.join(', ')}: ${cause.summary}`, ...cause.evidence.slice(-2).map((e) => `    ${e}`));
    if (groups.length > 1) out.push(`  fix: ${cause.fix}`);
  }
  for (const l of logs) {
    if (!l.causes.length && l.errors.length) out.push(`${l.process}: its log (${l.logFile}) says since its last start:`, ...l.errors.map((e) => `    ${e}`));
  }
  return out;
}

function failed(message: string, logs: StartLog[], fallback: string): GardenError {
  const fatal = logs.flatMap((l) => l.causes.filter((c) => c.fatal));
  const fixes = [...new Set(fatal.map((c) => c.fix))];
  return new GardenError('MEMBER_FAILED', message, {
    details: explainLogs(logs),
    hint: fixes.length === 1 ? fixes[0]! : fallback,
  });
}

/**
 * `waitFor(check)` for members that were just started: ends early, with the cause, when one of
 * `specs` exits or logs a fatal cause; on a timeout, adds what the logs say.
 */
export async function awaitMembers<T>(
  c: LocalCluster,
  specs: readonly ProcessSpec[],
  what: string,
  check: () => Promise<T | undefined | false>,
  opts: { timeoutMs: number; intervalMs: number; since: number },
): Promise<T> {
  // Only what the logs say since this command began (a member it started wrote its start marker
  // after that): an error that a member running from before has since got over is history.
  const { since } = opts;
  const read = (s: ProcessSpec) => readStartLog(s, (lines) => linesSince(lines, since));
  const seeLogs = `see the whole log with \`gardenos local logs <member>\` (${specs.map((s) => s.id).join(', ')})`;
  let lastLogRead = 0;
  try {
    return await waitFor(
      what,
      async () => {
        for (const spec of specs) {
          if ((await c.supervisor.pid(spec)) !== undefined) continue;
          const log = await read(spec);
          const causes = await withHolders(log.causes);
          throw new GardenError('MEMBER_FAILED', `${spec.id} exited while waiting for ${what}`, {
            details: causes.length ? explainLogs([{ ...log, causes }]) : [`last lines of ${spec.logFile}:`, ...(await tail(spec.logFile)).map((l) => `  ${l}`)],
            hint: causes.length === 1 ? causes[0]!.fix : `see the whole log with \`gardenos local logs ${spec.id}\``,
          });
        }
        // Logs are read once a second: the cause of a stuck start is not in a hurry, the poll is.
        if (Date.now() - lastLogRead >= 1000) {
          lastLogRead = Date.now();
          const logs = await Promise.all(specs.map(read));
          const stuck = logs.filter((l) => l.causes.some((x) => x.fatal));
          if (stuck.length) {
            const withHolder = await Promise.all(stuck.map(async (l) => ({ ...l, causes: await withHolders(l.causes.filter((x) => x.fatal)) })));
            throw failed(`${stuck.map((l) => l.process).join(', ')} cannot start`, withHolder, seeLogs);
          }
        }
        return check();
      },
      { timeoutMs: opts.timeoutMs, intervalMs: opts.intervalMs },
    );
  } catch (e) {
    if (!(e instanceof GardenError) || e.code !== 'TIMEOUT') throw e;
    const explained = explainLogs(await Promise.all(specs.map(read)));
    throw new GardenError('TIMEOUT', e.message, {
      details: [...e.details, ...(explained.length ? explained : ["the members' logs show no error since their last start"])],
      hint: seeLogs,
    });
  }
}
