// `gardenos local db …`: operations on the PostgreSQL cluster through Patroni,
// and logical backup, restore and migration through PostgreSQL's own tools.
import { openLocalCluster, patroniAccess } from '../local/cluster.ts';
import { reinitMember, restartMember, switchover, type OperationResult } from '../ops/patroni.ts';
import { confirmed } from './confirm.ts';
import type { GlobalOptions } from './local.ts';
import { table } from './output.ts';

export interface OperationOptions {
  to?: string;
  yes?: boolean;
  timeout?: string;
}

function report(json: boolean | undefined, r: OperationResult): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
    return;
  }
  const headline =
    r.operation === 'switchover' || r.operation === 'failover'
      ? `${r.operation}: ${r.before.leader ?? 'no leader'} → ${r.after.leader} in ${(r.durationMs / 1000).toFixed(1)} s`
      : `${r.operation} of ${r.member} done in ${(r.durationMs / 1000).toFixed(1)} s (leader: ${r.after.leader ?? 'none'})`;
  process.stdout.write(`${headline}\n\n${table(['MEMBER', 'ROLE', 'STATE', 'TL', 'LAG'], r.after.members.map((m) => [m.name, m.role, m.state, String(m.timeline ?? '-'), String(m.lag ?? '-')]))}\n`);
}

export async function dbOperationCommand(g: GlobalOptions, op: 'switchover' | 'failover' | 'restart' | 'reinit', member: string | undefined, opts: OperationOptions): Promise<number> {
  const c = await openLocalCluster(g);
  const access = await patroniAccess(c);
  const timeoutMs = Number(opts.timeout ?? 120) * 1000;
  const scope = access.scope;
  const ask = (action: string, loss: string, expect: string, what: string) => confirmed({ yes: opts.yes, action, loss, expect, what });
  let result: OperationResult;
  switch (op) {
    case 'switchover':
    case 'failover': {
      const { planSwitchover } = await import('../ops/patroni.ts');
      const plan = await planSwitchover(access, op, opts.to);
      const loss = `This demotes ${plan.leader ?? 'no leader (there is none)'} and promotes ${plan.candidate ?? 'the best replica'} in cluster ${scope}; open connections to the primary are cut.`;
      if (!(await ask(`${op} ${scope}`, loss, scope, 'the scope'))) return 1;
      result = await switchover(access, op, opts.to, timeoutMs);
      break;
    }
    case 'restart':
      if (!(await ask(`restart ${member}`, `This restarts PostgreSQL on ${member}; its connections are cut.`, member!, 'the member name'))) return 1;
      result = await restartMember(access, member!, timeoutMs);
      break;
    case 'reinit':
      if (!(await ask(`reinitialise ${member}`, `This deletes ${member}'s data directory and copies it again from the leader; nothing on ${member} that the leader lacks survives.`, member!, 'the member name'))) return 1;
      result = await reinitMember(access, member!, timeoutMs);
      break;
  }
  report(g.json, result);
  return 0;
}
