// The faults: each finds its target in the running cluster, injects, and
// later undoes what it did. Targets are chosen when the fault is injected
// (the leader of that moment), never assumed.
import { readdir, readFile } from 'node:fs/promises';
import { memberRunning, PatroniClient } from '../clients/patroni.ts';
import { GardenError } from '../errors.ts';
import { silent } from '../log/events.ts';
import { patroniAccess, patroniUrl, postmasterPid, type LocalCluster } from '../local/cluster.ts';
import { localDown } from '../local/down.ts';
import { readSecrets } from '../local/state.ts';
import { setMemberLink } from '../local/netns.ts';
import { localUp } from '../local/up.ts';
import { waitFor } from '../util/wait.ts';

export interface ChaosContext {
  c: LocalCluster;
  /** Free-form notes the scenario leaves for its recovery step. */
  notes: Record<string, unknown>;
}

export interface Scenario {
  name: string;
  description: string;
  /** Injects the fault; returns what it did, in a sentence. */
  inject(ctx: ChaosContext): Promise<string>;
  /** Keeps the fault in place until recovery may start (a time, or a condition such as a new leader). */
  hold(ctx: ChaosContext): Promise<void>;
  /** Undoes the fault (restarts what was killed, resumes what was stopped). */
  recover(ctx: ChaosContext): Promise<void>;
  /** Where the writers write: HAProxy's primary port (default), or the pooler in front of it. */
  endpoint?: 'primary' | 'pooler';
  /** Concurrent writer clients, one connection each (default 1). */
  clients?: number;
  /** A run fails when any statement fails, not only when a write is lost (the pooled switchover's promise). */
  noFailedStatements?: boolean;
}

export async function clusterView(c: LocalCluster) {
  for (const m of c.topology.postgres) {
    const v = await new PatroniClient(patroniUrl(c, m.address), { caFile: c.layout.ca.cert, timeoutMs: 1000 }).cluster().catch(() => undefined);
    if (v) return v;
  }
  throw new GardenError('BACKEND_UNAVAILABLE', 'no Patroni member answers');
}

async function roleHolder(c: LocalCluster, role: 'leader' | 'sync_standby'): Promise<string> {
  const m = (await clusterView(c)).members.find((x) => x.role === role && memberRunning(x));
  if (!m) throw new GardenError('STATE_CONFLICT', `no running ${role} to inject a fault into`);
  return m.name;
}

/** The postmaster and every process it started (backends, walsender, checkpointer …). */
async function postgresTree(c: LocalCluster, member: string): Promise<number[]> {
  const root = await postmasterPid(c, member);
  if (root === undefined) return [];
  const children: number[] = [];
  for (const e of await readdir('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const stat = await readFile(`/proc/${e}/stat`, 'utf8').catch(() => '');
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid === root) children.push(Number(e));
  }
  return [root, ...children];
}

async function memberPids(c: LocalCluster, member: string): Promise<number[]> {
  const patroni = await c.supervisor.pid(c.specs.patroni.find((s) => s.id === `patroni-${member}`)!);
  return [...(patroni === undefined ? [] : [patroni]), ...(await postgresTree(c, member))];
}

function signal(pids: readonly number[], sig: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, sig);
    } catch {
      // already gone
    }
  }
}

const restart = async (ctx: ChaosContext) => {
  await localUp(ctx.c, silent);
};

const pause = (ms: (ctx: ChaosContext) => number) => (ctx: ChaosContext) => new Promise<void>((r) => setTimeout(r, ms(ctx)));

/** Until another member than the one hit holds the leader lock: the failover itself, not a restart, must heal it. */
const newLeader = async (ctx: ChaosContext) => {
  await waitFor(
    'another member to take the leader lock',
    async () => {
      const leader = (await clusterView(ctx.c)).members.find((m) => m.role === 'leader' && memberRunning(m));
      return leader !== undefined && leader.name !== ctx.notes.victim;
    },
    { timeoutMs: (ctx.c.config.postgres.ttl * 3 + 30) * 1000, intervalMs: 100 },
  );
};

const killMember = (role: 'leader' | 'sync_standby') => async (ctx: ChaosContext) => {
  const member = await roleHolder(ctx.c, role);
  ctx.notes.victim = member;
  signal(await memberPids(ctx.c, member), 'SIGKILL');
  return `SIGKILL to ${member}'s Patroni and PostgreSQL (the ${role === 'leader' ? 'primary' : 'synchronous standby'})`;
};

const killEtcd = (count: number) => async (ctx: ChaosContext) => {
  const victims = ctx.c.specs.etcd.slice(0, count);
  for (const spec of victims) {
    const pid = await ctx.c.supervisor.pid(spec);
    if (pid !== undefined) signal([pid], 'SIGKILL');
  }
  return `SIGKILL to ${victims.map((v) => v.id).join(' and ')}`;
};

