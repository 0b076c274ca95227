// The members' own word, through Patroni's REST API: /primary answers 200 only
// on the member that runs as primary and holds the leader lock. A replica that
// cannot answer its health check quickly is left out of the read route for that
// cycle: a cycle must not wait a whole timeout on a member that is restarting.
import { PatroniClient } from '../clients/patroni.ts';
import type { DcsMember } from './dcs.ts';
import type { MemberProbe } from './decide.ts';

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
