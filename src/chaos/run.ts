// One fault run on the local cluster: a healthy cluster, the writer going,
// the fault, the recovery, health again, then the verdict from the rows that
// the final primary holds.
import pg from 'pg';
import { EtcdClient } from '../clients/etcd.ts';
import { readyLeader } from '../clients/patroni.ts';
import type { Reporter } from '../log/events.ts';
import { GardenError } from '../errors.ts';
import { connectionUris, etcdEndpoints, type LocalCluster } from '../local/cluster.ts';
import { readSecrets } from '../local/state.ts';
import { waitFor } from '../util/wait.ts';
import { clusterView, type Scenario } from './scenarios.ts';
import { judge, unverified, type StoredRow, type Verdict } from './verdict.ts';
import { CHAOS_TABLE, prepareTable, Writer, type WriterResult } from './writer.ts';

export interface ChaosRun {
  scenario: string;
  fault: string;
  /** When the run started (Unix ms), to match other logs (the router's) with its times. */
  startedAt: number;
  /** Milliseconds since the run started. */
  injectAt: number;
  recoverAt: number;
  healthyAt: number;
  endAt: number;
  writer: WriterResult;
  verdict: Verdict;
  timelines: { before: number | null; after: number | null };
}

export interface RunOptions {
  warmupMs?: number;
  /** Writing goes on this long after the cluster is healthy again. */
  settleMs?: number;
  timeoutMs?: number;
}

/**
 * Every etcd member answers and agrees on the leader and the raft term. A member whose links just came
 * back can take seconds to rejoin (its peers' streams reconnect with a backoff) while it still answers
 * on its own; injecting the next fault before then would be a second fault at once (the partition of
 * the etcd leader then leaves no quorum), not the scenario.
 */
async function etcdSettled(etcd: EtcdClient): Promise<void> {
  const s = await etcd.statuses();
  const silent = s.filter((m) => !m.ok).map((m) => `${m.endpoint}: ${m.error}`);
  if (silent.length) throw new Error(`etcd ${silent.join('; ')}`);
  const agree = new Set(s.map((m) => `${m.leaderId}/${m.raftTerm}`));
  if (agree.size !== 1 || !s[0]!.leaderId || s[0]!.leaderId === '0') throw new Error(`etcd members disagree on leader/term: ${[...agree].join(', ')}`);
}

/** How long the cluster must look healthy without a break before it counts as healed (a rejoining etcd member flaps for a few seconds). */
const SETTLE_MS = 5000;

async function healthy(c: LocalCluster, timeoutMs: number): Promise<{ leader: string; timeline: number | null }> {
  let since: number | undefined;
  // One client for the whole wait (it asks each member's JSON gateway; nothing to close between polls).
  const etcd = new EtcdClient(etcdEndpoints(c), c.layout.client, { timeoutMs: 1000 });
  return waitFor(
    `a leader, a synchronous standby, every member running, and every etcd member agreeing on its leader, for ${SETTLE_MS / 1000} s on end`,
    async () => {
      since ??= Date.now();
      try {
        const v = await clusterView(c);
        const name = readyLeader(v, { members: c.topology.postgres.length, synchronous: c.config.postgres.synchronousMode });
        if (!name) throw new Error('no ready leader with a synchronous standby and every member running');
        await etcdSettled(etcd);
        if (Date.now() - since < SETTLE_MS) return undefined;
        return { leader: name, timeline: v.members.find((m) => m.name === name)!.timeline ?? null };
      } catch (e) {
        since = undefined;
        throw e;
      }
    },
    { timeoutMs, intervalMs: 250 },
  );
}

