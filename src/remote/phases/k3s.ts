// Installs K3s at the configured version and (re)starts it where it owes it,
// one server at a time, each Ready before the next: the datastore is etcd, so
// the order is about load, not quorum.

import { waitFor } from '../../util/wait.ts';
import { shellQuote } from '../ssh.ts';
import { byRole, known, owesRestart, startService, type UpPhase } from '../context.ts';

export const k3s: UpPhase = {
  name: 'k3s',
  async run(ctx) {
    const { config, changes, paths, waitMs } = ctx;
    const servers = byRole(ctx, 'k3s-server');
    const install = () =>
      `curl -sfL https://get.k3s.io | INSTALL_K3S_VERSION=${shellQuote(config.k3s.version)} INSTALL_K3S_SKIP_START=true sh -s - server --config ${paths.k3sConfig}`;
    for (const h of servers) {
      const { facts: f } = known(h);
      if (f.versions.k3s !== config.k3s.version) {
        await changes.do(h.node.name, 'k3s', `install K3s ${config.k3s.version}${f.versions.k3s ? ` (has ${f.versions.k3s})` : ''}: ${install()}`, () =>
          h.ssh.must('installing K3s', install(), { timeoutMs: 600_000 }),
        );
      }
      if (owesRestart(h, 'k3s') || f.versions.k3s !== config.k3s.version) {
        await changes.do(h.node.name, 'k3s', `${f.active.k3s ? 'restart' : 'start'} k3s`, () => startService(h, 'k3s', f.active.k3s));
        await changes.do(h.node.name, 'k3s', `wait until node ${h.node.name} is Ready`, () =>
          waitFor(
            `node ${h.node.name} Ready`,
            async () =>
              (
                await h.ssh.exec(`k3s kubectl get node ${shellQuote(h.node.name)} -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}'`)
              ).stdout.trim() === 'True',
            { timeoutMs: waitMs, intervalMs: 2000 },
          ),
        );
      }
    }
    return `${servers.length} servers`;
  },
};
