// The members' own word, through Patroni's REST API: /primary answers 200 only
// on the member that runs as primary and holds the leader lock.
import { PatroniClient } from '../clients/patroni.ts';
import type { DcsMember } from './dcs.ts';
import type { MemberProbe } from './decide.ts';

export function patroniProbe(caFile: string, timeoutMs = 1000): MemberProbe {
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
    isPrimary: (m) => client(m).check('/primary'),
    isHealthyReplica: (m, maxLag) => client(m).check(`/replica?lag=${maxLag}`),
  };
}
