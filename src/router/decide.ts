// The routing decision, as pure logic over a DCS snapshot and the members'
// own answers: route writes only to a leader that holds the lock in etcd AND
// answers 200 on /primary; otherwise to nobody. Never to two members.
import type { DcsMember, DcsSnapshot } from './dcs.ts';

export interface RouteTarget {
  name: string;
  host: string;
  port: number;
}

export interface Route {
  primary: RouteTarget | null;
  replicas: RouteTarget[];
}

export interface MemberProbe {
  /** GET /primary: the member's current timeline when it runs as primary and holds the leader lock, else null. */
  primaryTimeline(member: DcsMember): Promise<number | null>;
  /** GET /replica?lag=N answers 200: a running replica within the lag bound. */
  isHealthyReplica(member: DcsMember, maxLagBytes: number): Promise<boolean>;
}

export interface PrimaryDecision {
  primary: RouteTarget | null;
  /** Why, in a sentence, for the log line. */
  reason: string;
  /** True when the primary route is empty because a condition may clear soon (re-check quickly). */
  unsettled: boolean;
}

export const NOWHERE: Route = { primary: null, replicas: [] };

const target = (m: DcsMember): RouteTarget => ({ name: m.name, host: m.host, port: m.port });

export function sameTarget(a: RouteTarget | null, b: RouteTarget | null): boolean {
  return a?.name === b?.name && a?.host === b?.host && a?.port === b?.port;
}

export function sameRoute(a: Route, b: Route): boolean {
  const names = (r: Route) =>
    r.replicas
      .map((x) => `${x.name}@${x.host}:${x.port}`)
      .sort()
      .join(',');
  return sameTarget(a.primary, b.primary) && names(a) === names(b);
}

/** Where writes go. Asks only the leader, so a slow or restarting former leader cannot delay the move. */
export async function decidePrimary(snapshot: DcsSnapshot, probe: MemberProbe): Promise<PrimaryDecision> {
  const leaderName = snapshot.leader;
  if (leaderName === null) return { primary: null, reason: 'no leader key in etcd: routing writes nowhere', unsettled: true };
  const leader = snapshot.members.find((m) => m.name === leaderName);
  if (!leader) return { primary: null, reason: `leader ${leaderName} has no member key: routing writes nowhere`, unsettled: true };
  const timeline = await probe.primaryTimeline(leader).catch(() => null);
  if (timeline === null) {
    return { primary: null, reason: `leader ${leaderName} does not confirm on /primary: routing writes nowhere`, unsettled: true };
  }
  // A lock holder behind another member's timeline is a resumed old primary that took the lock back
  // (Patroni < 3.0.3 could overwrite a newer leader key after a freeze): writes there would diverge.
  // The leader's timeline comes from its own API, so a promotion it just made counts at once.
  const ahead = snapshot.members.find((m) => m.name !== leaderName && m.timeline !== undefined && m.timeline > timeline);
  if (ahead) {
    return {
      primary: null,
      reason: `leader ${leaderName} is on timeline ${timeline} but ${ahead.name} reached timeline ${ahead.timeline}: a stale primary holds the lock, routing writes nowhere`,
      unsettled: true,
    };
  }
  return { primary: target(leader), reason: `leader ${leaderName} holds the lock and confirms on /primary`, unsettled: false };
}

/** Where reads go: every member but the lock holder that answers /replica within the lag bound. */
export async function decideReplicas(snapshot: DcsSnapshot, probe: MemberProbe, maxLagBytes: number): Promise<RouteTarget[]> {
  const others = snapshot.members.filter((m) => m.name !== snapshot.leader);
  const ok = await Promise.all(others.map((m) => probe.isHealthyReplica(m, maxLagBytes).catch(() => false)));
  return others.filter((_, i) => ok[i]).map(target);
}

export function replicaNote(replicas: readonly RouteTarget[], maxLagBytes: number): string {
  return `${replicas.length} replica${replicas.length === 1 ? '' : 's'} within ${maxLagBytes} bytes of lag`;
}
