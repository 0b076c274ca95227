// SQL GardenOS runs on the PostgreSQL leader (found through postgres-primary's Endpoints) with psql in the
// leader's pod, secrets as psql variables so the scripts hold none: Supabase's bootstrap (supabase.enabled)
// and postgres-exporter's login role (monitoring.enabled). Both are idempotent.

import { PRIMARY_ROUTE } from '../../names.ts';
import { scramVerifier } from '../../ops/roles.ts';
import { MONITOR_ROLE_SQL } from '../../platform/render.ts';
import { shellQuote } from '../ssh.ts';
import { byRole, type UpPhase } from '../context.ts';

export const database: UpPhase = {
  name: 'database',
  skipReason: (ctx) =>
    !byRole(ctx, 'k3s-server').length
      ? 'no K3s server'
      : !ctx.config.supabase.enabled && !ctx.config.monitoring.enabled
        ? 'nothing to run (neither supabase.enabled nor monitoring.enabled is on)'
        : undefined,
  async run(ctx) {
    const { config, rendered } = ctx;
    const first = byRole(ctx, 'k3s-server')[0]!;
    // Found once, when the first script runs (never in a dry run).
    let pod: Promise<string> | undefined;
    const leaderPod = () =>
      (pod ??= first.ssh
        .must(
          'finding the PostgreSQL leader',
          `k3s kubectl -n ${config.namespaces.database} get endpoints ${PRIMARY_ROUTE} -o jsonpath='{.subsets[0].addresses[0].targetRef.name}'`,
        )
        .then((out) => out.trim()));
    const psql = async (what: string, vars: Record<string, string>, file: string) => {
      const sql = rendered.find((f) => f.path === file)!;
      const v = Object.entries(vars)
        .map(([k, value]) => `-v ${k}=${shellQuote(value)}`)
        .join(' ');
      await first.ssh.must(
        what,
        `k3s kubectl -n ${config.namespaces.database} exec -i ${shellQuote(await leaderPod())} -c postgres -- psql -X -q -U postgres ${v} -f -`,
        {
          stdin: sql.content,
        },
      );
    };
    if (config.supabase.enabled) {
      const s = ctx.secrets.supabase;
      await ctx.changes.do(first.node.name, 'database', "run Supabase's bootstrap SQL on the leader (idempotent)", () =>
        psql(
          'running the Supabase bootstrap SQL',
          { authenticator_password: s.authenticatorPassword, auth_admin_password: s.authAdminPassword, storage_admin_password: s.storageAdminPassword },
          'supabase/bootstrap.sql',
        ),
      );
    }
    if (config.monitoring.enabled) {
      const password = ctx.secrets.monitorPassword!;
      await ctx.changes.do(first.node.name, 'database', "make postgres-exporter's role on the leader (idempotent)", () =>
        psql("making postgres-exporter's role", { verifier: scramVerifier(password) }, MONITOR_ROLE_SQL),
      );
    }
    return undefined;
  },
};
