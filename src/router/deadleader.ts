// A dead leader replaced in seconds, not a ttl. Patroni keeps a crashed
// leader's lock until its lease runs out (ttl, 20 s at least), because from
// inside Patroni a dead leader and an unreachable one look the same. From
// outside they differ: a dead leader's host still answers, and answers "no" —
// its kernel refuses connections to both Patroni's REST port and PostgreSQL's
// port — while the other members' PostgreSQL have lost their replication
// stream from it. A frozen leader accepts connections (the kernel completes
// the handshake for a stopped process) and a partitioned one does not answer
// at all: both are ambiguous and wait for the ttl as before.
//
// Only when every round over `confirmMs` says dead does the router end the
// lock, in one etcd transaction conditional on the leader key's value and mod
// revision as observed (a renewal since makes it a no-op). Patroni then elects
// as it would after the ttl: in synchronous mode only the synchronous standby
// may take over, so nothing acknowledged is lost; an old leader that was in
// fact alive re-creates its key or, if another member took it first, demotes.
import { connect } from 'node:net';
import type { DcsMember, DcsSnapshot } from './dcs.ts';

export type PortState = 'open' | 'refused' | 'timeout' | 'unreachable';

/** How a failed connection ended, from the error (or its causes): refused, out of time, or anything else. */
export function failedPortState(e: unknown): PortState {
  for (let x: unknown = e; x instanceof Error; x = x.cause) {
    const code = (x as NodeJS.ErrnoException).code;
    if (code === 'ECONNREFUSED') return 'refused';
    if (code === 'ETIMEDOUT' || /no answer within/.test(x.message)) return 'timeout';
  }
  return 'unreachable';
}

/** What a member's own Patroni says about itself (GET /patroni). */
export interface MemberReplication {
  role: string;
  /** pg_stat_wal_receiver's word through Patroni: 'streaming', another state, or null when it reports none. */
  replicationState: string | null;
}

export interface LeaderObserver {
  /** The member's Patroni REST port: open (any HTTP answer), refused (the host's kernel answered with a reset), or no answer. */
  api(member: DcsMember): Promise<PortState>;
  /** A bare TCP connect to PostgreSQL's port, classified the same way. */
  postgres(host: string, port: number): Promise<PortState>;
  /** The member's own view, or undefined when its REST API does not answer. */
  replication(member: DcsMember): Promise<MemberReplication | undefined>;
}

export interface Round {
  apiPort: PortState;
  postgresPort: PortState;
  members: readonly { name: string; view: MemberReplication | undefined }[];
}

export interface RoundVerdict {
  dead: boolean;
  /** Why, in a sentence. */
  reason: string;
}

const PRIMARY_ROLES = new Set(['primary', 'master', 'standby_leader']);

/** The judgement of one round, as pure logic: dead only when the host refuses both ports and the other members confirm. */
export function judgeRound(leader: string, round: Round): RoundVerdict {
  if (round.apiPort !== 'refused') return { dead: false, reason: `${leader}'s Patroni API port: ${round.apiPort}` };
  if (round.postgresPort !== 'refused') return { dead: false, reason: `${leader}'s PostgreSQL port: ${round.postgresPort}` };
  const answered = round.members.filter((m) => m.view !== undefined);
  const streaming = answered.find((m) => m.view!.replicationState === 'streaming');
  if (streaming) return { dead: false, reason: `${streaming.name} still streams WAL` };
  const primary = answered.find((m) => PRIMARY_ROLES.has(m.view!.role));
  if (primary) return { dead: false, reason: `${primary.name} reports itself ${primary.view!.role}` };
  if (answered.length === 0) return { dead: false, reason: 'no other member answers to confirm' };
  return {
    dead: true,
    reason: `${leader} refuses connections on both its Patroni and PostgreSQL ports and ${answered.map((m) => m.name).join(', ')} lost replication from it`,
  };
}

/**
 * One TCP connect attempt, classified; the socket is closed at once. For PostgreSQL's port only (≥ 13 does
 * not log an empty connection); Patroni logs a traceback for a TLS port closed before its handshake.
 */