export async function runScenario(c: LocalCluster, s: Scenario, report: Reporter, opts: RunOptions = {}): Promise<ChaosRun> {
  const timeoutMs = opts.timeoutMs ?? 180_000;
  const secrets = await readSecrets(c.layout);
  const { primary, pooled } = connectionUris(c, secrets?.superuserPassword);
  const endpoint = s.endpoint === 'pooler' ? pooled : primary;
  if (!endpoint)
    throw new GardenError('STATE_CONFLICT', `${s.name} writes through the pooler, which is off in cluster ${c.config.cluster.name}`, {
      hint: 'set `pooler: { enabled: true }` in gardenos.yaml and run `gardenos local up -c gardenos.yaml`',
    });
  const before = await healthy(c, timeoutMs);
  await prepareTable(primary);

  const t0 = performance.now();
  const startedAt = Date.now();
  const now = () => performance.now() - t0;
  // Through the pooler a statement may wait out a pause: its own deadline is long enough to measure that wait.
  const writer = new Writer(endpoint, t0, { clients: s.clients ?? 1, ...(s.endpoint === 'pooler' ? { statementTimeoutMs: 15_000 } : {}) });
  writer.start();
  const ctx = { c, notes: {} as Record<string, unknown> };
  let fault = '';
  let injectAt = 0;
  let recoverAt = 0;
  let healthyAt = 0;
  let failure: string | undefined;
  try {
    await waitFor('the first acknowledged writes', async () => writer.result.acks.length > 0, { timeoutMs: 30_000, intervalMs: 50 });
    await new Promise((r) => setTimeout(r, opts.warmupMs ?? 3000));
    injectAt = now();
    report({ kind: 'step', step: s.name, status: 'start', detail: 'injecting' });
    fault = await s.inject(ctx);
    report({ kind: 'info', message: `  ${s.name}: ${fault}` });
    await s.hold(ctx);
    recoverAt = now();
    await s.recover(ctx);
    try {
      await healthy(c, timeoutMs);
      healthyAt = now();
      // Writes must flow again through the primary endpoint, and keep flowing a while.
      const acked = writer.result.acks.length;
      await waitFor('writes to resume', async () => writer.result.acks.length > acked, { timeoutMs: 60_000, intervalMs: 50 });
      await new Promise((r) => setTimeout(r, opts.settleMs ?? 2000));
    } catch (e) {
      // The cluster did not heal: that is the verdict, not a crash of the test tool.
      failure = `did not recover: ${e instanceof Error ? e.message : String(e)}`;
      healthyAt = now();
    }
  } finally {
    await writer.stop();
  }
  const endAt = now();

  let rows: StoredRow[] = [];
  let after: { timeline: number | null } = { timeline: null };
  if (!failure) {
    const client = new pg.Client({ connectionString: primary, connectionTimeoutMillis: 5000 });
    await client.connect();
    try {
      const res = await client.query<{ seq: string; node: string; ms: number }>(`SELECT seq, node, extract(epoch FROM ts) * 1000 AS ms FROM ${CHAOS_TABLE}`);
      rows = res.rows.map((r) => ({ seq: Number(r.seq), node: r.node, ts: Number(r.ms) }));
    } finally {
      await client.end();
    }
    // The timeline now, for the report; the cluster may already be degrading again (that shows in the next run).
    const leader = (await clusterView(c).catch(() => undefined))?.members.find((m) => m.role === 'leader');
    after = { timeline: leader?.timeline ?? null };
  }
  const judged: Verdict = failure ? unverified(writer.result.acks, injectAt, failure) : judge(writer.result.acks, rows, injectAt);
  const failedStatements = writer.result.errors.length;
  const verdict: Verdict =
    s.noFailedStatements && failedStatements && judged.ok
      ? { ...judged, ok: false, failure: `${failedStatements} statements failed (first: ${writer.result.errors[0]!.message})` }
      : judged;
  if (failure) report({ kind: 'warn', message: `${s.name}: ${failure}` });
  const outcome = verdict.verified
    ? `${verdict.acknowledged} acknowledged, ${verdict.lost.length} lost, ${verdict.overlaps.length ? 'TWO PRIMARIES' : 'one primary at a time'}`
    : `${verdict.acknowledged} acknowledged, unverified: the cluster did not recover, so its rows could not be read`;
  const statements = `${failedStatements} failed statements, longest statement ${(writer.result.longestStatementMs / 1000).toFixed(2)} s`;
  report({
    kind: 'step',
    step: s.name,
    status: verdict.ok ? 'done' : 'fail',
    detail: `outage ${verdict.outageMs === null ? 'unbounded' : `${(verdict.outageMs / 1000).toFixed(2)} s`}, ${outcome}, ${statements}`,
  });
  return {
    scenario: s.name,
    fault,
    startedAt,
    injectAt,
    recoverAt,
    healthyAt,
    endAt,
    writer: writer.result,
    verdict,
    timelines: { before: before.timeline, after: after.timeline },
  };
}
