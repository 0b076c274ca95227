// What the router knows of the pooler (pooler.enabled): PgBouncer's SHOW DATABASES and SHOW POOLS, read
// as its stats user (stats_users: SHOW only, never PAUSE or RESUME) through the admin socket whenever
// Prometheus scrapes the router — whether it answers, whether it is paused (a switchover left half done),
// how many clients are served and waiting, and its server connections by state. `status` and the
// dashboard ask PgBouncer the same way.
import { access, readFile } from 'node:fs/promises';
import { Gauge, type Registry } from 'prom-client';
import { PgbouncerAdmin } from '../clients/pgbouncer.ts';
import { describe } from '../errors.ts';
import type { RouterSettings } from './settings.ts';

interface PoolRow {
  database: string;
  user: string;
  cl_active: string | number;
  cl_waiting: string | number;
  sv_active: string | number;
  sv_idle: string | number;
  sv_used: string | number;
  sv_tested: string | number;
  sv_login: string | number;
  maxwait: string | number;
  maxwait_us?: string | number;
}

/** Registers the pooler's gauges on `registry`; each scrape asks PgBouncer once for all of them. */
export function poolerMetrics(registry: Registry, pooler: NonNullable<RouterSettings['pooler']>, log: (line: string) => void): void {
  let inFlight: Promise<void> | undefined;
  // One question to PgBouncer per scrape: every gauge collects at once and shares the answer in flight.
  const refresh = () => (inFlight ??= read().finally(() => (inFlight = undefined)));
  const gauge = <L extends string>(name: string, help: string, labelNames: L[]) =>
    new Gauge<L>({ name, help, labelNames, registers: [registry], collect: refresh });
  const up = gauge('gardenos_pooler_up', "1 when PgBouncer's admin console answers the router", []);
  const paused = gauge('gardenos_pooler_paused', '1 while a database is paused (clients wait)', ['database']);
  const clients = gauge('gardenos_pooler_clients', 'Client connections by state (active: linked to a server; waiting: for one)', ['database', 'state']);
  const servers = gauge('gardenos_pooler_servers', 'Server connections by state', ['database', 'state']);
  const maxWait = gauge('gardenos_pooler_max_wait_seconds', 'How long the oldest waiting client has waited', ['database']);

  async function read(): Promise<void> {
    let admin: PgbouncerAdmin | undefined;
    try {
      const password = (await readFile(pooler.passwordFile, 'utf8')).trim();
      admin = await PgbouncerAdmin.connect({ socketDir: pooler.socketDir, port: pooler.port, user: pooler.user, password }, 2000);
      const [dbs, pools] = await Promise.all([admin.databases(), admin.command<PoolRow>('SHOW POOLS', 2000)]);
      for (const g of [paused, clients, servers, maxWait]) g.reset();
      // PgBouncer 1.18 shows a PAUSE of one database, not a global one: GardenOS marks its own.
      const marked = pooler.pauseMarker
        ? await access(pooler.pauseMarker).then(
            () => true,
            () => false,
          )
        : false;
      // SHOW DATABASES lists a database of the `*` fallback only while it has connections (PgBouncer moves an
      // idle one aside, and PAUSE closes them all): its pools name it too. A global PAUSE marked by GardenOS
      // with no database known at all is reported under PgBouncer's own name for the fallback, `*`.
      const names = new Set([...dbs.map((d) => d.name), ...pools.map((p) => p.database).filter((d) => d !== 'pgbouncer')]);
      if (marked && names.size === 0) names.add('*');
      for (const name of names) paused.set({ database: name }, marked || dbs.some((d) => d.name === name && d.paused) ? 1 : 0);
      // A pool per database and user: summed per database; the longest wait is the longest of its pools.
      const waits = new Map<string, number>();
      const n = (v: string | number | undefined) => Number(v ?? 0);
      for (const p of pools.filter((x) => x.database !== 'pgbouncer')) {
        clients.inc({ database: p.database, state: 'active' }, n(p.cl_active));
        clients.inc({ database: p.database, state: 'waiting' }, n(p.cl_waiting));
        for (const state of ['active', 'idle', 'used', 'tested', 'login'] as const) servers.inc({ database: p.database, state }, n(p[`sv_${state}`]));
        waits.set(p.database, Math.max(waits.get(p.database) ?? 0, n(p.maxwait) + n(p.maxwait_us) / 1e6));
      }
      for (const [database, seconds] of waits) maxWait.set({ database }, seconds);
      up.set(1);
    } catch (e) {
      up.set(0);
      log(JSON.stringify({ ts: new Date().toISOString(), error: `pooler: ${describe(e)}` }));
      for (const g of [paused, clients, servers, maxWait]) g.reset();
    } finally {
      await admin?.close();
    }
  }
}
