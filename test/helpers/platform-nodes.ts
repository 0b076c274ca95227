// The platform on real nodes, for the node test and the node benchmark: an isolated local GardenOS
// cluster (its etcd is the DCS and the API server's store), a control plane (kube.ts), three kubelets
// (node.ts) at 10.251.<octet>.1–3 — each its own address on the isolated bridge, in the machine's one
// network namespace, so the first node's kube-proxy serves all three — the images built here and
// imported on every node, and gardenos.yaml rendered for them (`gardenos render --with-secrets`, on
// the local cluster's CA so its etcd trusts Patroni). Applying is the caller's: what it proves decides
// the order. `stop` removes everything, also after a failed start.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CoreV1Api, type KubernetesObject } from '@kubernetes/client-node';
import pg from 'pg';
import { loadConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { kustomizationObjects, renderPlatform } from '../../src/platform/render.ts';
import { ensurePlatformPki, ensurePlatformSecrets, readPlatformSecrets } from '../../src/platform/secrets.ts';
import type { PlatformStatus } from '../../src/platform/status.ts';
import { waitFor } from '../../src/util/wait.ts';
import { applyObjects, awaitRollouts } from '../../src/clients/apply.ts';
import { silent } from '../../src/log/events.ts';
import { buildImage } from './containerfile.ts';
import { corednsObjects } from './coredns.ts';
import { startControlPlane, type ControlPlane } from './kube.ts';
import { makeTestCluster, type TestCluster } from './local.ts';
import { startNode, type TestNode } from './node.ts';

const run = promisify(execFile);
const ROUTER_IMAGE = new URL('../../scripts/build-router-image.sh', import.meta.url).pathname;
export const RECIPES = {
  postgres: new URL('../../images/postgres', import.meta.url).pathname,
  api: new URL('../../examples/apps/api', import.meta.url).pathname,
};

export interface PlatformNodes {
  c: TestCluster;
  cp: ControlPlane;
  nodes: TestNode[];
  /** node1–3 and their addresses. */
  hosts: { name: string; host: string }[];
  work: string;
  configFile: string;
  secretsDir: string;
  config: Config;
  /** The rendered kustomization's objects, in its order. */
  objects: KubernetesObject[];
  /** How long each image took to build (or to be found in the cache), ms. */
  imageMs: Record<string, number>;
  core: CoreV1Api;
  /** `gardenos status --json` on this platform, with the admin kubeconfig. */
  status(): Promise<PlatformStatus>;
  /** Waits for one running leader (not `previous`), one streaming synchronous standby, and postgres-primary on the leader. */
  settled(why: string, previous?: string, timeoutMs?: number): Promise<{ leader: PlatformStatus['members'][number]; status: PlatformStatus }>;
  /** A superuser client for a member's PostgreSQL, TLS verified against the platform CA. */
  db(host: string, database?: string): pg.Client;
  /**
   * Starts a writer pod in the database namespace: a client in the cluster, one INSERT per connection through
   * postgres-primary's Service address (kube-proxy → the leader's node), logging each outcome with its time.
   * (From this machine itself a Service address whose endpoint is local is masqueraded to eth0's address,
   * which pg_hba rightly refuses; from a pod the leader sees the pod's address.)
   */
  startWriter(o?: WriterOptions): Promise<Writer>;
  /** Pods, events and claims of the platform's namespaces: what a failure message needs. */
  podReport(): Promise<string>;
  stop(): Promise<void>;
}

export interface WriterOptions {
  /** Through the pooler's Service (pooler.enabled) into table writes_pooled, instead of postgres-primary into writes. */
  pooled?: boolean;
}

export interface Writer {
  /** The table it writes its ids into. */
  table: string;
  /** The writer's log so far: acknowledged ids with the time (ms since the epoch) and the refused count. */
  read(): Promise<{ acked: { id: number; at: number }[]; failed: number; tail: string }>;
  /** Waits for `n` more acknowledged writes than there are now. */
  more(n: number, what: string, timeoutMs?: number): Promise<void>;
}

export interface PlatformNodesOptions {
  name: string;
  octet: number;
  /** Extra gardenos.yaml lines (apps:, …). */
  extraYaml?: string[];
  /** Render Supabase (its gateway's routes and Services; its own images cannot be had here). */
  supabase?: boolean;
}

export async function startPlatformNodes(o: PlatformNodesOptions): Promise<PlatformNodes> {
  const work = await mkdtemp(join(tmpdir(), `gardenos-${o.name}-`));
  const hostOf = (i: number) => `10.251.${o.octet}.${i}`;
  const hosts = [1, 2, 3].map((i) => ({ name: `node${i}`, host: hostOf(i) }));
  const nodes: TestNode[] = [];
  let c: TestCluster | undefined;
  let cp: ControlPlane | undefined;
  // The host's / as systemd leaves it on every host: a shared mount, which a hostPath of / mounted with
  // HostToContainer propagation (node-exporter's) requires. This machine boots without systemd (/ private):
  // made shared for the test, and private again after it. Only / itself, not the mounts under it.
  let madeShared = false;
  const stop = async () => {
    for (const n of [...nodes].reverse()) await n.stop();
    await cp?.stop();
    await c?.cleanup();
    await rm(work, { recursive: true, force: true });
    if (madeShared) await run('mount', ['--make-private', '/']);
  };
  try {
    if ((await run('findmnt', ['-n', '-o', 'PROPAGATION', '/'])).stdout.trim() === 'private') {
      await run('mount', ['--make-shared', '/']);
      madeShared = true;
    }
    c = await makeTestCluster(o.name, o.octet);
    const up = await c.cli(['local', 'up', '--isolated', '--json']);
    if (up.code !== 0) throw new Error(`local up failed: ${up.stderr.slice(-2000)}`);
    const ca = { cert: await readFile(`${c.stateDir}/pki/ca.crt`, 'utf8'), key: await readFile(`${c.stateDir}/pki/ca.key`, 'utf8') };
    cp = await startControlPlane({ host: hostOf(1), etcd: { endpoints: [1, 2, 3].map((i) => `https://${hostOf(10 + i)}:2379`), ca } });
    // The first node (the bridge's own address) runs kube-proxy for all three; the others add their address to the bridge.
    nodes.push(await startNode(cp, hosts[0]!));
    const bridge = (await run('ip', ['-o', 'addr', 'show', 'to', hostOf(1)])).stdout.split(/\s+/)[1]!;
    const more = await Promise.allSettled(hosts.slice(1).map((h) => startNode(cp!, { ...h, addTo: bridge, kubeProxy: false })));
    for (const r of more) if (r.status === 'fulfilled') nodes.push(r.value);
    const failed = more.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;

    // PostgreSQL's and the example API's images from their Containerfiles (no engine: mmdebstrap + umoci), the router's from the Dockerfile's recipe.
    const imageMs: Record<string, number> = {};
    const timed = async <T>(name: string, fn: () => Promise<T>) => {
      const t = performance.now();
      const r = await fn();
      imageMs[name] = performance.now() - t;
      return r;
    };
    const images = {
      postgres: await timed('postgres', () => buildImage(RECIPES.postgres, 'postgres')),
      api: await timed('api', () => buildImage(RECIPES.api, 'api')),
      router: await timed('router', async () => (await run('bash', [ROUTER_IMAGE], { maxBuffer: 1 << 22, timeout: 900_000 })).stdout.trim().split('\n').pop()!),
    };
    await Promise.all(nodes.flatMap((n) => Object.entries(images).map(([name, archive]) => n.importImage(name, archive))));
    // Cluster DNS, as K3s installs it on its servers (test/helpers/coredns.ts).
    const dns = corednsObjects();
    await applyObjects(cp.admin(), dns, { report: silent });
    await awaitRollouts(cp.admin(), dns, { report: silent, waitMs: 120_000 });

    // gardenos.yaml: three postgres nodes at the test nodes' addresses, three etcd hosts at the local cluster's members
    // (its etcd is the DCS; its own Patroni is another scope). K3s's local-storage off: GardenOS renders local-path.
    const configFile = join(work, 'gardenos.yaml');
    await writeFile(
      configFile,
      [
        `cluster: { name: ${o.name} }`,
        'nodes:',
        ...hosts.map((n) => `  - { name: ${n.name}, address: { public: ${n.host}, private: ${n.host} }, roles: [k3s-server, postgres] }`),
        ...[1, 2, 3].map((i) => `  - { name: etcd${i}, address: { public: ${hostOf(10 + i)}, private: ${hostOf(10 + i)} }, roles: [etcd] }`),
        'k3s: { disable: [traefik, servicelb, local-storage] }',
        'postgres: { scope: sts, version: 17, image: "gardenos.local/postgres:1", storage: 1Gi, ttl: 20, loopWait: 2, retryTimeout: 5 }',
        `storage: { path: ${join(work, 'volumes')}, provisionerImage: "gardenos.local/local-path-provisioner:1", helperImage: "gardenos.local/tools:1" }`,
        'router: { image: "gardenos.local/router:1" }',
        `supabase: { enabled: ${o.supabase === true} }`,
        ...(o.extraYaml ?? []),
        '',
      ].join('\n'),
    );
    const config = await loadConfig(configFile);
    const secretsDir = join(work, 'secrets');
    await mkdir(join(secretsDir, 'pki'), { recursive: true, mode: 0o700 });
    for (const f of ['ca.crt', 'ca.key']) await copyFile(`${c.stateDir}/pki/${f}`, join(secretsDir, 'pki', f));
    await ensurePlatformSecrets(secretsDir, config);
    await ensurePlatformPki(secretsDir, config);
    const objects = kustomizationObjects(await renderPlatform(config, { secretsDir, withSecrets: true })) as KubernetesObject[];
    const secrets = await readPlatformSecrets(secretsDir);
    const caPem = readFileSync(join(secretsDir, 'pki', 'ca.crt'), 'utf8');
    const core = cp.admin().makeApiClient(CoreV1Api);
    const cluster = c;
    const plane = cp;

    const status = async () => {
      const r = await cluster.cli(['status', '--config', configFile, '--secrets-dir', secretsDir, '--kubeconfig', plane.adminKubeconfigFile, '--json']);
      return JSON.parse(r.stdout) as PlatformStatus;
    };
    const routerLogs = async () => {
      const pods = (await core.listNamespacedPod({ namespace: 'database', labelSelector: 'app.kubernetes.io/name=gardenos-router' })).items;
      const logs = await Promise.all(
        pods.map((p) => core.readNamespacedPodLog({ name: p.metadata!.name!, namespace: 'database', tailLines: 2 }).catch((x: Error) => x.message)),
      );
      return `router logs: ${logs.join(' | ').slice(0, 1500)}`;
    };
    const settled = (why: string, previous?: string, timeoutMs = 120_000) =>
      waitFor(
        `the cluster to settle (${why})`,
        async () => {
          const s = await status();
          const leader = s.members.find((m) => m.role === 'leader' && m.state === 'running');
          // Patroni 4 says a replica that replicates is "streaming".
          const sync = s.members.filter((m) => m.role === 'sync_standby' && m.state === 'streaming');
          const ep = s.kubernetes?.primaryEndpoint ?? [];
          if (!leader || leader.name === previous || sync.length !== 1 || ep.join() !== leader.host) {
            throw new Error(
              `members ${s.members.map((m) => `${m.name}@${m.host}=${m.role}/${m.state}`).join(' ')}; postgres-primary [${ep}]; ${await routerLogs()}`,
            );
          }
          return { leader, status: s };
        },
        { timeoutMs, intervalMs: 500 },
      );
    const db = (host: string, database = 'postgres') =>
      new pg.Client({
        host,
        port: config.postgres.port,
        user: 'postgres',
        password: secrets.superuserPassword,
        database,
        ssl: { ca: caPem, rejectUnauthorized: true, servername: 'localhost' },
      });
    const podReport = async () => {
      const out: string[] = [];
      for (const ns of [config.namespaces.database, config.namespaces.platform, config.namespaces.apps]) {
        for (const p of (await core.listNamespacedPod({ namespace: ns })).items) {
          // The first container's (a pod with sidecars needs one named).
          const log = await core
            .readNamespacedPodLog({ name: p.metadata!.name!, namespace: ns, container: p.spec!.containers[0]!.name, tailLines: 5 })
            .catch((x: Error) => x.message.slice(0, 200));
          out.push(
            `${ns}/${p.metadata?.name} on ${p.spec?.nodeName ?? '-'} ${p.status?.phase} ${JSON.stringify(p.status?.containerStatuses?.[0]?.state ?? p.status?.conditions?.slice(-1))} log: ${log.slice(-500)}`,
          );
        }
        for (const e of (await core.listNamespacedEvent({ namespace: ns })).items.slice(-8))
          out.push(`event ${e.involvedObject.name}: ${e.reason} ${e.message}`);
      }
      const pvcs = (await core.listNamespacedPersistentVolumeClaim({ namespace: config.namespaces.database })).items.map(
        (p) => `${p.metadata?.name}=${p.status?.phase}`,
      );
      return `${out.join(' | ')} | pvcs ${pvcs.join(' ')}`;
    };
    const startWriter = async (o: WriterOptions = {}): Promise<Writer> => {
      const ns = config.namespaces.database;
      const name = o.pooled ? 'writer-pooled' : 'writer';
      const table = o.pooled ? 'writes_pooled' : 'writes';
      // Through postgres-primary's Service address, or (pooled) through the pooler's.
      const target = o.pooled
        ? `host=$POSTGRES_POOLER_SERVICE_HOST port=${config.pooler.port}`
        : `host=$POSTGRES_PRIMARY_SERVICE_HOST port=${config.postgres.port}`;
      await core
        .createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'writer' }, stringData: { PGPASSWORD: secrets.superuserPassword } } })
        .catch((e: { code?: number }) => {
          if (e.code !== 409) throw e;
        });
      const loop = [
        'i=0',
        'while [ $i -lt 100000 ]; do',
        '  i=$((i+1))',
        `  if psql -qtA -v ON_ERROR_STOP=1 "${target} user=postgres dbname=postgres sslmode=require connect_timeout=2" -c "CREATE TABLE IF NOT EXISTS ${table} (id int PRIMARY KEY); INSERT INTO ${table} (id) VALUES ($i)" >/dev/null 2>&1`,
        '  then echo "ack $i $(date +%s%3N)"; else echo "fail $i $(date +%s%3N)"; sleep 0.05; fi',
        'done',
      ].join('\n');
      await core.createNamespacedPod({
        namespace: ns,
        body: {
          metadata: { name },
          spec: {
            restartPolicy: 'Never',
            containers: [
              {
                name: 'writer',
                image: 'gardenos.local/postgres:1',
                command: ['sh', '-c', loop],
                envFrom: [{ secretRef: { name: 'writer' } }],
                securityContext: { runAsNonRoot: true, allowPrivilegeEscalation: false },
              },
            ],
          },
        },
      });
      const read = async () => {
        const log = await core.readNamespacedPodLog({ name, namespace: ns }).catch(() => '');
        const lines = log.split('\n');
        const acked = lines
          .filter((l) => l.startsWith('ack '))
          .map((l) => l.split(' '))
          .map(([, id, at]) => ({ id: Number(id), at: Number(at) }));
        return { acked, failed: lines.filter((l) => l.startsWith('fail ')).length, tail: log.slice(-300) };
      };
      const more = async (n: number, what: string, timeoutMs = 90_000) => {
        const before = (await read()).acked.length;
        await waitFor(
          `${name} to commit again (${what})`,
          async () => {
            const now = await read();
            if (now.acked.length < before + n)
              throw new Error(`${now.acked.length - before} new acknowledged writes; log tail: ${now.tail}; ${await podReport()}`);
            return true;
          },
          { timeoutMs, intervalMs: 250 },
        );
      };
      return { table, read, more };
    };
    return { c, cp, nodes, hosts, work, configFile, secretsDir, config, objects, imageMs, core, status, settled, db, startWriter, podReport, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
