// Refuses to change anything on hosts that are not ready: clocks, packages and
// their versions, disk, and ports taken by something else.
import { etcdServesKubernetes, KUBERNETES_VERSION, MIN_ETCD } from '../../config/version.ts';
import { posix } from 'node:path';
import { GardenError } from '../../errors.ts';
import { hostPort } from '../../render/topology.ts';
import type { ServiceName } from '../services.ts';
import { byRole, known, type UpPhase } from '../context.ts';

export const validate: UpPhase = {
  name: 'validate',
  async run(ctx) {
    const { hosts, config } = ctx;
    const problems: string[] = [];
    for (const h of hosts) {
      const { facts: f } = known(h);
      const n = h.node.name;
      if (f.clockSkewS > 2)
        problems.push(
          `${n}: clock is ${f.clockSkewS.toFixed(1)}s off this machine's; etcd and TLS need synchronised clocks (install chrony or systemd-timesyncd)`,
        );
      if (h.node.roles.includes('etcd') && !f.versions.etcd) problems.push(`${n}: etcd is not installed (apt-get install -y etcd-server etcd-client)`);
      else if (h.node.roles.includes('etcd') && !etcdServesKubernetes(f.versions.etcd!)) {
        problems.push(
          `${n}: etcd ${f.versions.etcd} cannot hold the state of K3s ${KUBERNETES_VERSION.split('.').slice(0, 2).join('.')}: its API server needs etcd >= ${MIN_ETCD.join('.')} (watch progress requests; without them every watch from "now" fails with 500). Debian 13's etcd-server 3.5 installs on Debian 12: scripts/install-deps.sh does it`,
        );
      }
      if (h.node.roles.includes('haproxy') && !f.versions.haproxy) problems.push(`${n}: haproxy is not installed (apt-get install -y haproxy)`);
      if (f.freeKiB && f.freeKiB < 1024 * 1024)
        problems.push(
          `${n}: only ${Math.round(f.freeKiB / 1024)} MiB free under ${posix.dirname(config.etcd.dataDir)}; etcd and PostgreSQL need at least 1 GiB`,
        );
      // A port GardenOS needs, taken while GardenOS's own service there is not running: something else has it.
      const want: [ServiceName, number][] = [
        ...(h.node.roles.includes('etcd')
          ? ([
              ['etcd', config.etcd.clientPort],
              ['etcd', config.etcd.peerPort],
            ] as [ServiceName, number][])
          : []),
        ...(h.node.roles.includes('haproxy') ? Object.values(config.haproxy.ports).map((p): [ServiceName, number] => ['haproxy', p]) : []),
      ];
      for (const [svc, port] of want) {
        if (f.active[svc]) continue;
        const taken = f.listening.find(
          (l) => l === hostPort(h.node.address.private, port) || l === `0.0.0.0:${port}` || l === `*:${port}` || l === `[::]:${port}`,
        );
        if (taken) problems.push(`${n}: port ${port} (${svc}) is already in use (${taken}); stop what listens there`);
      }
    }
    const etcdVersions = new Set(byRole(ctx, 'etcd').map((h) => known(h).facts.versions.etcd?.split('.').slice(0, 2).join('.')));
    if (etcdVersions.size > 1) problems.push(`etcd versions differ between hosts (${[...etcdVersions].join(', ')}); install the same minor version everywhere`);
    if (problems.length) throw new GardenError('STATE_CONFLICT', 'the hosts are not ready; nothing was changed', { details: problems });
    return 'clocks, packages, disk and ports';
  },
};