export const SCENARIOS: readonly Scenario[] = [
  {
    name: 'switchover',
    description: 'planned switchover to the synchronous standby through Patroni',
    async inject({ c }) {
      const secrets = await readSecrets(c.layout);
      return waitFor(
        'Patroni to accept the switchover',
        async () => {
          const view = await clusterView(c);
          const leader = view.members.find((m) => m.role === 'leader')!.name;
          const candidate = view.members.find((m) => m.role === 'sync_standby')?.name;
          if (!candidate) return undefined;
          const address = c.topology.postgres.find((m) => m.name === leader)!.address;
          const api = new PatroniClient(patroniUrl(c, address), {
            caFile: c.layout.ca.cert,
            timeoutMs: 60_000,
            auth: { username: 'patroni', password: secrets!.restApiPassword },
          });
          const res = await api.call('POST', '/switchover', { leader, candidate });
          if (res.status !== 200) throw new Error(`${res.status} ${res.body}`);
          return `switchover ${leader} → ${candidate}`;
        },
        { timeoutMs: 60_000, intervalMs: 500 },
      );
    },
    hold: async () => {},
    recover: async () => {},
  },
  {
    name: 'pooled-switchover',
    description: 'a planned switchover behind the pooler (PAUSE, switchover, route moved, RESUME), ten clients writing through it: no statement may fail',
    endpoint: 'pooler',
    clients: 10,
    noFailedStatements: true,
    async inject(ctx) {
      const { pausedSwitchover } = await import('../local/pooler.ts');
      const access = await patroniAccess(ctx.c);
      const r = await pausedSwitchover(ctx.c, access, undefined, 60_000);
      return `switchover ${r.before.leader} → ${r.after.leader} behind the paused pooler (paused ${(r.pausedMs / 1000).toFixed(2)} s)`;
    },
    hold: async () => {},
    recover: async () => {},
  },
  {
    name: 'primary-crash',
    description: "the leader's Patroni and PostgreSQL killed with SIGKILL",
    inject: killMember('leader'),
    hold: newLeader,
    recover: restart,
  },
  {
    name: 'primary-crash-restart',
    description:
      "the leader's Patroni and PostgreSQL killed with SIGKILL, then its Patroni started again 0.3–2.5 s later, as systemd's Restart= would: inside or after the router's dead-leader window",
    async inject(ctx) {
      const sentence = await killMember('leader')(ctx);
      const delayMs = Math.round(300 + Math.random() * 2200);
      const spec = ctx.c.specs.patroni.find((s) => s.id === `patroni-${ctx.notes.victim}`)!;
      ctx.notes.restarted = new Promise<void>((resolve, reject) => {
        setTimeout(() => ctx.c.supervisor.start(spec).then(() => resolve(), reject), delayMs);
      });
      return `${sentence}; its Patroni started again after ${(delayMs / 1000).toFixed(1)} s`;
    },
    async hold(ctx) {
      await (ctx.notes.restarted as Promise<void>);
      // Whoever wins — the restarted member taking its lock back, or the standby — one leader must run again.
      await waitFor('a running leader', async () => (await clusterView(ctx.c)).members.some((m) => m.role === 'leader' && memberRunning(m)), {
        timeoutMs: (ctx.c.config.postgres.ttl * 3 + 30) * 1000,
        intervalMs: 100,
      });
    },
    recover: restart,
  },
  {
    name: 'primary-freeze',
    description: "the leader's Patroni and PostgreSQL stopped (SIGSTOP) past the leader lock's ttl, then resumed",
    async inject(ctx) {
      const member = await roleHolder(ctx.c, 'leader');
      const pids = await memberPids(ctx.c, member);
      ctx.notes.frozen = pids;
      ctx.notes.victim = member;
      signal(pids, 'SIGSTOP');
      return `SIGSTOP to ${member}'s Patroni and PostgreSQL (${pids.length} processes)`;
    },
    // Past the ttl a new leader is elected; resuming the old one then must not bring back a second primary.
    async hold(ctx) {
      await newLeader(ctx);
      await pause(() => 2000)(ctx);
    },
    async recover(ctx) {
      signal(ctx.notes.frozen as number[], 'SIGCONT');
    },
  },
  {
    name: 'primary-partition',
    description: "the leader's node loses all its links (isolated mode: `local up --isolated`), then gets them back",
    async inject(ctx) {
      const net = ctx.c.network;
      if (!net)
        throw new GardenError('STATE_CONFLICT', 'a partition needs members in their own network namespaces', {
          hint: 'start the cluster with `gardenos local up --isolated` (root)',
        });
      const member = await roleHolder(ctx.c, 'leader');
      ctx.notes.victim = member;
      await setMemberLink(net, member, false);
      return `${member} (the primary) cut off from every other node and from HAProxy`;
    },
    async hold(ctx) {
      await newLeader(ctx);
      await pause(() => 2000)(ctx);
    },
    async recover(ctx) {
      await setMemberLink(ctx.c.network!, ctx.notes.victim as string, true);
    },
  },
  {
    name: 'replica-crash',
    description: "the synchronous standby's Patroni and PostgreSQL killed with SIGKILL",
    inject: killMember('sync_standby'),
    hold: pause(() => 3000),
    recover: restart,
  },
  {
    name: 'etcd-member-loss',
    description: 'one etcd member killed with SIGKILL',
    inject: killEtcd(1),
    hold: pause(() => 5000),
    recover: restart,
  },
  {
    name: 'etcd-quorum-loss',
    description: 'two of three etcd members killed: writes must stop, no second primary may appear',
    inject: killEtcd(2),
    hold: pause(({ c }) => (c.config.postgres.ttl + 3) * 1000),
    recover: restart,
  },
  {
    name: 'cluster-restart',
    description: 'the whole cluster stopped and started again',
    async inject({ c }) {
      await localDown(c, silent);
      return 'gardenos local down';
    },
    hold: async () => {},
    recover: restart,
  },
];

export function scenario(name: string): Scenario {
  const s = SCENARIOS.find((x) => x.name === name);
  if (!s) throw new GardenError('CONFIG_INVALID', `no scenario "${name}"`, { hint: `one of: ${SCENARIOS.map((x) => x.name).join(', ')}` });
  return s;
}
