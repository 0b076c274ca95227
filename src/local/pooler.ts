// The local cluster's pooler: reaching its admin console, what status shows of
// it, and the planned switchover that clients do not notice — PAUSE (PgBouncer
// lets transactions in flight finish and holds new ones), Patroni's switchover,
// wait until the router routes writes to the new leader, RESUME. Clients see a
// pause, not an error. RESUME runs whatever happened in between.
import { PgbouncerAdmin, type PoolerDatabase } from '../clients/pgbouncer.ts';
import { describe, GardenError } from '../errors.ts';
import { switchover, type OperationResult, type PatroniAccess } from '../ops/patroni.ts';
import { USERS } from '../render/files.ts';
import { waitFor } from '../util/wait.ts';
import { getJson } from '../util/http.ts';
import { routerUrl, type LocalCluster } from './cluster.ts';
import { readSecrets } from './state.ts';

export interface PoolerStatus {
  reachable: boolean;
  paused: boolean;
  databases: PoolerDatabase[];
  error?: string;
}

export async function poolerAdmin(c: LocalCluster, timeoutMs = 2000): Promise<PgbouncerAdmin> {
  const secrets = await readSecrets(c.layout);
  if (!secrets) throw new GardenError('NOT_RUNNING', `cluster ${c.config.cluster.name} has no secrets in ${c.layout.root}`, { hint: 'run `gardenos local up` first' });
  return PgbouncerAdmin.connect({ socketDir: c.layout.pooler.socketDir, port: c.config.pooler.port, user: USERS.superuser, password: secrets.superuserPassword }, timeoutMs);
}

export async function poolerStatus(c: LocalCluster, timeoutMs: number): Promise<PoolerStatus> {
  let admin: PgbouncerAdmin | undefined;
  try {
    admin = await poolerAdmin(c, timeoutMs);
    const databases = await admin.databases();
    return { reachable: true, paused: databases.some((d) => d.paused), databases };
  } catch (e) {
    return { reachable: false, paused: false, databases: [], error: describe(e) };
  } finally {
    await admin?.close();
  }
}

export interface PausedSwitchover extends OperationResult {
  /** How long new transactions were held: from PAUSE done to RESUME done. */
  pausedMs: number;
}

/** A planned switchover behind a paused pooler (see the header). */
export async function pausedSwitchover(c: LocalCluster, access: PatroniAccess, candidate: string | undefined, timeoutMs: number): Promise<PausedSwitchover> {
  const admin = await poolerAdmin(c);
  try {
    // Waits for transactions in flight; one that never ends must not hold every client for long.
    // The PAUSE still pending on this connection would queue a RESUME behind it: a second one sends it.
    await admin.command('PAUSE', 10_000).catch(async (e: unknown) => {
      const other = await poolerAdmin(c);
      await other.command('RESUME').finally(() => other.close());
      throw e;
    });
    const pausedAt = Date.now();
    try {
      const result = await switchover(access, 'switchover', candidate, timeoutMs);
      await waitFor(
        `the router to route writes to ${result.after.leader}`,
        async () => (await getJson<{ primary: { name: string } | null }>(`${routerUrl(c)}/status`, 1000)).body.primary?.name === result.after.leader,
        { timeoutMs: 30_000, intervalMs: 20 },
      );
      return { ...result, pausedMs: Date.now() - pausedAt };
    } finally {
      await admin.command('RESUME', 10_000);
    }
  } finally {
    await admin.close();
  }
}
