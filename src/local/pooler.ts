// The local cluster's pooler: reaching its admin console, what status shows of
// it, and the planned switchover that clients do not notice — PAUSE (PgBouncer
// lets transactions in flight finish and holds new ones), Patroni's switchover,
// wait until the router routes writes to the new leader, RESUME. Clients see a
// pause, not an error. RESUME runs whatever happened in between.
import { readFile, rm } from 'node:fs/promises';
import pg from 'pg';
import { PgbouncerAdmin, type PoolerDatabase } from '../clients/pgbouncer.ts';
import { describe, GardenError } from '../errors.ts';
import { switchover, type OperationResult, type PatroniAccess } from '../ops/patroni.ts';
import { USERS, type ClusterSecrets } from '../render/files.ts';
import { waitFor } from '../util/wait.ts';
import { writeFileAtomic } from '../util/files.ts';
import { getJson } from '../util/http.ts';
import { connectionUris, routerUrl, type LocalCluster } from './cluster.ts';
import { readSecrets } from './state.ts';

export interface PoolerStatus {
  reachable: boolean;
  paused: boolean;
  /** What GardenOS wrote when it paused the pooler (a switchover), while that pause lasts. */
  pausedBy?: string;
  databases: PoolerDatabase[];
  error?: string;
}

async function mustReadSecrets(c: LocalCluster): Promise<ClusterSecrets> {
  const secrets = await readSecrets(c.layout);
  if (!secrets)
    throw new GardenError('NOT_RUNNING', `cluster ${c.config.cluster.name} has no secrets in ${c.layout.root}`, { hint: 'run `gardenos local up` first' });
  return secrets;
}

/** The admin console, with the superuser's password from `secrets` (read from the state directory when not given). */
export async function poolerAdmin(c: LocalCluster, secrets?: ClusterSecrets, timeoutMs = 2000): Promise<PgbouncerAdmin> {
  secrets ??= await mustReadSecrets(c);
  return PgbouncerAdmin.connect(
    { socketDir: c.layout.pooler.socketDir, port: c.config.pooler.port, user: USERS.superuser, password: secrets.superuserPassword },
    timeoutMs,
  );
}

export async function poolerStatus(c: LocalCluster, timeoutMs: number): Promise<PoolerStatus> {
  let admin: PgbouncerAdmin | undefined;
  try {
    admin = await poolerAdmin(c, undefined, timeoutMs);
    const databases = await admin.databases();
    const marker = (await readFile(c.layout.pooler.pauseMarker, 'utf8').catch(() => undefined))?.trim();
    return {
      reachable: true,
      paused: marker !== undefined || databases.some((d) => d.paused),
      ...(marker !== undefined ? { pausedBy: marker } : {}),
      databases,
    };
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

/** Whether a new connection to `uri` reaches the server at `address`, out of recovery. */
export async function reachesPrimary(uri: string, address: string | undefined): Promise<boolean> {
  const client = new pg.Client({ connectionString: uri, connectionTimeoutMillis: 1000, query_timeout: 1000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const r = await client.query<{ standby: boolean; addr: string }>('SELECT pg_is_in_recovery() AS standby, host(inet_server_addr()) AS addr');
    return r.rows[0]?.standby === false && r.rows[0].addr === address;
  } finally {
    await Promise.race([client.end().catch(() => undefined), new Promise((r) => setTimeout(r, 200))]);
  }
}

async function checkpoint(uri: string): Promise<void> {
  const client = new pg.Client({ connectionString: uri, connectionTimeoutMillis: 5000, query_timeout: 60_000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('CHECKPOINT');
  } catch (e) {
    throw new GardenError('BACKEND_UNAVAILABLE', `CHECKPOINT on the primary before the switchover failed: ${describe(e)}`, {
      hint: '`gardenos local status` shows whether the primary route has a primary',
    });
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** A planned switchover behind a paused pooler (see the header). */
export async function pausedSwitchover(c: LocalCluster, access: PatroniAccess, candidate: string | undefined, timeoutMs: number): Promise<PausedSwitchover> {
  const secrets = await mustReadSecrets(c);
  // A checkpoint now, while clients still flow, leaves little for the demotion's own checkpoint and
  // shutdown checkpoint to write once they are held.
  await checkpoint(connectionUris(c, secrets.superuserPassword).primary);
  const admin = await poolerAdmin(c, secrets);
  try {
    await writeFileAtomic(
      c.layout.pooler.pauseMarker,
      `${JSON.stringify({ since: new Date().toISOString(), by: 'db switchover', pid: process.pid })}\n`,
      0o644,
    );
    // Waits for transactions in flight; one that never ends must not hold every client for long.
    // The PAUSE still pending on this connection would queue a RESUME behind it: a second one sends it.
    await admin.command('PAUSE', 10_000).catch(async (e: unknown) => {
      const other = await poolerAdmin(c, secrets);
      await other.command('RESUME').finally(() => other.close());
      await rm(c.layout.pooler.pauseMarker, { force: true });
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
      // Patroni names the new leader while its PostgreSQL may still be finishing the promotion: the
      // route is ready when a new connection through it lands on that server, out of recovery.
      const address = c.topology.postgres.find((m) => m.name === result.after.leader)?.address;
      const { primary } = connectionUris(c, secrets.superuserPassword);
      await waitFor(`${result.after.leader} to take writes through the primary route`, () => reachesPrimary(primary, address), {
        timeoutMs: 30_000,
        intervalMs: 20,
      });
      return { ...result, pausedMs: Date.now() - pausedAt };
    } finally {
      await admin.command('RESUME', 10_000);
      await rm(c.layout.pooler.pauseMarker, { force: true });
    }
  } finally {
    await admin.close();
  }
}
