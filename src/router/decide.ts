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
  /** GET /primary answers 200: the member runs as primary and holds the leader lock. */
  isPrimary(member: DcsMember): Promise<boolean>;
  /** GET /replica?lag=N answers 200: a running replica within the lag bound. */
  isHealthyReplica(member: DcsMember, maxLagBytes: number): Promise<boolean>;
}

export interface Decision {
  route: Route;
  /** Why, in a sentence, for the log line. */
  reason: string;
  /** True when the primary route is empty because a condition may clear soon (re-check quickly). */
  unsettled: boolean;
}

export const NOWHERE: Route = { primary: null, replicas: [] };

const target = (m: DcsMember): RouteTarget => ({ name: m.name, host: m.host, port: m.port });

export function sameRoute(a: Route, b: Route): boolean {
  const key = (r: Route) => JSON.stringify([r.primary?.name ?? null, r.primary?.host ?? null, r.replicas.map((x) => `${x.name}@${x.host}`).sort()]);
  return key(a) === key(b);
}

export async function decide(snapshot: DcsSnapshot, probe: MemberProbe, maxLagBytes: number): Promise<Decision> {
  const leaderName = snapshot.leader;
  const leader = snapshot.members.find((m) => m.name === leaderName);
  const others = snapshot.members.filter((m) => m.name !== leaderName);
  // Probe everything at once: one slow member must not delay the others.
  const [leaderOk, replicaOks] = await Promise.all([
    leader ? probe.isPrimary(leader).catch(() => false) : Promise.resolve(false),
    Promise.all(others.map((m) => probe.isHealthyReplica(m, maxLagBytes).catch(() => false))),
  ]);
  const replicas = others.filter((_, i) => replicaOks[i]).map(target);
  const replicaNote = `${replicas.length} replica${replicas.length === 1 ? '' : 's'} within ${maxLagBytes} bytes of lag`;

  if (leaderName === null) {
    return { route: { primary: null, replicas }, reason: `no leader key in etcd: routing writes nowhere; ${replicaNote}`, unsettled: true };
  }
  if (!leader) {
    return { route: { primary: null, replicas }, reason: `leader ${leaderName} has no member key: routing writes nowhere; ${replicaNote}`, unsettled: true };
  }
  if (!leaderOk) {
    return { route: { primary: null, replicas }, reason: `leader ${leaderName} does not confirm on /primary: routing writes nowhere; ${replicaNote}`, unsettled: true };
  }
  return { route: { primary: target(leader), replicas }, reason: `leader ${leaderName} holds the lock and confirms on /primary; ${replicaNote}`, unsettled: false };
}
