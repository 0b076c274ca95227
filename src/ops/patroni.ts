// Database operations through Patroni's REST API, as patronictl does them:
// switchover, failover, restart and reinitialise, each followed by a wait for
// the result the operation promised. The caller asks for confirmation first.
import { memberRunning, PatroniClient, type PatroniClusterView, type PatroniMemberView } from '../clients/patroni.ts';
import { describe, GardenError } from '../errors.ts';
import { waitFor } from '../util/wait.ts';

/** How to reach a Patroni cluster: every member's REST URL, the CA, and the REST credentials. */
export interface PatroniAccess {
  scope: string;
  members: { name: string; apiUrl: string }[];
  caFile: string;
  auth: { username: string; password: string };
}

export interface OperationResult {
  operation: 'switchover' | 'failover' | 'restart' | 'reinit';
  member: string;
  before: { leader: string | null };
  after: { leader: string | null; members: PatroniMemberView[] };
  durationMs: number;
  message: string;
}

function client(access: PatroniAccess, name: string, timeoutMs: number): PatroniClient {
  const m = access.members.find((x) => x.name === name);
  if (!m)
    throw new GardenError('STATE_CONFLICT', `no member called "${name}" in cluster ${access.scope}`, {
      hint: `one of: ${access.members.map((x) => x.name).join(', ')}`,
    });
  return new PatroniClient(m.apiUrl, { caFile: access.caFile, auth: access.auth, timeoutMs });
}

/**
 * Access to a cluster whose member names are not known in advance (a StatefulSet's pods are named
 * <scope>-N, not after the nodes): the view from the first seed URL that answers, its members with
 * the REST API address each one advertises.
 */
export async function discoverAccess(seed: Omit<PatroniAccess, 'members'> & { seeds: string[] }, timeoutMs = 2000): Promise<PatroniAccess> {
  const view = await clusterView({ ...seed, members: seed.seeds.map((apiUrl) => ({ name: apiUrl, apiUrl })) }, timeoutMs);
  const members = view.members.filter((m) => m.api_url).map((m) => ({ name: m.name, apiUrl: new URL(m.api_url!).origin }));
  return { scope: seed.scope, caFile: seed.caFile, auth: seed.auth, members };
}

/** The cluster view from the first member that answers. */
export async function clusterView(access: PatroniAccess, timeoutMs = 2000): Promise<PatroniClusterView> {
  const errors: string[] = [];
  for (const m of access.members) {
    try {
      return await client(access, m.name, timeoutMs).cluster();
    } catch (e) {
      errors.push(`${m.name}: ${(e as Error).message}`);
    }
  }
  throw new GardenError('BACKEND_UNAVAILABLE', `no Patroni member of ${access.scope} answers`, {
    details: errors,
    hint: 'is the cluster up? `gardenos status` (`gardenos local status` for the local cluster)',
  });
}

const leaderOf = (v: PatroniClusterView) => v.members.find((m) => m.role === 'leader')?.name ?? null;

/** Refuses an operation Patroni would refuse, with the reason in words rather than an HTTP status. */
export async function planSwitchover(
  access: PatroniAccess,
  kind: 'switchover' | 'failover',
  candidate?: string,
): Promise<{ leader: string | null; candidate: string | undefined }> {
  const view = await clusterView(access);
  const leader = leaderOf(view);
  if (kind === 'switchover' && !leader) {
    throw new GardenError('STATE_CONFLICT', `cluster ${access.scope} has no leader to switch over from`, {
      hint: 'a failover names the member to promote: `db failover --to MEMBER`',
    });
  }
  if (kind === 'failover' && !candidate) throw new GardenError('STATE_CONFLICT', 'a failover needs the member to promote: --to MEMBER');
  if (candidate) {
    const m = view.members.find((x) => x.name === candidate);
    if (!m)
      throw new GardenError('STATE_CONFLICT', `no member called "${candidate}" in cluster ${access.scope}`, {
        hint: `one of: ${view.members.map((x) => x.name).join(', ')}`,
      });
    if (candidate === leader) throw new GardenError('STATE_CONFLICT', `${candidate} is already the leader`);
    if (!memberRunning(m)) throw new GardenError('STATE_CONFLICT', `${candidate} is ${m.state}, not running: it cannot take over`);
  } else if (!view.members.some((m) => m.name !== leader && memberRunning(m) && m.tags?.nofailover !== true)) {
    throw new GardenError('STATE_CONFLICT', `cluster ${access.scope} has no running replica to take over from ${leader}`);
  }
  return { leader, candidate };
}

