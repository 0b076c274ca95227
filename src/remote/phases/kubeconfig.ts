// Writes a kubeconfig for the platform: K3s's admin kubeconfig from the first
// server, pointed at the HAProxy address and named after the cluster.
import { writeFile } from 'node:fs/promises';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import type { Config } from '../../config/schema.ts';
import { describe, GardenError } from '../../errors.ts';
import { hostPort, productionTopology } from '../../render/topology.ts';
import { byRole, type UpContext, type UpPhase } from '../context.ts';

export const noK3sServer = (ctx: UpContext) => (byRole(ctx, 'k3s-server').length ? undefined : 'no K3s server');

export const kubeconfig: UpPhase = {
  name: 'kubeconfig',
  skipReason: noK3sServer,
  async run(ctx) {
    const { config, opts, topo } = ctx;
    const first = byRole(ctx, 'k3s-server')[0]!;
    await ctx.changes.do(
      first.node.name,
      'kubeconfig',
      `write ${opts.kubeconfigFile} (server https://${hostPort(topo.loadBalancer, config.haproxy.ports.kubeApi)})`,
      async () => {
        const raw = await first.ssh.must('reading /etc/rancher/k3s/k3s.yaml', 'cat /etc/rancher/k3s/k3s.yaml');
        await writeFile(opts.kubeconfigFile, kubeconfigFor(raw, config), { mode: 0o600 });
      },
    );
    return undefined;
  },
};

/**
 * K3s's admin kubeconfig, pointed at the HAProxy address instead of 127.0.0.1, its cluster, user
 * and context named after the cluster. Read as YAML (which JSON is too), not edited as text.
 */
export function kubeconfigFor(raw: string, config: Config): string {
  type Named<K extends string> = { name?: string } & Record<K, Record<string, unknown> | undefined>;
  let kc: { clusters?: Named<'cluster'>[]; users?: Named<'user'>[]; contexts?: Named<'context'>[]; 'current-context'?: string };
  try {
    kc = parseYaml(raw) as typeof kc;
  } catch (e) {
    throw new GardenError('BACKEND_UNAVAILABLE', `K3s's /etc/rancher/k3s/k3s.yaml is not a kubeconfig: ${describe(e)}`);
  }
  if (!kc?.clusters?.length || !kc.users?.length)
    throw new GardenError('BACKEND_UNAVAILABLE', "K3s's /etc/rancher/k3s/k3s.yaml has no cluster or user", {
      hint: 'is K3s running on the first server? `systemctl status k3s`',
    });
  const name = config.cluster.name;
  const server = `https://${hostPort(productionTopology(config).loadBalancer, config.haproxy.ports.kubeApi)}`;
  const cluster = kc.clusters[0]!;
  const user = kc.users[0]!;
  const out = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name, cluster: { ...cluster.cluster, server } }],
    users: [{ name, user: user.user }],
    contexts: [{ name, context: { cluster: name, user: name } }],
    'current-context': name,
  };
  return stringifyYaml(out, { lineWidth: 0 });
}
