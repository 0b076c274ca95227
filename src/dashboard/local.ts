// The dashboard's view of a local cluster. Two speeds: where the routes point and each member's role
// (the router's /status and one Patroni /cluster — a few milliseconds) on every tick, so the page shows a
// new leader within a tick of the router's move; everything `local status` judges (etcd, HAProxy, the
// backups, the problems) and Prometheus's panels every few seconds, in the background.
import { join } from 'node:path';
import { PatroniClient } from '../clients/patroni.ts';
import { describe } from '../errors.ts';
import { hostPort } from '../render/topology.ts';
import { patroniUrl, type LocalCluster } from '../local/cluster.ts';
import { fetchRouterStatus, gatherStatus, type LocalStatus } from '../local/status.ts';
import { newestChaos, prometheusPanels, recordDecision, type DashboardView, type Decision, type MemberRow } from './view.ts';

const SLOW_EVERY_MS = 3000;

/** Where `local chaos` writes its reports (its default --out). */
export const chaosDir = (c: LocalCluster) => join(c.layout.root, 'chaos');

export function localSource(c: LocalCluster, timeoutMs = 1500): () => Promise<DashboardView> {
  let decisions: Decision[] = [];
  let slow: { at: number; status?: LocalStatus; prometheus: DashboardView['prometheus']; chaos: DashboardView['chaos'] } = {
    at: 0,
    prometheus: { url: null, error: 'monitoring is off: `gardenos local up --with-monitoring` runs Prometheus' },
    chaos: null,
  };
  let refreshing: Promise<void> | undefined;
  const promUrl = c.config.monitoring.enabled ? `http://${hostPort(c.topology.loadBalancer, c.config.monitoring.port)}` : undefined;

  const refresh = async () => {
    const [status, prometheus, chaos] = await Promise.all([
      gatherStatus(c, { timeoutMs }).catch(() => undefined),
      promUrl ? prometheusPanels(promUrl, c.config.postgres.scope, timeoutMs) : Promise.resolve(slow.prometheus),
      newestChaos(chaosDir(c)),
    ]);
    slow = { at: Date.now(), ...(status ? { status } : {}), prometheus, chaos };
  };

  return async () => {
    if (!refreshing && Date.now() - slow.at >= SLOW_EVERY_MS) refreshing = refresh().finally(() => (refreshing = undefined));
    if (!slow.status) await refreshing; // the first view waits for everything once
    const [router, view] = await Promise.all([
      fetchRouterStatus(c, timeoutMs).catch((e: unknown) => describe(e)),
      Promise.any(c.topology.postgres.map((m) => new PatroniClient(patroniUrl(c, m.address), { caFile: c.layout.ca.cert, timeoutMs }).cluster())).catch(
        () => undefined,
      ),
    ]);
    const status = slow.status;
    const members: MemberRow[] = c.topology.postgres.map((m) => {
      const seen = view?.members.find((x) => x.name === m.name);
      const judged = status?.members.find((x) => x.name === m.name);
      return {
        name: m.name,
        host: m.address,
        role: seen?.role ?? judged?.role ?? 'unknown',
        state: seen?.state ?? judged?.state ?? 'unreachable',
        timeline: seen?.timeline ?? null,
        lagBytes: typeof seen?.lag === 'number' ? seen.lag : seen?.role === 'leader' ? 0 : null,
      };
    });
    if (typeof router !== 'string') decisions = recordDecision(decisions, router.lastDecision, router.lastChangeAt);
    return {
      cluster: c.config.cluster.name,
      profile: 'local',
      at: new Date().toISOString(),
      healthy: status?.healthy ?? false,
      problems: status?.problems ?? ['the status could not be taken'],
      members,
      etcd: (status?.etcd ?? []).map((e) => ({ name: e.name, healthy: e.healthy, leader: e.leader })),
      routes:
        typeof router === 'string'
          ? { primary: null, replicas: [], lastChangeAt: null, source: `the router does not answer: ${router}` }
          : { primary: router.primary?.name ?? null, replicas: router.replicas.map((r) => r.name), lastChangeAt: router.lastChangeAt, source: 'router' },
      decisions,
      prometheus: slow.prometheus,
      chaos: slow.chaos,
      pooler: status?.pooler
        ? {
            reachable: status.pooler.reachable,
            paused: status.pooler.paused,
            databases: status.pooler.databases.map((d) => ({ name: d.name, serverConnections: d.currentConnections })),
            ...(status.pooler.error ? { error: status.pooler.error } : {}),
          }
        : null,
    };
  };
}
