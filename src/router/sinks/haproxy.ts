// The HAProxy sink, through the runtime API on the admin socket: only the
// leader's server in the primary backend is ready, the others in maintenance;
// the replicas backend likewise. Servers leave first, then the new one joins,
// so writes never reach two members. HAProxy's own Patroni checks stay as a
// backstop; a server the router makes ready is also marked healthy, because a
// check that failed before the promotion would keep it out for `rise` intervals.
import { HaproxyClient, type HaproxyServerStat } from '../../clients/haproxy.ts';
import { GardenError } from '../../errors.ts';
import type { Route } from '../decide.ts';
import type { RouteSink } from './types.ts';

export interface HaproxySinkOptions {
  socket: string;
  primaryBackend: string;
  replicasBackend: string;
}

export class HaproxySink implements RouteSink {
  readonly name = 'haproxy';
  private readonly client: HaproxyClient;
  private readonly opts: HaproxySinkOptions;

  constructor(opts: HaproxySinkOptions) {
    this.opts = opts;
    this.client = new HaproxyClient(opts.socket, { timeoutMs: 2000 });
  }

  private async run(cmd: string): Promise<void> {
    const out = (await this.client.command(cmd)).trim();
    // Successful runtime commands print nothing (or a notice); failures say so.
    if (out && !/^(Health|State) /.test(out) && out !== 'Done.') {
      throw new GardenError('BACKEND_UNAVAILABLE', `HAProxy refused "${cmd}": ${out}`);
    }
  }

  async apply(route: Route): Promise<string[]> {
    const stats = await this.client.stats();
    const plan = (backend: string, wanted: ReadonlySet<string>) => {
      const servers = stats.filter((s) => s.proxy === backend);
      const leave = servers.filter((s) => !wanted.has(s.server) && !isMaint(s));
      const join = servers.filter((s) => wanted.has(s.server) && (isMaint(s) || !s.status.startsWith('UP')));
      return { leave, join, unknown: [...wanted].filter((w) => !servers.some((s) => s.server === w)) };
    };
    const primary = plan(this.opts.primaryBackend, new Set(route.primary ? [route.primary.name] : []));
    const replicas = plan(this.opts.replicasBackend, new Set(route.replicas.map((r) => r.name)));
    for (const u of [...primary.unknown, ...replicas.unknown]) {
      throw new GardenError('STATE_CONFLICT', `HAProxy has no server "${u}": its configuration does not match the Patroni members`);
    }

    const changes: string[] = [];
    const leave = async (backend: string, s: HaproxyServerStat) => {
      await this.run(`set server ${backend}/${s.server} state maint`);
      await this.run(`shutdown sessions server ${backend}/${s.server}`);
      changes.push(`${backend}/${s.server} → maint`);
    };
    const join = async (backend: string, s: HaproxyServerStat) => {
      await this.run(`set server ${backend}/${s.server} state ready`);
      await this.run(`set server ${backend}/${s.server} health up`);
      changes.push(`${backend}/${s.server} → ready`);
    };
    // Every removal before any addition.
    for (const s of primary.leave) await leave(this.opts.primaryBackend, s);
    for (const s of replicas.leave) await leave(this.opts.replicasBackend, s);
    for (const s of primary.join) await join(this.opts.primaryBackend, s);
    for (const s of replicas.join) await join(this.opts.replicasBackend, s);
    return changes;
  }
}

function isMaint(s: HaproxyServerStat): boolean {
  return s.status.startsWith('MAINT');
}
