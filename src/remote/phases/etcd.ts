// Starts or restarts etcd where it owes it: a new cluster all at once (no member
// has a quorum alone), a running one a member at a time, healthy before the next.
// First, on systemd hosts, the distribution's own etcd unit is stopped and masked.

import { posix } from 'node:path';
import { DISTRO_ETCD_MASKED, DISTRO_ETCD_UNIT } from '../services.ts';
import { byRole, known, owesRestart, pool, startService, waitEtcdHealthy, type UpPhase } from '../context.ts';

export const etcd: UpPhase = {
  name: 'etcd',
  async run(ctx) {
    const { changes, concurrency, dryRun } = ctx;
    const members = byRole(ctx, 'etcd');
    // The distribution's etcd unit, where its package enabled it: stopped and masked before GardenOS's starts.
    const distro = members.filter((h) => known(h).facts.systemd && known(h).facts.distroEtcd !== null && known(h).facts.distroEtcd !== 'masked');
    await pool(distro, concurrency, (h) =>
      changes.do(h.node.name, 'etcd', `stop and mask ${DISTRO_ETCD_UNIT} (the package's own plain-HTTP etcd on localhost)`, () =>
        h.ssh.must(
          `masking ${DISTRO_ETCD_UNIT}`,
          `mkdir -p ${posix.dirname(DISTRO_ETCD_MASKED)} && touch ${DISTRO_ETCD_MASKED} && systemctl mask --now ${DISTRO_ETCD_UNIT}`,
        ),
      ),
    );
    const todo = members.filter((h) => owesRestart(h, 'etcd'));
    if (todo.length === 0) return 'every member running its current configuration';
    const formed = members.some((h) => known(h).facts.active.etcd);
    if (!formed) {
      await pool(todo, concurrency, (h) => changes.do(h.node.name, 'etcd', 'start etcd (new cluster)', () => startService(h, 'etcd', false)));
      if (!dryRun) await waitEtcdHealthy(ctx, 'new cluster');
      return `formed a ${members.length}-member cluster`;
    }
    for (const h of todo) {
      const running = known(h).facts.active.etcd;
      await changes.do(h.node.name, 'etcd', running ? 'restart etcd (configuration changed)' : 'start etcd', () => startService(h, 'etcd', running));
      if (!dryRun) await waitEtcdHealthy(ctx, `after ${h.node.name}`);
    }
    return `${todo.length} member${todo.length === 1 ? '' : 's'} (re)started one at a time`;
  },
};
