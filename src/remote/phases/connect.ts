// Connects to every host over SSH (a few at once), reporting each.
import { describe } from '../../errors.ts';
import { pool, type UpPhase } from '../context.ts';

export const connect: UpPhase = {
  name: 'connect',
  async run({ hosts, concurrency, report }) {
    await pool(hosts, concurrency, async (h) => {
      report({ kind: 'step', step: 'connect', member: h.node.name, status: 'start' });
      try {
        await h.ssh.connect();
      } catch (e) {
        report({ kind: 'step', step: 'connect', member: h.node.name, status: 'fail', detail: describe(e) });
        throw e;
      }
      report({ kind: 'step', step: 'connect', member: h.node.name, status: 'done', detail: `${h.node.ssh.user}@${h.node.address.private}` });
    });
    return `${hosts.length} hosts`;
  },
};
