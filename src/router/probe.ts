// The members' own word, through Patroni's REST API: /primary answers 200 only
// on the member that runs as primary and holds the leader lock. A replica that
// cannot answer its health check quickly is left out of the read route for that
// cycle: a cycle must not wait a whole timeout on a member that is restarting.
import { PatroniClient } from '../clients/patroni.ts';
import type { DcsMember } from './dcs.ts';
import type { MemberProbe } from './decide.ts';
import { failedPortState, type LeaderObserver, tcpPortState } from './deadleader.ts';

export function patroniProbe(caFile: string, timeoutMs = 1000, replicaTimeoutMs = 250): MemberProbe {
  const clients = new Map<string, PatroniClient>();
  const client = (m: DcsMember, ms: number) => {
    const key = `${m.apiUrl} ${ms}`;
    let c = clients.get(key);
    if (!c) {
      c = new PatroniClient(m.apiUrl, { caFile, timeoutMs: ms });
      clients.set(key, c);
    }
    return c;
  };
  return {
    async primaryTimeline(m) {
      const res = await client(m, timeoutMs).call('GET', '/primary');
      if (res.status !== 200) return null;
      const timeline = (JSON.parse(res.body) as { timeline?: number }).timeline;
      return typeof timeline === 'number' ? timeline : null;
    },
    isHealthyReplica: (m, maxLag) => client(m, replicaTimeoutMs).check(`/replica?lag=${maxLag}`),
  };
}

/** The dead-leader watch's eyes: TCP connects to the leader's ports, and each other member's own word on its replication. */
export function patroniObserver(caFile: string, timeoutMs = 500): LeaderObserver {
  const clients = new Map<string, PatroniClient>();
  const client = (m: DcsMember) => {
    let c = clients.get(m.apiUrl);
    if (!c) {
      c = new PatroniClient(m.apiUrl, { caFile, timeoutMs });
      clients.set(m.apiUrl, c);
    }
    return c;
  };
  return {
    // A whole HTTPS request, not a bare connect: any answer at all (even 503) means the API is there.
    api: (m) =>
      client(m)
        .call('GET', '/liveness')
        .then(
          () => 'open' as const,
          (e: unknown) => failedPortState(e),
        ),
    postgres: (host, port) => tcpPortState(host, port, timeoutMs),
    async replication(m) {
      const res = await client(m)
        .call('GET', '/patroni')
        .catch(() => undefined);
      if (!res) return undefined;
      try {
        const body = JSON.parse(res.body) as { role?: unknown; replication_state?: unknown };
        return {
          role: typeof body.role === 'string' ? body.role : 'unknown',
          replicationState: typeof body.replication_state === 'string' ? body.replication_state : null,
        };
      } catch {
        return undefined;
      }
    },
  };
}
