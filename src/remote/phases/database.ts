// Runs Supabase's bootstrap SQL (idempotent) on the PostgreSQL leader, found
// through postgres-primary's Endpoints, with the generated passwords as psql variables.

import { PRIMARY_ROUTE } from '../../names.ts';
import { shellQuote } from '../ssh.ts';
import { byRole, type UpPhase } from '../context.ts';

export const database: UpPhase = {
  name: 'database',
  skipReason: (ctx) =>
    !byRole(ctx, 'k3s-server').length ? 'no K3s server' : !ctx.config.supabase.enabled ? 'nothing to bootstrap (supabase.enabled is off)' : undefined,
  async run(ctx) {
    const { config, rendered } = ctx;
    const first = byRole(ctx, 'k3s-server')[0]!;
    const sql = rendered.find((f) => f.path === 'supabase/bootstrap.sql')!;
    const s = ctx.secrets.supabase;
    const vars = `-v authenticator_password=${shellQuote(s.authenticatorPassword)} -v auth_admin_password=${shellQuote(s.authAdminPassword)} -v storage_admin_password=${shellQuote(s.storageAdminPassword)}`;
    await ctx.changes.do(first.node.name, 'database', "run Supabase's bootstrap SQL on the leader (idempotent)", async () => {
      const pod = (
        await first.ssh.must(
          'finding the PostgreSQL leader',
          `k3s kubectl -n ${config.namespaces.database} get endpoints ${PRIMARY_ROUTE} -o jsonpath='{.subsets[0].addresses[0].targetRef.name}'`,
        )
      ).trim();
      await first.ssh.must(
        'running the Supabase bootstrap SQL',
        `k3s kubectl -n ${config.namespaces.database} exec -i ${shellQuote(pod)} -- psql -X -q -U postgres ${vars} -f -`,
        {
          stdin: sql.content,
        },
      );
    });
    return undefined;
  },
};
