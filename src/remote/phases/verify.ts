// After the work: etcd healthy with a leader, and HAProxy answering on every
// host that runs it (waited for: one started a moment ago may not listen yet).
import { describe, GardenError } from '../../errors.ts';
import { statsOverHttp } from '../../clients/haproxy.ts';
import { hostPort } from '../../render/topology.ts';
import { waitFor } from '../../util/wait.ts';
import { etcdProblems } from '../../health/judge.ts';
import { byRole, etcdMembers, type UpPhase } from '../context.ts';

export const verify: UpPhase = {
  name: 'verify',
  skipReason: (ctx) => (ctx.dryRun ? 'skipped in a dry run' : undefined),
  async run(ctx) {
    const { config, secrets } = ctx;
    const problems: string[] = [];
    if (byRole(ctx, 'etcd').length) {
      // The same judgement as `gardenos status`'s (health/judge.ts).
      const members = await etcdMembers(ctx).catch((e: unknown) => describe(e));
      problems.push(...(typeof members === 'string' ? [`etcd: ${members}`] : etcdProblems(members)));
    }
    for (const h of byRole(ctx, 'haproxy')) {
      const url = `http://${hostPort(h.node.address.private, config.haproxy.ports.stats)}/`;
      const answered = await waitFor(
        `HAProxy on ${h.node.name}`,
        async () => Boolean(await statsOverHttp(url, { user: config.haproxy.statsUser, password: secrets.statsPassword }, 3000)),
        { timeoutMs: 30_000, intervalMs: 250 },
      ).catch((e) => describe(e));
      if (answered !== true) problems.push(`${h.node.name}: HAProxy stats ${url}: ${answered}`);
    }
    if (problems.length) throw new GardenError('MEMBER_FAILED', 'the platform is not healthy after up', { details: problems });
    return 'etcd healthy; HAProxy answers on every host';
  },
};
