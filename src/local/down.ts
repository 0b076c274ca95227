// `gardenos local down` stops the cluster gracefully and keeps its data;
// `destroy` also deletes the state directory, only when confirmed.
import { access, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PatroniClient } from '../clients/patroni.ts';
import type { Reporter } from '../log/events.ts';
import { type Phase, runPhases } from '../log/phases.ts';
import { stopInstance } from '../ops/pgbackrest.ts';
import { patroniUrl, postmasterPid, type LocalCluster } from './cluster.ts';
import { isolatedNetwork, removeNetwork } from './netns.ts';

export interface DownResult {
  stopped: string[];
}

async function leaderName(c: LocalCluster): Promise<string | undefined> {
  // No CA, no member ever started (an `up` that stopped before its state phase): nobody to ask.
  if (
    !(await access(c.layout.ca.cert).then(
      () => true,
      () => false,
    ))
  )
    return undefined;
  for (const m of c.topology.postgres) {
    const view = await new PatroniClient(patroniUrl(c, m.address), { caFile: c.layout.ca.cert, timeoutMs: 1000 }).cluster().catch(() => undefined);
    const leader = view?.members.find((x) => x.role === 'leader');
    if (leader) return leader.name;
  }
  return undefined;
}

/** The Patroni members, replicas first and the leader last, so that stopping them does not trigger failovers. */
export async function patroniStopOrder(c: LocalCluster): Promise<LocalCluster['specs']['patroni']> {
  const leader = await leaderName(c);
  return [...c.specs.patroni].sort((a, b) => Number(a.id === `patroni-${leader}`) - Number(b.id === `patroni-${leader}`));
}

/** Stops and removes the instance `db restore --beside` left running (its record and directory); false when there was none. */
export async function stopBeside(c: LocalCluster): Promise<boolean> {
  const { besideDir, besideRecord } = c.layout.backups;
  const there = (p: string) =>
    stat(p).then(
      () => true,
      () => false,
    );
  const [recorded, data] = await Promise.all([there(besideRecord), there(join(besideDir, 'data'))]);
  if (!recorded && !data) return false;
  if (data)
    await stopInstance({ binDir: c.layout.patroni(c.topology.postgres[0]!.name).binDir, ...(c.pgOwner ? { owner: c.pgOwner } : {}) }, join(besideDir, 'data'));
  await rm(besideDir, { recursive: true, force: true });
  await rm(besideRecord, { force: true });
  return true;
}

interface DownContext {
  c: LocalCluster;
  report: Reporter;
  stopped: string[];
}

/** Stops one daemon (within `graceMs`, then killed), reported per member. */
async function stopSpec(ctx: DownContext, spec: { id: string; match: string }, graceMs: number): Promise<void> {
  ctx.report({ kind: 'step', step: 'stop', member: spec.id, status: 'start' });
  const was = await ctx.c.supervisor.stop(spec, { graceMs });
  if (was) ctx.stopped.push(spec.id);
  ctx.report({ kind: 'step', step: 'stop', member: spec.id, status: was ? 'done' : 'skip', ...(was ? {} : { detail: 'not running' }) });
}

const count = (ctx: DownContext, before: number) => `${ctx.stopped.length - before} stopped`;

/** `local down`, in an order that causes no failover: what reads the cluster first, then routing, Patroni (replicas first), PostgreSQL, etcd. */
const DOWN_PHASES: readonly Phase<DownContext>[] = [
  {
    name: 'stop the scheduler, monitoring and pooler',
    async run(ctx) {
      const { c } = ctx;
      const before = ctx.stopped.length;
      if (c.config.backups.enabled || (await c.supervisor.pid(c.specs.scheduler)) !== undefined) await stopSpec(ctx, c.specs.scheduler, 30_000);
      for (const spec of [c.specs.monitoring, ...c.specs.exporters]) {
        if (c.config.monitoring.enabled || (await c.supervisor.pid(spec)) !== undefined) await stopSpec(ctx, spec, 10_000);
      }
      if (c.config.pooler.enabled || (await c.supervisor.pid(c.specs.pooler)) !== undefined) await stopSpec(ctx, c.specs.pooler, 10_000);
      // A point-in-time copy `db restore --beside` left running is not part of the cluster; it goes down with it.
      if (await stopBeside(c)) {
        ctx.stopped.push('restored instance beside');
        ctx.report({ kind: 'step', step: 'stop', member: 'restored instance beside', status: 'done' });
      }
      return count(ctx, before);
    },
  },
  {
    name: 'stop routing',
    async run(ctx) {
      const before = ctx.stopped.length;
      await stopSpec(ctx, ctx.c.specs.router, 10_000);
      await stopSpec(ctx, ctx.c.specs.haproxy, 10_000);
      return count(ctx, before);
    },
  },
  {
    name: 'stop Patroni',
    async run(ctx) {
      const before = ctx.stopped.length;
      for (const spec of await patroniStopOrder(ctx.c)) await stopSpec(ctx, spec, 60_000);
      // A PostgreSQL whose Patroni was killed keeps running; stop it too (fast shutdown, then kill).
      for (const m of ctx.c.topology.postgres) {
        const pid = await postmasterPid(ctx.c, m.name);
        if (pid === undefined) continue;
        process.kill(pid, 'SIGINT');
        const deadline = Date.now() + 30_000;
        while ((await postmasterPid(ctx.c, m.name)) !== undefined && Date.now() < deadline) await sleep(100);
        if ((await postmasterPid(ctx.c, m.name)) !== undefined) process.kill(pid, 'SIGKILL');
        ctx.stopped.push(`postgres-${m.name}`);
      }
      return count(ctx, before);
    },
  },
  {
    name: 'stop etcd',
    async run(ctx) {
      const before = ctx.stopped.length;
      for (const spec of ctx.c.specs.etcd) await stopSpec(ctx, spec, 15_000);
      return count(ctx, before);
    },
  },
];

export async function localDown(c: LocalCluster, report: Reporter): Promise<DownResult> {
  const ctx: DownContext = { c, report, stopped: [] };
  await runPhases(DOWN_PHASES, ctx, report);
  return { stopped: ctx.stopped };
}

export async function localDestroy(c: LocalCluster, report: Reporter): Promise<DownResult> {
  const result = await localDown(c, report);
  // The network's names follow from the state directory: remove whatever of it exists, even when the
  // record of `up --isolated` was never written (an `up` that failed after making the namespaces).
  const removed = await removeNetwork(c.network ?? isolatedNetwork(c.layout.root, c.topology));
  if (c.network || removed.length) {
    report({ kind: 'step', step: 'delete network', status: removed.length ? 'done' : 'skip', detail: removed.join(', ') || 'none left' });
  }
  const entries = await readdir(c.layout.root).catch(() => []);
  await rm(c.layout.root, { recursive: true, force: true });
  report({ kind: 'step', step: 'delete state', status: entries.length ? 'done' : 'skip', detail: c.layout.root });
  return result;
}
