// Applies the rendered Kubernetes objects server-side through the HAProxy
// address, in the kustomization's order, then waits for every rollout.
import type { KubernetesObject } from '@kubernetes/client-node';
import { describe, GardenError } from '../../errors.ts';
import { kustomizationObjects } from '../../platform/render.ts';
import { hostPort } from '../../render/topology.ts';
import { byRole, type UpPhase } from '../context.ts';
import { noK3sServer } from './kubeconfig.ts';

export const manifests: UpPhase = {
  name: 'manifests',
  skipReason: noK3sServer,
  async run(ctx) {
    const { opts, report, topo, config, waitMs } = ctx;
    const first = byRole(ctx, 'k3s-server')[0]!;
    // In the kustomization's order: namespaces and Secrets first, the workloads after what they need.
    const objects = kustomizationObjects(ctx.rendered) as KubernetesObject[];
    await ctx.changes.do(
      first.node.name,
      'manifests',
      `apply ${objects.length} objects server-side (field manager gardenos) through ${hostPort(topo.loadBalancer, config.haproxy.ports.kubeApi)}, then wait for every rollout`,
      async () => {
        const { KubeConfig } = await import('@kubernetes/client-node');
        const kc = new KubeConfig();
        try {
          kc.loadFromFile(opts.kubeconfigFile);
        } catch (e) {
          throw new GardenError('CONFIG_NOT_FOUND', `no kubeconfig at ${opts.kubeconfigFile}: ${describe(e)}`, {
            hint: 'the kubeconfig phase writes it; do not --skip kubeconfig, or pass --kubeconfig',
          });
        }
        const { applyObjects, awaitRollouts } = await import('../../clients/apply.ts');
        await applyObjects(kc, objects, { report });
        if (opts.waitForRollouts === false) report({ kind: 'info', message: 'not waiting for the rollouts (--no-wait)' });
        else await awaitRollouts(kc, objects, { report, waitMs });
      },
    );
    return undefined;
  },
};