export function tcpPortState(host: string, port: number, timeoutMs: number): Promise<PortState> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (state: PortState) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(state);
    };
    const timer = setTimeout(() => done('timeout'), timeoutMs);
    socket.once('connect', () => done('open'));
    socket.once('error', (e) => done(failedPortState(e)));
  });
}

export interface DeadLeaderOptions {
  observer: LeaderObserver;
  /** Ends the lock if it is unchanged since `revision`; resolves whether it did. */
  release(leader: string, revision: string): Promise<boolean>;
  /** Every round must say dead for this long (and at least two rounds) before the lock is ended. */
  confirmMs: number;
  /** Time between rounds while a leader is suspect. */
  intervalMs: number;
  /** Called with a sentence whenever the watch acts or gives up (one log line each). */
  report(event: { released: boolean; leader: string; reason: string }): void;
  now?: () => number;
}

interface Suspicion {
  leader: string;
  revision: string;
  since: number;
  rounds: number;
}

/**
 * Watches a leader that does not confirm on /primary. `consider` is cheap and never blocks the router's
 * cycle: a round runs in the background, one at a time, and another is started by a later cycle.
 */
export class DeadLeaderWatch {
  private readonly o: DeadLeaderOptions;
  private readonly now: () => number;
  private suspicion: Suspicion | undefined;
  private running: Promise<void> | undefined;
  private lastRoundAt = -Infinity;
  /** leader@revision already acted on: never twice for the same lock. */
  private readonly handled = new Set<string>();

  constructor(o: DeadLeaderOptions) {
    this.o = o;
    this.now = o.now ?? (() => performance.now());
  }

  /** The leader confirmed, or there is none: forget any suspicion. */
  clear(): void {
    this.suspicion = undefined;
  }

  /** The leader named in `snapshot` does not confirm: look at it (in the background), at most once per interval. */
  consider(snapshot: DcsSnapshot): void {
    if (this.running || this.now() - this.lastRoundAt < this.o.intervalMs) return;
    this.running = this.round(snapshot).finally(() => {
      this.running = undefined;
    });
  }

  /** The round in flight, if any (tests and shutdown wait for it). */
  settled(): Promise<void> {
    return this.running ?? Promise.resolve();
  }

  private async round(snapshot: DcsSnapshot): Promise<void> {
    this.lastRoundAt = this.now();
    const leaderName = snapshot.leader;
    const leader = snapshot.members.find((m) => m.name === leaderName);
    const revision = snapshot.leaderRevision;
    if (!leaderName || !leader || !revision || this.handled.has(`${leaderName}@${revision}`)) {
      this.clear();
      return;
    }
    if (this.suspicion && (this.suspicion.leader !== leaderName || this.suspicion.revision !== revision)) this.clear();
    const others = snapshot.members.filter((m) => m.name !== leaderName);
    const [apiPort, postgresPort, views] = await Promise.all([
      this.o.observer.api(leader),
      this.o.observer.postgres(leader.host, leader.port),
      Promise.all(others.map((m) => this.o.observer.replication(m).catch(() => undefined))),
    ]);
    const verdict = judgeRound(leaderName, { apiPort, postgresPort, members: others.map((m, i) => ({ name: m.name, view: views[i] })) });
    if (!verdict.dead) {
      this.clear();
      return;
    }
    this.suspicion ??= { leader: leaderName, revision, since: this.lastRoundAt, rounds: 0 };
    const s = this.suspicion;
    s.rounds++;
    if (s.rounds < 2 || this.now() - s.since < this.o.confirmMs) return;
    this.handled.add(`${leaderName}@${revision}`);
    this.clear();
    const released = await this.o.release(leaderName, revision).catch(() => false);
    this.o.report({
      released,
      leader: leaderName,
      reason: released
        ? `${verdict.reason} for ${((this.now() - s.since) / 1000).toFixed(1)} s: ended its leader lock (revision ${revision}) so the synchronous standby takes over now`
        : `${verdict.reason}, but its leader lock changed since revision ${revision} (or etcd refused): left to Patroni`,
    });
  }
}