/** Switchover (planned, from a healthy leader) or failover (to a named member, leader or not). */
export async function switchover(
  access: PatroniAccess,
  kind: 'switchover' | 'failover',
  candidate: string | undefined,
  timeoutMs: number,
): Promise<OperationResult> {
  const started = Date.now();
  const plan = await planSwitchover(access, kind, candidate);
  // Sent to the leader when there is one (it demotes itself), else to the candidate.
  const target = plan.leader ?? plan.candidate!;
  const body = kind === 'switchover' ? { leader: plan.leader, ...(candidate ? { candidate } : {}) } : { candidate };
  // Patroni answers the POST only after polling its own result once a second, so the answer lags the new
  // leader by up to a second: watch /cluster meanwhile and return as soon as the new leader runs. A refusal
  // (or no answer) ends the wait at once.
  let answer: string | undefined;
  let refused: GardenError | undefined;
  void client(access, target, timeoutMs)
    .call('POST', `/${kind}`, body)
    .then(
      (res) => {
        answer = res.body.trim();
        if (res.status !== 200 && res.status !== 202)
          refused = new GardenError('STATE_CONFLICT', `Patroni refused the ${kind}: ${answer || `HTTP ${res.status}`}`);
      },
      (e: unknown) => {
        refused = e instanceof GardenError ? e : new GardenError('BACKEND_UNAVAILABLE', describe(e));
      },
    );
  const view = await waitFor(
    `a new leader ${candidate ? `(${candidate}) ` : ''}running`,
    async () => {
      if (refused) throw refused;
      const v = await clusterView(access);
      const now = v.members.find((m) => m.role === 'leader');
      return now && now.name !== plan.leader && (!candidate || now.name === candidate) && memberRunning(now) ? v : undefined;
    },
    { timeoutMs, intervalMs: 25, isFatal: (e) => e === refused },
  );
  const leader = leaderOf(view);
  return {
    operation: kind,
    member: leader!,
    before: { leader: plan.leader },
    after: { leader, members: view.members },
    durationMs: Date.now() - started,
    message: answer ?? `${leader} runs as the new leader (Patroni's own answer still pending)`,
  };
}

/** Restarts one member's PostgreSQL through its own Patroni (the leader keeps its role). */
export async function restartMember(access: PatroniAccess, member: string, timeoutMs: number): Promise<OperationResult> {
  const started = Date.now();
  const before = await clusterView(access);
  const res = await client(access, member, timeoutMs).call('POST', '/restart', {});
  if (res.status !== 200) throw new GardenError('STATE_CONFLICT', `Patroni on ${member} refused the restart: ${res.body.trim() || `HTTP ${res.status}`}`);
  const view = await waitFor(
    `${member} running again`,
    async () => {
      const v = await clusterView(access);
      return memberRunning(v.members.find((m) => m.name === member)) ? v : undefined;
    },
    { timeoutMs, intervalMs: 200 },
  );
  return {
    operation: 'restart',
    member,
    before: { leader: leaderOf(before) },
    after: { leader: leaderOf(view), members: view.members },
    durationMs: Date.now() - started,
    message: res.body.trim(),
  };
}

/** Wipes a replica's data directory and copies it again from the leader. Never on the leader. */
export async function reinitMember(access: PatroniAccess, member: string, timeoutMs: number): Promise<OperationResult> {
  const started = Date.now();
  const before = await clusterView(access);
  const leader = leaderOf(before);
  if (member === leader) throw new GardenError('STATE_CONFLICT', `${member} is the leader; reinitialise a replica (switch over first if you must)`);
  if (!before.members.some((m) => m.name === member)) throw new GardenError('STATE_CONFLICT', `no member called "${member}" in cluster ${access.scope}`);
  const api = client(access, member, timeoutMs);
  // A new data directory means a new postmaster: its start time tells the reinitialised member from the old one.
  const startedBefore = (await api.self()).postmaster_start_time;
  const res = await api.call('POST', '/reinitialize', { force: true });
  if (res.status !== 200) throw new GardenError('STATE_CONFLICT', `Patroni on ${member} refused to reinitialise: ${res.body.trim() || `HTTP ${res.status}`}`);
  const view = await waitFor(
    `${member} streaming from the leader again`,
    async () => {
      const self = await api.self();
      if (self.postmaster_start_time === startedBefore || !memberRunning(self)) return undefined;
      const v = await clusterView(access);
      const m = v.members.find((x) => x.name === member);
      return m && m.role !== 'leader' && memberRunning(m) && typeof m.lag === 'number' ? v : undefined;
    },
    { timeoutMs, intervalMs: 250 },
  );
  return {
    operation: 'reinit',
    member,
    before: { leader },
    after: { leader: leaderOf(view), members: view.members },
    durationMs: Date.now() - started,
    message: res.body.trim(),
  };
}
