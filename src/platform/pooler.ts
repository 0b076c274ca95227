// The platform's pooled switchover: clients of the Service postgres-pooler wait through a planned
// switchover instead of losing their connections. PAUSE every PgBouncer pod (each lets the
// transactions in flight finish and holds new ones), Patroni's switchover, wait until the router has
// moved postgres-primary to the new leader, then — from inside each pooler pod, so through the very
// node's Service routing its PgBouncer will use — wait until a new connection through postgres-primary
// lands on the new leader out of recovery, and RESUME. A pod is never resumed before its own route is
// right: kube-proxy on each node applies the router's change on its own schedule. RESUME runs on every
// paused pod whatever happened in between.
import type { KubeConfig } from '@kubernetes/client-node';
import { execInPod } from '../clients/kubernetes.ts';
import type { Config } from '../config/schema.ts';
import { describe, GardenError } from '../errors.ts';
import type { Reporter } from '../log/events.ts';
import { PRIMARY_ROUTE } from '../names.ts';
import { switchover, type OperationResult, type PatroniAccess } from '../ops/patroni.ts';
import { POOLER_CONTAINER, poolerPodSelector, primaryServiceHost } from '../render/kube/pooler.ts';
import { waitFor } from '../util/wait.ts';

export interface PlatformPausedSwitchover extends OperationResult {
  /** How long new transactions were held: from the last PAUSE done to the first RESUME. */
  pausedMs: number;
  /** The pooler pods that were paused and resumed. */
  pods: string[];
}

/** The pooler pods that run and are ready, by name. */
export async function readyPoolerPods(kc: KubeConfig, config: Config): Promise<string[]> {
  const { CoreV1Api } = await import('@kubernetes/client-node');
  const core = kc.makeApiClient(CoreV1Api);
  const pods = await core.listNamespacedPod({ namespace: config.namespaces.database, labelSelector: poolerPodSelector() });
  return pods.items
    .filter(
      (p) => !p.metadata?.deletionTimestamp && p.status?.phase === 'Running' && p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
    )
    .map((p) => p.metadata!.name!)
    .sort();
}

/** A psql command in a pooler pod: its environment names the admin console and the superuser's password. */
const psql = (args: string[]) => ['psql', '-X', '-q', '-t', '-A', '-v', 'ON_ERROR_STOP=1', ...args];

/** A direct connection from the pod to the primary route, verified against the cluster CA. */
function primaryConninfo(config: Config): string {
  return `host=${primaryServiceHost(config)} port=${config.postgres.port} dbname=postgres sslmode=verify-full sslrootcert=/etc/pgbouncer-secret/ca.crt connect_timeout=2`;
}

/** A planned switchover behind the platform's paused poolers (see the header). */
export async function platformPausedSwitchover(
  kc: KubeConfig,
  config: Config,
  access: PatroniAccess,
  candidate: string | undefined,
  timeoutMs: number,
  report: Reporter,
): Promise<PlatformPausedSwitchover> {
  const namespace = config.namespaces.database;
  const pods = await readyPoolerPods(kc, config);
  if (!pods.length)
    throw new GardenError('BACKEND_UNAVAILABLE', `no pooler pod is ready in namespace ${namespace}`, {
      hint: '`gardenos status` shows the postgres-pooler Deployment; `gardenos up` applies it',
    });
  const exec = (pod: string, command: string[], ms = 15_000) => execInPod(kc, { namespace, pod, container: POOLER_CONTAINER }, command, ms);
  const admin = (pod: string, command: 'PAUSE' | 'RESUME') => exec(pod, psql(['-d', 'pgbouncer', '-c', command]), 20_000);

  // A checkpoint now, while clients still flow, leaves little for the demotion's own checkpoint to write once they are held.
  await exec(pods[0]!, psql([primaryConninfo(config), '-c', 'CHECKPOINT']), 120_000).catch((e: unknown) => {
    throw new GardenError('BACKEND_UNAVAILABLE', `CHECKPOINT on the primary before the switchover failed: ${describe(e)}`, {
      hint: '`gardenos status` shows whether postgres-primary has a primary',
    });
  });

  const paused: string[] = [];
  let outcome: { result: PlatformPausedSwitchover } | { error: unknown };
  try {
    outcome = { result: await pausedBody() };
  } catch (error) {
    outcome = { error };
  }
  // RESUME on every pod that was paused, whatever happened: a pooler left paused holds every client.
  const failed: string[] = [];
  for (const pod of paused) {
    try {
      await admin(pod, 'RESUME');
      report({ kind: 'step', step: 'resume', member: pod, status: 'done' });
    } catch (e) {
      // PgBouncer refuses RESUME on a pod that is not paused (its PAUSE never took); a pod that went away restarted unpaused.
      if (!/not paused/i.test(describe(e))) failed.push(`${pod}: ${describe(e)}`);
    }
  }
  if (failed.length)
    throw new GardenError(
      'BACKEND_UNAVAILABLE',
      `${'error' in outcome ? `the switchover failed (${describe(outcome.error)}), and ` : ''}the pooler could not be resumed on ${failed.join('; ')}`,
      { hint: `kubectl -n ${namespace} exec <pod> -c ${POOLER_CONTAINER} -- psql -d pgbouncer -c RESUME` },
    );
  if ('error' in outcome) throw outcome.error;
  return outcome.result;

  async function pausedBody(): Promise<PlatformPausedSwitchover> {
    for (const pod of pods) {
      // PAUSE waits for the transactions in flight; one that never ends must not hold every client for long.
      report({ kind: 'step', step: 'pause', member: pod, status: 'start' });
      paused.push(pod);
      await admin(pod, 'PAUSE');
      report({ kind: 'step', step: 'pause', member: pod, status: 'done' });
    }
    const pausedAt = Date.now();
    const result = await switchover(access, 'switchover', candidate, timeoutMs);
    const leader = result.after.members.find((m) => m.name === result.after.leader);
    if (!leader?.host) throw new GardenError('STATE_CONFLICT', `Patroni names no address for the new leader ${result.after.leader}`);
    const { CoreV1Api } = await import('@kubernetes/client-node');
    const core = kc.makeApiClient(CoreV1Api);
    await waitFor(
      `the router to point ${PRIMARY_ROUTE} at ${result.after.leader}`,
      async () => {
        const ep = await core.readNamespacedEndpoints({ name: PRIMARY_ROUTE, namespace });
        const addresses = ep.subsets?.flatMap((s) => s.addresses ?? []) ?? [];
        return addresses.length === 1 && addresses[0]!.ip === leader.host;
      },
      { timeoutMs: 30_000, intervalMs: 100 },
    );
    // Patroni names the new leader while its PostgreSQL may still be finishing the promotion, and each node's
    // kube-proxy applies the new endpoint on its own: a pod's route is right when a new connection from it lands there.
    const check = psql([primaryConninfo(config), '-c', "SELECT pg_is_in_recovery()::text || ' ' || host(inet_server_addr())"]);
    await Promise.all(
      pods.map((pod) =>
        waitFor(
          `${pod} to reach ${result.after.leader} through ${PRIMARY_ROUTE}, out of recovery`,
          async () => (await exec(pod, check, 5000).catch(() => ({ stdout: '' }))).stdout.trim() === `false ${leader.host}`,
          { timeoutMs: 30_000, intervalMs: 100 },
        ),
      ),
    );
    return { ...result, pausedMs: Date.now() - pausedAt, pods };
  }
}
