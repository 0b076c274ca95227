// Real nodes: three kubelets (built from k8s.io/kubernetes with the control plane) on Debian's
// containerd, runc and CNI plugins, joined to a real control plane on a real local GardenOS etcd
// (isolated, 10.251.228.0/24; test/helpers/platform-nodes.ts). Every image is made here: the pause
// sandbox (catatonit) and a busybox workload from Debian's binaries, PostgreSQL + Patroni and the
// example API from their Containerfiles (mmdebstrap + umoci), the router from the Dockerfile's recipe.
// A pod runs, its log is read through the API server, and it reaches HAProxy from the pod network.
// Then the rendered platform is applied as `gardenos up` applies it: local-path volumes bound by the
// real provisioner, the permissions step, Patroni electing a leader and a synchronous standby, the
// router (2 replicas, one Lease) keeping postgres-primary on the leader through `gardenos db
// switchover` and a deleted leader pod while a writer in the cluster loses no acknowledged write,
// and the example API ready only once its database lets it in. Needs root, as CI runs.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import { AppsV1Api, type KubernetesObject, PatchStrategy, PolicyV1Api, setHeaderOptions, StorageV1Api } from '@kubernetes/client-node';
import { applyObjects, awaitRollouts } from '../../src/clients/apply.ts';
import { execInPod } from '../../src/clients/kubernetes.ts';
import type { PitrResult } from '../../src/ops/pgbackrest.ts';
import { readyPoolerPods } from '../../src/platform/pooler.ts';
import { silent } from '../../src/log/events.ts';
import { scramVerifier } from '../../src/ops/roles.ts';
import { MONITOR_ROLE_SQL, renderPlatform } from '../../src/platform/render.ts';
import { readPlatformSecrets } from '../../src/platform/secrets.ts';
import { waitFor } from '../../src/util/wait.ts';
import { firstDashboardView } from '../helpers/local.ts';
import { startPlatformNodes, type PlatformNodes } from '../helpers/platform-nodes.ts';

const run = promisify(execFile);
const asRoot = process.getuid?.() === 0;
const OCTET = 228;
const HOST = `10.251.${OCTET}.1`;
const API_HOST = 'api.it-node.test';
const [HTTP_PORT, HTTPS_PORT] = [20080, 20443];

/** One request to a node's ingress port: by name (Host and SNI), over TLS checked against `ca` unless `insecure`. */
async function viaIngress(o: {
  path: string;
  method?: string;
  body?: string;
  host?: string;
  tls?: boolean;
  ca?: string;
  node?: string;
  headers?: Record<string, string>;
}): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  const host = o.host ?? API_HOST;
  const mod = o.tls === false ? await import('node:http') : await import('node:https');
  return new Promise((resolve, reject) => {
    const req = mod.request(
      {
        host: o.node ?? HOST,
        port: o.tls === false ? HTTP_PORT : HTTPS_PORT,
        method: o.method ?? 'GET',
        path: o.path,
        headers: { host, ...(o.body ? { 'content-type': 'application/json' } : {}), ...o.headers },
        ...(o.tls === false ? {} : { servername: host, ...(o.ca ? { ca: o.ca } : { rejectUnauthorized: false }) }),
        timeout: 10_000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer from ${o.node ?? HOST} for ${host}${o.path}`)));
    req.on('error', reject);
    req.end(o.body);
  });
}

/**
 * Supabase's own workloads: GoTrue, PostgREST and storage-api cannot be obtained on this machine (GoTrue: the Go module
 * proxy answers 403 for github.com/supabase/auth; PostgREST: a Haskell program in neither Debian 12 nor 13, and Hackage
 * is not reachable; storage-api: not published on npm; no container registry is reachable for any of their images), so
 * their rendered Deployments and volume are left out wherever the platform is applied; their rendered Services, routes
 * and gateway rules are applied.
 */
const unobtainable = (o: KubernetesObject) => o.metadata?.namespace === 'supabase' && (o.kind === 'Deployment' || o.kind === 'PersistentVolumeClaim');

/** The timeline a primary writes on: the first eight hexadecimal digits of its current WAL file's name. */
const timelineOf = async (db: { query<R>(q: string): Promise<{ rows: R[] }> }) =>
  Number.parseInt((await db.query<{ f: string }>('SELECT pg_walfile_name(pg_current_wal_lsn()) AS f')).rows[0]!.f.slice(0, 8), 16);

describe('a real node: kubelet and containerd running pods from images made here', {
  timeout: 900_000,
  skip: asRoot ? false : 'needs root for namespaces, bridges and containers (see README)',
}, () => {
  let p: PlatformNodes;

  before(async () => {
    // Three nodes at 10.251.228.1–3, the platform rendered for them with the example API as an app.
    p = await startPlatformNodes({
      name: 'it-node',
      octet: OCTET,
      supabase: true,
      extraYaml: [
        'apps:',
        `  - { name: api, image: "gardenos.local/api:1", replicas: 1, readyPath: /ready, env: { APP_NAME: api, LOG_LEVEL: INFO }, secrets: [DATABASE_URL], routes: [{ host: ${API_HOST} }] }`,
        // Traefik from its Go module; the nodes' HTTP/HTTPS ports moved off 80/443 (the nodes share this machine), a certificate from GardenOS's CA.
        `ingress: { image: "gardenos.local/traefik:1", httpPort: ${HTTP_PORT}, httpsPort: ${HTTPS_PORT}, hosts: [{ name: ${API_HOST} }] }`,
        // Monitoring on: postgres-exporter beside each Patroni member (GardenOS's image carries it); Prometheus,
        // Alertmanager and node-exporter from Debian's binaries (scripts/build-images.sh: quay.io cannot be reached).
        'monitoring:',
        '  enabled: true',
        '  images: { prometheus: "gardenos.local/prometheus:1", alertmanager: "gardenos.local/alertmanager:1", nodeExporter: "gardenos.local/node-exporter:1" }',
        // The pooler: PgBouncer pods (Debian's, from GardenOS's PostgreSQL image) behind postgres-pooler.
        'pooler: { enabled: true, replicas: 2 }',
        // Backups: pgBackRest's repository pod, a server beside each member, the CronJobs — scheduled for dates no test run
        // meets (1 and 2 January, midnight), so every backup here is one the test takes.
        'backups: { enabled: true, schedule: { full: "0 0 1 1 *", diff: "0 0 2 1 *" } }',
      ],
    });
  });
  after(async () => {
    await p?.stop();
  });

  it('registers the node Ready with its pod CIDR, and runs a pod whose log the API server reads from the kubelet', async () => {
    const core = p.core;
    const n = await core.readNode({ name: 'node1' });
    assert.equal(n.spec?.podCIDR, '10.42.0.0/24', "the first slice of K3s's cluster CIDR");
    assert.ok(n.status?.addresses?.some((a) => a.type === 'InternalIP' && a.address === HOST));
    await core.createNamespacedPod({
      namespace: 'default',
      body: {
        metadata: { name: 'hello' },
        spec: {
          containers: [
            {
              name: 'sh',
              image: 'gardenos.local/tools:1',
              imagePullPolicy: 'Never',
              command: [
                'sh',
                '-c',
                `echo hello from $(hostname); printf 'GET /status HTTP/1.0\\r\\n\\r\\n' | nc -w 5 ${HOST} 8405 | head -n 1; nc -w 5 ${HOST} 5000 </dev/null && echo primary reachable; sleep 3600`,
              ],
            },
          ],
          securityContext: { runAsNonRoot: true, runAsUser: 65534 },
        },
      },
    });
    const pod = await waitFor(
      'the pod to run',
      async () => {
        const hello = await core.readNamespacedPod({ name: 'hello', namespace: 'default' });
        if (hello.status?.phase !== 'Running') {
          const events = (await core.listNamespacedEvent({ namespace: 'default', fieldSelector: 'involvedObject.name=hello' })).items.map(
            (e) => `${e.reason}: ${e.message}`,
          );
          throw new Error(
            `${hello.status?.phase}: ${JSON.stringify(hello.status?.containerStatuses?.[0]?.state ?? hello.status?.conditions)}; events: ${events.slice(-3).join(' | ')}`,
          );
        }
        return hello;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    // The pod's address is from its node's slice of the cluster CIDR.
    const podCidr = (await core.readNode({ name: pod.spec!.nodeName! })).spec!.podCIDR!;
    assert.match(podCidr, /^10\.42\.\d+\.0\/24$/);
    assert.equal(pod.status!.podIP!.split('.').slice(0, 3).join('.'), podCidr.split('.').slice(0, 3).join('.'), `${pod.status!.podIP} in ${podCidr}`);
    const log = await waitFor(
      'the pod to log both checks',
      async () => {
        const l = await core.readNamespacedPodLog({ name: 'hello', namespace: 'default' });
        if (!/primary reachable/.test(l)) throw new Error(`log so far: ${JSON.stringify(l)}`);
        return l;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    assert.match(log, /^hello from hello$/m);
    assert.match(log, /^HTTP\/1\.1 200 OK\r?$/m, 'the router answered over HTTP from the pod network');
  });

  it("runs the rendered platform: Patroni on GardenOS's image with local-path volumes elects a leader and a sync standby; the router keeps postgres-primary on it through `gardenos db switchover` (behind paused pooler pods: their clients see no failure) and a deleted leader pod; the API through Traefik over TLS; Supabase's gateway rules with stand-in backends (GoTrue, PostgREST, storage-api cannot be obtained here); postgres-exporter beside each member and Prometheus (Debian's) scraping the platform", async () => {
    const { cp, core, objects, settled, status, db } = p;
    assert.deepEqual(
      [
        ...new Set(
          objects.filter((o) => o.kind === 'StatefulSet' || o.kind === 'Deployment' || o.kind === 'DaemonSet').map((o) => `${o.kind}/${o.metadata?.name}`),
        ),
      ],
      [
        'Deployment/local-path-provisioner',
        'StatefulSet/sts',
        'StatefulSet/pgbackrest-repo',
        'Deployment/postgres-pooler',
        'Deployment/gardenos-router',
        'Deployment/auth',
        'Deployment/rest',
        'Deployment/storage',
        'Deployment/api',
        'DaemonSet/traefik',
        'StatefulSet/prometheus',
        'Deployment/alertmanager',
        'DaemonSet/node-exporter',
      ],
    );
    // What `gardenos up`'s manifests phase does: apply in the kustomization's order, wait for every rollout —
    // except Supabase's own workloads (`unobtainable`, above).
    const platform = objects.filter((o) => o.metadata?.namespace !== 'apps' && !unobtainable(o));
    await applyObjects(cp.admin(), platform, { report: silent });
    const primaryService = await waitFor("postgres-primary's Service", () => core.readNamespacedService({ name: 'postgres-primary', namespace: 'database' }), {
      timeoutMs: 10_000,
      intervalMs: 200,
    });
    const apiPassword = `api-${Math.random().toString(36).slice(2)}`;
    await core.createNamespacedSecret({
      namespace: 'apps',
      body: {
        metadata: { name: 'api-secrets' },
        stringData: { DATABASE_URL: `postgresql://api:${apiPassword}@${primaryService.spec!.clusterIP}:5432/api?sslmode=require` },
      },
    });
    await applyObjects(
      cp.admin(),
      objects.filter((o) => !unobtainable(o)),
      { report: silent },
    );
    await awaitRollouts(cp.admin(), platform, { report: silent, waitMs: 300_000 }).catch(async (e) => {
      throw new Error(`${(e as Error).message}; ${await p.podReport()}`);
    });
    // `gardenos up`'s backups phase, next: the stanza made and archiving proven (until then every archive_command fails,
    // and `status` says so).
    const { platformBackupCheck } = await import('../../src/platform/backups.ts');
    await platformBackupCheck(cp.admin(), p.config, silent);

    // Volumes: three members' claims and the backup repository's, bound by the local-path provisioner, each a directory under storage.path on its node.
    const pvcs = (await core.listNamespacedPersistentVolumeClaim({ namespace: 'database' })).items;
    assert.deepEqual(pvcs.map((c) => c.metadata!.name).sort(), ['pgdata-sts-0', 'pgdata-sts-1', 'pgdata-sts-2', 'repo-pgbackrest-repo-0']);
    for (const pvc of pvcs) {
      assert.equal(pvc.status?.phase, 'Bound', `${pvc.metadata?.name} is ${pvc.status?.phase}`);
      assert.equal(pvc.spec?.storageClassName, 'local-path');
      const pv = await core.readPersistentVolume({ name: pvc.spec!.volumeName! });
      assert.ok(pv.spec?.hostPath?.path?.startsWith(join(p.work, 'volumes')), `${pv.metadata?.name} at ${pv.spec?.hostPath?.path}`);
    }
    // The permissions step ran before Patroni, and the data directory belongs to the image's postgres user (999).
    const pods = (await core.listNamespacedPod({ namespace: 'database', labelSelector: 'application=spilo,cluster-name=sts' })).items;
    assert.equal(pods.length, 3);
    for (const pod of pods) assert.equal(pod.status?.initContainerStatuses?.[0]?.state?.terminated?.exitCode, 0, `${pod.metadata?.name}: volume-permissions`);
    // Required anti-affinity: one member per node.
    assert.deepEqual(pods.map((pod) => pod.spec?.nodeName).sort(), ['node1', 'node2', 'node3']);
    const dataDirs = (await run('sh', ['-c', `stat -c '%u %a' ${join(p.work, 'volumes')}/*/pgroot/data`])).stdout.trim().split('\n');
    assert.deepEqual(dataDirs, ['999 700', '999 700', '999 700']);

    // `gardenos status` on this platform: etcd, the three members (one leader, one synchronous standby), and postgres-primary.
    const first = await settled('bootstrap');
    assert.deepEqual(
      first.status.etcd.map((m) => m.healthy),
      [true, true, true],
    );
    assert.deepEqual(first.status.members.map((m) => m.name).sort(), ['sts-0', 'sts-1', 'sts-2']);
    assert.equal(first.status.kubernetes?.reachable, true);

    // postgres-exporter beside each member, on its node's address: it answers from the start but cannot log in
    // (pg_up 0) until its role exists — `gardenos up`'s database phase runs the rendered psql script on the leader
    // with the password's SCRAM verifier; here the same script, with psql from this machine. Then every member's
    // exporter reads its own PostgreSQL through the pod's socket, as pg_monitor.
    const exporter = async (host: string) => {
      const text = await (await fetch(`http://${host}:9187/metrics`, { signal: AbortSignal.timeout(5000) })).text();
      return { up: /^pg_up (\d)/m.exec(text)?.[1], size: Number(/^pg_database_size_bytes\{datname="postgres"\} (\S+)/m.exec(text)?.[1] ?? 0) };
    };
    const before = await waitFor('postgres-exporter to answer on node1', () => exporter(p.hosts[0]!.host), { timeoutMs: 60_000, intervalMs: 500 });
    assert.equal(before.up, '0', 'no role yet: the exporter cannot log in, and says so');
    const roleSql = (await renderPlatform(p.config, { secretsDir: p.secretsDir, withSecrets: false })).find((f) => f.path === MONITOR_ROLE_SQL)!;
    const sqlFile = join(p.work, 'monitoring-role.sql');
    await writeFile(sqlFile, roleSql.content);
    const secrets = await readPlatformSecrets(p.secretsDir);
    await run(
      'psql',
      [
        '-X',
        '-q',
        '-v',
        `verifier=${scramVerifier(secrets.monitorPassword!)}`,
        '-f',
        sqlFile,
        `host=${first.leader.host} port=5432 user=postgres dbname=postgres sslmode=verify-ca sslrootcert=${join(p.secretsDir, 'pki', 'ca.crt')}`,
      ],
      { env: { ...process.env, PGPASSWORD: secrets.superuserPassword } },
    );
    for (const { host } of p.hosts) {
      const after = await waitFor(
        `postgres-exporter on ${host} to log in`,
        async () => {
          const e = await exporter(host);
          if (e.up !== '1') throw new Error(`pg_up ${e.up}`);
          return e;
        },
        { timeoutMs: 60_000, intervalMs: 500 },
      );
      assert.ok(after.size > 0, `${host}: the postgres database's size, read as pg_monitor`);
    }
    // Prometheus on these nodes scrapes every member's etcd (over mutual TLS with its own client certificate),
    // Patroni and postgres-exporter, each node's node-exporter, and both router pods (found by cluster DNS: the
    // headless Service's A records), with the rules loaded, and sends alerts to Alertmanager by its DNS name.
    const promPod = (await core.listNamespacedPod({ namespace: 'gardenos-system', labelSelector: 'app.kubernetes.io/name=prometheus' })).items[0]!;
    const prom = `http://${promPod.status!.podIP}:9090`;
    const targets = await waitFor(
      'Prometheus to scrape etcd, Patroni, postgres-exporter and node-exporter on every member, and both routers',
      async () => {
        const r = (await (await fetch(`${prom}/api/v1/targets?state=active`, { signal: AbortSignal.timeout(5000) })).json()) as {
          data: { activeTargets: { labels: { job: string; instance: string }; health: string; lastError: string }[] };
        };
        const byJob = new Map<string, string[]>();
        for (const t of r.data.activeTargets)
          byJob.set(t.labels.job, [...(byJob.get(t.labels.job) ?? []), `${t.labels.instance} ${t.health} ${t.lastError}`.trim()]);
        const want = { etcd: 3, patroni: 3, postgres: 3, node: 3, router: 2 };
        if (!Object.entries(want).every(([j, n]) => byJob.get(j)?.length === n && byJob.get(j)!.every((t) => / up$/.test(t))))
          throw new Error(JSON.stringify(Object.fromEntries(byJob)));
        return byJob;
      },
      { timeoutMs: 120_000, intervalMs: 1000 },
    );
    assert.deepEqual(
      targets
        .get('node')!
        .map((t) => t.split(':')[0])
        .sort(),
      p.hosts.map((h) => h.host).sort(),
      "node-exporter on each node's own address",
    );
    const rules = (await (await fetch(`${prom}/api/v1/rules`)).json()) as { data: { groups: { name: string; rules: { name: string; health: string }[] }[] } };
    const loaded = rules.data.groups.flatMap((g) => g.rules);
    assert.ok(loaded.length >= 10 && loaded.every((r) => r.health !== 'err'), JSON.stringify(loaded.filter((r) => r.health === 'err')));
    await waitFor(
      'Prometheus to find Alertmanager',
      async () => {
        const r = (await (await fetch(`${prom}/api/v1/alertmanagers`)).json()) as { data: { activeAlertmanagers: { url: string }[] } };
        if (r.data.activeAlertmanagers.length !== 1) throw new Error(JSON.stringify(r.data));
        return true;
      },
      { timeoutMs: 60_000, intervalMs: 1000 },
    );
    // Status probes have deadlines of their own (2 s): on a loaded machine one may miss, so the view is awaited, not sampled once.
    const problemsBecome = (want: string[], why: string) =>
      waitFor(
        why,
        async () => {
          const got = (await status()).problems;
          if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`problems: ${JSON.stringify(got)}`);
          return true;
        },
        { timeoutMs: 60_000, intervalMs: 1000 },
      );
    await problemsBecome(['Deployment apps/api: 0/1 ready'], 'status to see the one thing wrong: the API, whose role does not exist yet');

    // The API runs but is not ready: its role does not exist, so /ready answers 503 and the Service has no endpoint.
    const apps = cp.admin().makeApiClient(AppsV1Api);
    const apiReady = async () => (await apps.readNamespacedDeployment({ name: 'api', namespace: 'apps' })).status?.readyReplicas ?? 0;
    await waitFor(
      'the API pod to run (and say it is not ready)',
      async () => {
        const pod = (await core.listNamespacedPod({ namespace: 'apps', labelSelector: 'app.kubernetes.io/name=api' })).items[0];
        const log = pod ? await core.readNamespacedPodLog({ name: pod.metadata!.name!, namespace: 'apps' }).catch(() => '') : '';
        if (!/"msg": "not ready"/.test(log)) throw new Error(`pod ${pod?.status?.phase}; log: ${log.slice(-300)}`);
        return true;
      },
      { timeoutMs: 120_000, intervalMs: 500 },
    );
    assert.equal(await apiReady(), 0, 'not ready while the database refuses it');
    // The database lets it in: the role and its database, as an operator would create them.
    const admin = db(first.leader.host);
    await admin.connect();
    await admin.query(`CREATE ROLE api LOGIN PASSWORD '${apiPassword}'`);
    await admin.query('CREATE DATABASE api OWNER api');
    await admin.end();
    await waitFor('the API to turn ready', async () => (await apiReady()) === 1 || undefined, { timeoutMs: 60_000, intervalMs: 500 });
    await problemsBecome([], 'status to find nothing wrong with this cluster');

    // Through the ingress: a node's HTTPS port → Traefik (the rendered DaemonSet) → the API pod → postgres-primary → the leader.
    // The certificate is GardenOS's (tls: internal), checked against its CA for the host's name.
    const ca = await readFile(join(p.secretsDir, 'pki', 'ca.crt'), 'utf8');
    const ready = await waitFor(
      'the route to the API through Traefik',
      async () => {
        const r = await viaIngress({ path: '/ready', ca });
        if (r.status !== 200) throw new Error(`${r.status} ${r.body.slice(0, 200)}`);
        return r;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    ).catch(async (e) => {
      const nat = (await run('iptables', ['-w', '-t', 'nat', '-S'])).stdout.split('\n').filter((l) => l.includes(String(HTTPS_PORT)));
      throw new Error(`${(e as Error).message}; ${(e as { details?: string[] }).details?.join(' ')}; nat: ${nat.join(' | ')}; ${await p.podReport()}`);
    });
    assert.match(ready.body, /ready/);
    const created = await viaIngress({ path: '/items', method: 'POST', body: JSON.stringify({ name: 'first seed' }), ca });
    assert.equal(created.status, 201, created.body);
    const item = JSON.parse(created.body) as { id: number; name: string };
    // Each node's port serves the route (whichever node a DNS name or floating address sends a client to).
    for (const node of [1, 2, 3].map((i) => `10.251.${OCTET}.${i}`)) {
      const read = await viaIngress({ path: `/items/${item.id}`, ca, node });
      assert.equal(read.status, 200, `${node}: ${read.body}`);
      assert.equal((JSON.parse(read.body) as { name: string }).name, 'first seed');
    }
    assert.equal((await viaIngress({ path: '/items', method: 'POST', body: '{"name": ""}', ca })).status, 422, 'bad input gets a clear refusal');
    // A host no route names is not served (404, with Traefik's own certificate); plain HTTP is sent to HTTPS on the node's port.
    const stranger = await viaIngress({ path: '/ready', host: 'nobody.it-node.test' });
    assert.equal(stranger.status, 404, stranger.body);
    const plain = await viaIngress({ path: '/ready', tls: false });
    assert.ok([301, 308].includes(plain.status), `plain HTTP: ${plain.status}`);
    assert.equal(plain.headers.location, `https://${API_HOST}:${HTTPS_PORT}/ready`);

    // Supabase's gateway rules, in Traefik with gateway-auth beside it (the router image). GoTrue, PostgREST and
    // storage-api cannot be obtained here (above), so a busybox httpd stands behind each of their rendered Services,
    // answering "<service> <path it received>": what the rules let through, and where, is what is proven.
    const { supabase: keys } = await readPlatformSecrets(p.secretsDir);
    const gw = (path: string, headers: Record<string, string> = {}, method = 'GET') => viaIngress({ path, ca, headers, method });
    // Before any backend runs: a keyed request gets 503 from its own route, never the app's answer on the same host's "/".
    const early = await gw('/rest/v1/notes', { apikey: keys.anonKey });
    assert.equal(early.status, 503, `no backend yet: ${early.status} ${early.body.slice(0, 200)}`);
    const backends = {
      auth: { port: 9999, files: ['verify', 'callback', 'authorize', 'user'] },
      rest: { port: 3000, files: ['notes'] },
      storage: { port: 5000, files: ['object/public/avatar.png'] },
    };
    for (const [name, b] of Object.entries(backends)) {
      const files = b.files.map((f) => `mkdir -p "$(dirname /tmp/www/${f})" && echo "${name} /${f}" > /tmp/www/${f}`).join(' && ');
      await core.createNamespacedPod({
        namespace: 'supabase',
        body: {
          metadata: { name: `stand-in-${name}`, labels: { 'app.kubernetes.io/name': name, 'app.kubernetes.io/part-of': 'gardenos' } },
          spec: {
            containers: [
              {
                name,
                image: 'gardenos.local/tools:1',
                command: ['sh', '-c', `${files} && exec busybox httpd -f -p ${b.port} -h /tmp/www`],
                ports: [{ name: 'http', containerPort: b.port }],
                securityContext: { runAsNonRoot: true, allowPrivilegeEscalation: false },
              },
            ],
          },
        },
      });
    }
    // Until a stand-in is ready its route answers 503 (allowEmptyServices), never another route's answer.
    await waitFor(
      'every stand-in to answer through the gateway',
      async () => {
        for (const [path, headers] of [
          ['/auth/v1/verify', {}],
          ['/rest/v1/notes', { apikey: keys.anonKey }],
          ['/storage/v1/object/public/avatar.png', {}],
        ] as const) {
          const r = await gw(path, headers);
          if (r.status !== 200) throw new Error(`${path}: ${r.status} ${r.body.slice(0, 200)}`);
        }
        return true;
      },
      { timeoutMs: 90_000, intervalMs: 500 },
    );
    const seen = async (path: string, headers?: Record<string, string>) => {
      const r = await gw(path, headers);
      return `${r.status} ${r.body.trim()}`;
    };
    assert.deepEqual(
      {
        noKey: await seen('/rest/v1/notes'),
        wrongKey: await seen('/rest/v1/notes', { apikey: 'not-a-key' }),
        anonHeader: await seen('/rest/v1/notes', { apikey: keys.anonKey }),
        anonQuery: await seen(`/rest/v1/notes?select=*&apikey=${keys.anonKey}`),
        authNoKey: await seen('/auth/v1/user'),
        authService: await seen('/auth/v1/user', { apikey: keys.serviceRoleKey }),
        verify: await seen('/auth/v1/verify?token=t&type=signup'),
        callback: await seen('/auth/v1/callback?code=c'),
        authorize: await seen('/auth/v1/authorize?provider=github'),
        storage: await seen('/storage/v1/object/public/avatar.png'),
      },
      {
        noKey: '401 {"message":"No API key found in request"}',
        wrongKey: '401 {"message":"Invalid authentication credentials"}',
        anonHeader: '200 rest /notes',
        anonQuery: '200 rest /notes',
        authNoKey: '401 {"message":"No API key found in request"}',
        authService: '200 auth /user',
        verify: '200 auth /verify',
        callback: '200 auth /callback',
        authorize: '200 auth /authorize',
        storage: '200 storage /object/public/avatar.png',
      },
    );
    // A browser's CORS preflight is answered without a key (it cannot carry one), for any origin, as Kong's cors plugin does.
    const preflight = await gw(
      '/rest/v1/notes',
      { origin: 'https://app.example.com', 'access-control-request-method': 'POST', 'access-control-request-headers': 'apikey,authorization,content-type' },
      'OPTIONS',
    );
    assert.equal(preflight.status, 200, preflight.body);
    assert.equal(preflight.headers['access-control-allow-origin'], '*');
    assert.match(String(preflight.headers['access-control-allow-headers']), /apikey/i);

    // A writer in the cluster (a pod): one INSERT per connection through postgres-primary's Service address,
    // logging each acknowledged id. Nothing it was told is committed may be lost.
    const writer = await p.startWriter();
    // And one through the pooler's Service: it must not see a single failure through the planned switchover.
    const pooledWriter = await p.startWriter({ pooled: true });
    await writer.more(20, 'before the switchover');
    await pooledWriter.more(20, 'before the switchover');
    const pooledBefore = await pooledWriter.read();
    assert.equal(pooledBefore.failed, 0, `the pooled writer failed before any switchover: ${pooledBefore.tail}`);

    // A planned switchover with the production command: every pooler pod paused, the router moves
    // postgres-primary, each pod resumed once its own route reaches the new leader.
    const sw = await p.c.cli([
      'db',
      'switchover',
      '--config',
      p.configFile,
      '--secrets-dir',
      p.secretsDir,
      '--kubeconfig',
      cp.adminKubeconfigFile,
      '--yes',
      '--json',
    ]);
    assert.equal(sw.code, 0, sw.stderr);
    const switched = await settled('after the switchover', first.leader.name);
    const swResult = JSON.parse(sw.stdout) as { after: { leader: string }; pausedMs: number; pods: string[] };
    assert.equal(swResult.after.leader, switched.leader.name);
    assert.equal(swResult.pods.length, 2, 'both pooler pods were paused and resumed');
    assert.match(sw.stderr, /resume/, `progress per pod: ${sw.stderr}`);
    await pooledWriter.more(20, 'after the switchover');
    const pooledAfter = await pooledWriter.read();
    assert.equal(
      pooledAfter.failed,
      0,
      `a client of the pooler saw a failure through a planned switchover (paused ${swResult.pausedMs} ms): ${pooledAfter.tail}`,
    );
    const pooledIds = pooledAfter.acked.map((a) => a.id);
    const pooledCheck = db(switched.leader.host);
    await pooledCheck.connect();
    const pooledRows = await pooledCheck.query<{ id: number }>(`SELECT id FROM ${pooledWriter.table} WHERE id = ANY($1::int[])`, [pooledIds]);
    await pooledCheck.end();
    assert.equal(pooledRows.rows.length, pooledIds.length, 'every write the pooled writer saw acknowledged is on the new leader');

    // `gardenos dashboard` on the platform (its page is driven in a browser by the monitoring test): the view it
    // serves names the new leader, and postgres-primary as Kubernetes routes it.
    const view = await firstDashboardView([], ['--config', p.configFile, '--secrets-dir', p.secretsDir, '--kubeconfig', cp.adminKubeconfigFile]);
    assert.equal(view.profile, 'platform');
    assert.deepEqual({ primary: view.routes.primary, source: view.routes.source }, { primary: switched.leader.name, source: 'Kubernetes (the router)' });
    assert.equal(view.members.find((m) => m.role === 'leader')?.name, switched.leader.name);
    assert.deepEqual(
      view.etcd.map((e) => e.name),
      (await status()).etcd.map((e) => e.name),
      'the same etcd members as `gardenos status`',
    );

    // The leader's pod deleted: Patroni stops on SIGTERM and hands over; the StatefulSet brings the pod back as a replica.
    await core.deleteNamespacedPod({ name: switched.leader.name, namespace: 'database' });
    const after = await settled('after the leader pod was deleted', switched.leader.name);
    await waitFor(
      'the deleted pod to rejoin as a running replica',
      async () => {
        const s = await status();
        const m = s.members.find((x) => x.name === switched.leader.name);
        if (m?.state !== 'streaming') throw new Error(`${switched.leader.name}: ${m?.role}/${m?.state}`);
        return true;
      },
      { timeoutMs: 120_000, intervalMs: 500 },
    );
    assert.notEqual(after.leader.name, switched.leader.name);

    // Every write the writer saw acknowledged is on the leader, through a switchover and a deleted leader pod.
    await writer.more(20, 'after the leader pod was deleted');
    const { acked, failed: failures } = await writer.read();
    const ackedIds = acked.map((a) => a.id);
    const check = db(after.leader.host);
    await check.connect();
    const { rows } = await check.query<{ id: number }>('SELECT id FROM writes WHERE id = ANY($1::int[])', [ackedIds]);
    await check.end();
    const stored = new Set(rows.map((r) => r.id));
    const lost = ackedIds.filter((id) => !stored.has(id));
    assert.deepEqual(lost, [], `${lost.length} of ${ackedIds.length} acknowledged writes lost (${failures} refused during the moves)`);
    assert.ok(failures > 0, 'the writer did see the primary move (some INSERTs failed while it did)');

    // The PodDisruptionBudget (maxUnavailable 1): a drain may evict one member, never a second while the first is away.
    const policy = cp.admin().makeApiClient(PolicyV1Api);
    await waitFor(
      'the PodDisruptionBudget to allow one disruption',
      async () => (await policy.readNamespacedPodDisruptionBudget({ name: 'sts', namespace: 'database' })).status?.disruptionsAllowed === 1 || undefined,
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    // The members' names from a settled view (a status whose Patroni probes missed their deadline names hosts, not pods).
    const replicas = (await settled('before the evictions')).status.members.filter((m) => m.role !== 'leader').map((m) => m.name);
    const evict = (name: string) => core.createNamespacedPodEviction({ name, namespace: 'database', body: { metadata: { name, namespace: 'database' } } });
    await evict(replicas[0]!);
    await assert.rejects(
      evict(replicas[1]!),
      (e: { code?: number; body?: string }) => e.code === 429 && /disruption budget/.test(String(e.body)),
      'the second eviction is refused',
    );
  });

  it("backs up the platform with pgBackRest: the stanza made and WAL archiving proven from the repository's pod, a full backup restore-tested by its Job, archiving that follows the leader through a switchover, a differential from a standby; the CronJobs carry the schedules", async () => {
    const { cp, core, settled } = p;
    const gardenos = (...args: string[]) =>
      p.c.cli([...args, '--config', p.configFile, '--secrets-dir', p.secretsDir, '--kubeconfig', cp.adminKubeconfigFile, '--json']);
    const kc = cp.admin();
    const { BatchV1Api } = await import('@kubernetes/client-node');
    const crons = (await kc.makeApiClient(BatchV1Api).listNamespacedCronJob({ namespace: 'database' })).items;
    assert.deepEqual(crons.map((c) => [c.metadata!.name, c.spec!.schedule, c.spec!.concurrencyPolicy]).sort(), [
      ['pgbackrest-diff', '0 0 2 1 *', 'Forbid'],
      ['pgbackrest-full', '0 0 1 1 *', 'Forbid'],
    ]);
    const start = await settled('before the backups');
    // What `gardenos up`'s backups phase does first (done once after the rollout, above; idempotent): the stanza, and
    // `pgbackrest check` — a WAL switch on the primary seen in the repository, over mutual TLS from the member's pod to the repository's.
    const { platformBackupCheck } = await import('../../src/platform/backups.ts');
    await platformBackupCheck(kc, p.config, silent);

    // A full backup now, as the schedule takes it (a Job from the CronJob's template), from a standby, then its restore test.
    const full = await gardenos('db', 'backup', '--type', 'full');
    assert.equal(full.code, 0, `${full.stderr}\n${await p.podReport()}`);
    const fullResult = JSON.parse(full.stdout) as {
      job: string;
      backup: { label: string; type: string };
      verify: { ok: boolean; label: string; databases: number } | null;
    };
    assert.equal(fullResult.backup.type, 'full');
    assert.deepEqual(
      [fullResult.verify?.ok, fullResult.verify?.label],
      [true, fullResult.backup.label],
      'the Job restored the backup it took, and pg_amcheck found it clean',
    );
    assert.ok((fullResult.verify?.databases ?? 0) >= 2, 'postgres and template1 at least, connectable in the restored copy');
    assert.match(full.stderr, /backup/, `progress on stderr: ${full.stderr}`);

    // Archiving follows the primary: after a switchover, `pgbackrest check` from the repository's pod — a WAL switch on
    // the new leader, seen in the repository — and a row's segment in the repository on the new timeline.
    const sw = await gardenos('db', 'switchover', '--yes');
    assert.equal(sw.code, 0, sw.stderr);
    const moved = await settled('after the backup switchover', start.leader.name);
    const leaderLog = async () => {
      const log = await core.readNamespacedPodLog({ name: moved.leader.name, namespace: 'database', container: 'postgres', tailLines: 60 }).catch(String);
      return `${moved.leader.name}'s log:\n${log}`;
    };
    await platformBackupCheck(kc, p.config, silent).catch(async (e: Error) => {
      throw new Error(`${e.message} ${JSON.stringify((e as { details?: string[] }).details)}; ${await leaderLog()}`);
    });
    const leader = p.db(moved.leader.host);
    await leader.connect();
    let segment: string;
    try {
      await leader.query('CREATE TABLE IF NOT EXISTS backed_up (id int)');
      await leader.query('INSERT INTO backed_up VALUES (1)');
      segment = (await leader.query<{ f: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS f')).rows[0]!.f;
      await waitFor(
        `segment ${segment} archived by the new leader`,
        async () => {
          const a = (
            await leader.query<{ last: string | null; failed: string }>('SELECT last_archived_wal AS last, failed_count AS failed FROM pg_stat_archiver')
          ).rows[0]!;
          if (!a.last || a.last < segment) throw new Error(`last archived ${a.last}, ${a.failed} failures`);
          return true;
        },
        { timeoutMs: 120_000, intervalMs: 1_000 },
      ).catch(async (e: Error) => {
        throw new Error(`${e.message} ${JSON.stringify((e as { details?: string[] }).details)}; ${await leaderLog()}`);
      });
    } finally {
      await leader.end();
    }
    // The differential: after the full one, from a standby of the new leader.
    const diff = await gardenos('db', 'backup', '--type', 'diff');
    assert.equal(diff.code, 0, diff.stderr);
    const list = await gardenos('db', 'backup', 'list');
    assert.equal(list.code, 0, list.stderr);
    const info = JSON.parse(list.stdout) as {
      status: string;
      backups: { label: string; type: string; prior: string | null }[];
      archive: { max: string | null };
      lastVerify: { ok: boolean; label: string } | null;
    };
    assert.equal(info.status, 'ok');
    assert.deepEqual(
      info.backups.map((b) => [b.type, b.prior]),
      [
        ['full', null],
        ['diff', fullResult.backup.label],
      ],
    );
    assert.ok(info.archive.max && info.archive.max >= segment, `the repository's newest WAL ${info.archive.max} reaches ${segment}`);
    assert.equal(segment.slice(0, 8) > '00000001', true, `the leader's segment ${segment} is on a later timeline than the first`);
    assert.deepEqual([info.lastVerify?.ok, info.lastVerify?.label], [true, fullResult.backup.label]);
    // `gardenos status` reads the same from the repository's pod: the newest backup, how far WAL is archived, the restore test.
    const st = await p.status();
    assert.deepEqual(
      [st.backups?.reachable, st.backups?.newest?.label, st.backups?.lastVerify?.ok, st.backups?.archivedTo !== null],
      [true, info.backups[1]!.label, true, true],
      JSON.stringify(st.backups),
    );
    assert.ok(!st.problems.some((x) => /backup|restore test/.test(x)), st.problems.join('; '));
    assert.equal(st.backups?.archiver?.failing, false, "the leader's archiver, read in its pod");
    // An unwritable repository (its archive made read-only in the repository's pod, as the local profile's test does to
    // its directory): the leader's archive_command fails, and `status` says so with pgBackRest's own error from the
    // leader's log; made writable again, archiving catches up and the problem goes.
    const inRepo = (script: string) =>
      execInPod(kc, { namespace: 'database', pod: 'pgbackrest-repo-0', container: 'pgbackrest' }, ['sh', '-c', script], 30_000);
    const switchWal = async () => {
      const l = p.db(moved.leader.host);
      await l.connect();
      try {
        await l.query('INSERT INTO backed_up VALUES (2)');
        await l.query('SELECT pg_switch_wal()');
      } finally {
        await l.end();
      }
    };
    await inRepo('chmod -R a-w /var/lib/pgbackrest/archive');
    try {
      await switchWal();
      const failing = await waitFor(
        'status to say archiving fails',
        async () => {
          const s = await p.status();
          const found = s.problems.find((x) => x.startsWith('WAL archiving is failing'));
          if (!found) throw new Error(s.problems.join('; '));
          return found;
        },
        { timeoutMs: 120_000, intervalMs: 2_000 },
      );
      assert.match(
        failing,
        new RegExp(
          `^WAL archiving is failing on ${moved.leader.name} \\(segment [0-9A-F]{24}, last failure [^)]+\\): ERROR: \\[\\d+\\]: .*Permission denied.*kubectl -n database logs ${moved.leader.name} -c postgres\`$`,
        ),
      );
    } finally {
      await inRepo('chmod -R u+w /var/lib/pgbackrest/archive');
    }
    // A new segment wakes the archiver at once (it would retry within a minute anyway).
    await switchWal();
    await waitFor(
      'archiving to catch up',
      async () => {
        const s = await p.status();
        if (!s.backups?.reachable || s.backups.archiver?.failing !== false) throw new Error(`${JSON.stringify(s.backups)}; ${s.problems.join('; ')}`);
        return true;
      },
      { timeoutMs: 180_000, intervalMs: 2_000 },
    );
    // The Jobs ran without an API token and left their pods for `kubectl logs`.
    const jobPods = (await core.listNamespacedPod({ namespace: 'database', labelSelector: 'app.kubernetes.io/name=pgbackrest-backup' })).items;
    assert.equal(jobPods.length, 2);
    for (const pod of jobPods) {
      assert.equal(pod.status?.phase, 'Succeeded', `${pod.metadata?.name}: ${pod.status?.phase}`);
      assert.equal(pod.spec?.automountServiceAccountToken, false);
    }
  });

  it('restores the platform to a point in time with `gardenos db restore --to`: rows before it present, rows after it gone, member 0 the leader of all three on a new timeline, a safety backup before and a full backup after; refused without --yes and before the first backup, changing nothing', async () => {
    const { cp, core, settled } = p;
    const gardenos = (...args: string[]) =>
      p.c.cli([...args, '--config', p.configFile, '--secrets-dir', p.secretsDir, '--kubeconfig', cp.adminKubeconfigFile, '--json']);
    const start = await settled('before the restore');
    const leader = p.db(start.leader.host);
    await leader.connect();
    let target: string;
    let timeline: number;
    try {
      await leader.query('CREATE TABLE pitr (id int PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())');
      for (let id = 1; id <= 5; id++) await leader.query('INSERT INTO pitr (id) VALUES ($1)', [id]);
      // The target: the server's clock after the fifth row committed, before the sixth.
      target = (await leader.query<{ t: Date }>('SELECT clock_timestamp() AS t')).rows[0]!.t.toISOString();
      await waitFor(
        'the clock to pass the target',
        async () => (await leader.query<{ ok: boolean }>('SELECT clock_timestamp() > $1::timestamptz AS ok', [target])).rows[0]!.ok,
        {
          timeoutMs: 10_000,
          intervalMs: 50,
        },
      );
      for (let id = 6; id <= 10; id++) await leader.query('INSERT INTO pitr (id) VALUES ($1)', [id]);
      timeline = await timelineOf(leader);
    } finally {
      await leader.end();
    }

    // Refused without --yes (no terminal here) and refused before the first backup: the leader and the rows stay.
    const unconfirmed = await gardenos('db', 'restore', '--to', target);
    assert.notEqual(unconfirmed.code, 0);
    assert.match(unconfirmed.stderr, /without confirmation[\s\S]*--yes/, unconfirmed.stderr);
    const early = await gardenos('db', 'restore', '--to', '2001-01-01T00:00:00Z', '--yes');
    assert.notEqual(early.code, 0);
    assert.match(early.stderr, /before the first backup/, early.stderr);
    assert.equal((await settled('after the refusals')).leader.name, start.leader.name, 'nothing was changed');

    // Beside the cluster first: the same point in a pod of its own, read through kubectl exec; the cluster untouched.
    const beside = await gardenos('db', 'restore', '--to', target, '--beside');
    assert.equal(beside.code, 0, `${beside.stderr}\n${await p.podReport()}`);
    const b = JSON.parse(beside.stdout) as { pod: string; psql: string };
    assert.match(b.psql, /^kubectl -n database exec -it pgbackrest-beside -- psql /);
    const read = await execInPod(
      cp.admin(),
      { namespace: 'database', pod: b.pod, container: 'pgbackrest' },
      ['psql', '-X', '-At', '-h', '/tmp/beside/run', '-U', 'postgres', '-d', 'postgres', '-c', 'SELECT id FROM pitr ORDER BY id'],
      30_000,
    );
    assert.deepEqual(read.stdout.trim().split('\n').map(Number), [1, 2, 3, 4, 5], 'the rows up to the target, beside the cluster');
    const twice = await gardenos('db', 'restore', '--to', target, '--beside');
    assert.notEqual(twice.code, 0);
    assert.match(twice.stderr, /already runs[\s\S]*--stop-beside/, 'one at a time');
    const stopped = await gardenos('db', 'restore', '--stop-beside');
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.deepEqual(JSON.parse(stopped.stdout), { stopped: true });
    const untouched = await settled('after the restore beside');
    assert.equal(untouched.leader.name, start.leader.name);
    const still = p.db(untouched.leader.host);
    await still.connect();
    try {
      assert.equal((await still.query<{ n: string }>('SELECT count(*) AS n FROM pitr')).rows[0]!.n, '10', 'the cluster keeps every row');
    } finally {
      await still.end();
    }

    const restored = await gardenos('db', 'restore', '--to', target, '--yes', '--timeout', '600');
    assert.equal(restored.code, 0, `${restored.stderr}\n${await p.podReport()}`);
    const r = JSON.parse(restored.stdout) as PitrResult;
    assert.equal(r.target, target);
    assert.equal(r.leader, `${p.config.postgres.scope}-0`);
    assert.ok(r.safetyBackup, 'an incremental backup of the state before the restore');
    for (const step of ['safety backup', 'stop', 'prepare', 'restore', 'replicas', 'full backup'])
      assert.match(restored.stderr, new RegExp(step), `progress names the step ${step}: ${restored.stderr}`);
    assert.equal((await stat(r.dcsBackup)).mode & 0o777, 0o600, "Patroni's old keys kept, 0600");

    const after = await settled('after the restore', undefined, 300_000);
    assert.equal(after.leader.name, r.leader);
    const db = p.db(after.leader.host);
    await db.connect();
    try {
      const ids = (await db.query<{ id: number }>('SELECT id FROM pitr ORDER BY id')).rows.map((x) => x.id);
      assert.deepEqual(ids, [1, 2, 3, 4, 5], 'the rows committed before the target, and none after');
      const now = await timelineOf(db);
      assert.ok(now > timeline, `a new timeline: ${now} after ${timeline}`);
      await db.query('INSERT INTO pitr (id) VALUES (6)');
    } finally {
      await db.end();
    }
    // The repository: the safety backup, then the restored cluster's first full backup, newest; the schedules resumed.
    const list = JSON.parse((await gardenos('db', 'backup', 'list')).stdout) as { backups: { label: string; type: string }[] };
    assert.deepEqual(
      list.backups.slice(-2).map((b) => [b.label, b.type]),
      [
        [r.safetyBackup, 'incr'],
        [r.newBackup, 'full'],
      ],
    );
    const { BatchV1Api } = await import('@kubernetes/client-node');
    const crons = (await cp.admin().makeApiClient(BatchV1Api).listNamespacedCronJob({ namespace: 'database' })).items;
    assert.deepEqual(
      crons.map((c) => [c.metadata!.name, Boolean(c.spec!.suspend)]),
      crons.map((c) => [c.metadata!.name, false]),
    );
    // Replicas: members 1 and 2 were copied from the restored leader — every backup then was of the old history, and the
    // replica method's script declined the newest, naming the timelines — and `db reinit` now restores the new full backup.
    const scope = p.config.postgres.scope;
    const log = async (name: string) => String(await core.readNamespacedPodLog({ name, namespace: 'database', container: 'postgres' }));
    for (const m of [`${scope}-1`, `${scope}-2`]) assert.match(await log(m), /is on timeline \d+, the leader on \d+: copying from the leader/, `${m}'s log`);
    const reinit = await p.c.cli(['db', 'reinit', `${scope}-1`, '--yes', '--config', p.configFile, '--secrets-dir', p.secretsDir]);
    assert.equal(reinit.code, 0, reinit.stderr);
    await settled('after a reinit from the repository', undefined, 300_000);
    assert.match(await log(`${scope}-1`), new RegExp(`restoring the newest backup, ${r.newBackup} \\(\\d+ s old, timeline \\d+\\), as a standby`));
    // The pods that moved the data directories aside and removed them are gone.
    const helpers = await core.listNamespacedPod({ namespace: 'database', labelSelector: 'app.kubernetes.io/name=postgres-restore' });
    assert.deepEqual(
      helpers.items.map((x) => x.metadata!.name),
      [],
    );
  });

  it('`gardenos doctor` finds each journal failure caused on this cluster, with its fix, and passes once it is undone', async () => {
    const { cp, core } = p;
    type Report = { healthy: boolean; findings: { id: string; status: string; summary: string; fix?: string; evidence: string[] }[] };
    const doctor = async () => {
      // --no-ssh: these nodes run no SSH server (kubelets in this machine's network namespace); the SSH-read
      // host-units check is proven on hosts that boot systemd (systemd-hosts.test.ts).
      const r = await p.c.cli([
        'doctor',
        '--config',
        p.configFile,
        '--secrets-dir',
        p.secretsDir,
        '--kubeconfig',
        cp.adminKubeconfigFile,
        '--no-ssh',
        '--json',
      ]);
      return JSON.parse(r.stdout) as Report;
    };
    const finding = async (id: string, want: 'ok' | 'fail', what: string) =>
      waitFor(
        `doctor's ${id} to be ${want} (${what})`,
        async () => {
          const f = (await doctor()).findings.find((x) => x.id === id)!;
          if (f.status !== want) throw new Error(`${f.status}: ${f.summary}; evidence: ${f.evidence.join(' | ').slice(0, 600)}`);
          return f;
        },
        { timeoutMs: 120_000, intervalMs: 1000 },
      );
    // Healthy first (the member evicted above is back), every check passing but none skipped for want of facts.
    const healthy = await waitFor(
      'doctor to find nothing wrong',
      async () => {
        const r = await doctor();
        if (!r.healthy)
          throw new Error(
            r.findings
              .filter((f) => f.status !== 'ok')
              .map((f) => `${f.id}: ${f.status} ${f.summary}`)
              .join('; '),
          );
        return r;
      },
      { timeoutMs: 180_000, intervalMs: 1000 },
    );
    assert.deepEqual(
      healthy.findings.filter((f) => f.status === 'skip').map((f) => f.id),
      ['host-units'],
      'nothing skipped but what --no-ssh leaves out',
    );

    // A pooler pod left paused (a switchover killed between PAUSE and RESUME): PgBouncer's own SHOW STATE says so.
    const [poolerPod] = await readyPoolerPods(cp.admin(), p.config);
    const admin = (command: string) =>
      execInPod(cp.admin(), { namespace: 'database', pod: poolerPod!, container: 'pgbouncer' }, ['psql', '-X', '-d', 'pgbouncer', '-c', command], 20_000);
    await admin('PAUSE');
    try {
      const paused = await finding('pooler', 'fail', 'a pooler pod paused');
      assert.match(paused.summary, new RegExp(`${poolerPod} paused`));
      assert.match(paused.fix ?? '', /psql -d pgbouncer -c RESUME/);
    } finally {
      await admin('RESUME');
    }
    await finding('pooler', 'ok', 'resumed');

    // No default StorageClass (the journal's PVCs stuck Pending).
    const storage = cp.admin().makeApiClient(StorageV1Api);
    const defaultClass = (v: string) =>
      storage.patchStorageClass(
        { name: 'local-path', body: { metadata: { annotations: { 'storageclass.kubernetes.io/is-default-class': v } } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
    await defaultClass('false');
    assert.match((await finding('k8s-default-storage-class', 'fail', 'annotation removed')).fix ?? '', /kubectl patch storageclass local-path/);
    await defaultClass('true');
    await finding('k8s-default-storage-class', 'ok', 'annotation back');

    // A control-plane taint on a hybrid server (workloads cannot schedule there).
    const taint = (taints: { key: string; effect: string }[]) =>
      core.patchNode({ name: 'node3', body: { spec: { taints } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    await taint([{ key: 'node-role.kubernetes.io/control-plane', effect: 'NoSchedule' }]);
    assert.match(
      (await finding('k8s-control-plane-taint', 'fail', 'node3 tainted')).fix ?? '',
      /kubectl taint node node3 node-role\.kubernetes\.io\/control-plane:NoSchedule-/,
    );
    await taint([]);
    await finding('k8s-control-plane-taint', 'ok', 'taint removed');

    // postgres-primary pointing at a replica while the router is down (the journal's writes to the wrong pod).
    const apps = cp.admin().makeApiClient(AppsV1Api);
    const scaleRouter = (replicas: number) =>
      apps.patchNamespacedDeploymentScale(
        { name: 'gardenos-router', namespace: 'database', body: { spec: { replicas } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
    await scaleRouter(0);
    await waitFor(
      'the router pods to be gone',
      async () =>
        (await core.listNamespacedPod({ namespace: 'database', labelSelector: 'app.kubernetes.io/name=gardenos-router' })).items.length === 0 || undefined,
      { timeoutMs: 90_000, intervalMs: 500 },
    );
    const replica = (await p.status()).members.find((m) => m.role !== 'leader')!;
    await core.patchNamespacedEndpoints(
      {
        name: 'postgres-primary',
        namespace: 'database',
        body: { subsets: [{ addresses: [{ ip: replica.host }], ports: [{ name: 'postgresql', port: 5432, protocol: 'TCP' }] }] },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const wrong = await finding('primary-endpoint', 'fail', 'Endpoints on a replica, router stopped');
    assert.match(wrong.summary, new RegExp(`points at \\[${replica.host.replaceAll('.', '\\.')}\\]`));
    assert.match(wrong.fix ?? '', /the router is not running/);
    await scaleRouter(2);
    await finding('primary-endpoint', 'ok', 'the router back');

    // pg_hba without the pod network (the journal's "no pg_hba.conf entry for host 10.42…"): the leader's file edited on its volume, reloaded.
    const { leader } = await p.settled('before the pg_hba fault');
    const pv = await core.readPersistentVolume({
      name: (await core.readNamespacedPersistentVolumeClaim({ name: `pgdata-${leader.name}`, namespace: 'database' })).spec!.volumeName!,
    });
    const hbaFile = join(pv.spec!.hostPath!.path!, 'pgroot', 'data', 'pg_hba.conf');
    const original = await readFile(hbaFile, 'utf8');
    assert.match(original, /10\.42\.0\.0\/16/);
    const reload = async () => {
      const admin = p.db(leader.host);
      await admin.connect();
      await admin.query('SELECT pg_reload_conf()');
      await admin.end();
    };
    await writeFile(
      hbaFile,
      original
        .split('\n')
        .filter((l) => !l.includes('10.42.0.0/16'))
        .join('\n'),
    );
    try {
      await reload();
      assert.match((await finding('pg-hba', 'fail', 'pod network line removed')).summary, /the pod network/);
    } finally {
      await writeFile(hbaFile, original);
      await reload();
    }
    await finding('pg-hba', 'ok', 'pg_hba.conf restored');

    // A data directory PostgreSQL refuses (the journal's "invalid permissions"): a replica's, mode 0777, its pod restarted.
    const other = (await p.status()).members.find((m) => m.role !== 'leader')!;
    const opv = await core.readPersistentVolume({
      name: (await core.readNamespacedPersistentVolumeClaim({ name: `pgdata-${other.name}`, namespace: 'database' })).spec!.volumeName!,
    });
    const dataDir = join(opv.spec!.hostPath!.path!, 'pgroot', 'data');
    await chmod(dataDir, 0o777);
    try {
      await core.deleteNamespacedPod({ name: other.name, namespace: 'database' });
      assert.match((await finding('pgdata-permissions', 'fail', 'data directory 0777')).evidence.join('\n'), /invalid permissions/);
    } finally {
      await chmod(dataDir, 0o700);
    }
    await core.deleteNamespacedPod({ name: other.name, namespace: 'database' });
    await finding('pgdata-permissions', 'ok', 'mode 0700 again, pod restarted');
    await p.settled('after the faults');
  });

  it("moves the platform's repository into S3 (SeaweedFS, built from its Go module, reached by a cluster DNS name its certificate carries): archiving from the members through the repository pod into the bucket, a full backup restore-tested from it, and a point in time restored beside the cluster from it — encrypted in the bucket, the key never in a member's pod", async () => {
    const { cp, core } = p;
    const kc = cp.admin();
    const ns = p.config.namespaces.database;
    // A store outside the cluster, as a user's would be: on this machine's bridge address, named for the pods by a
    // Service without selector and an EndpointSlice (the Kubernetes way to name an external address in cluster DNS).
    const name = `seaweedfs.${ns}.svc.cluster.local`;
    const { mkdtemp, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { startS3 } = await import('../helpers/seaweedfs.ts');
    const s3 = await startS3({ dir: await mkdtemp(join(tmpdir(), 'gardenos-it-node-s3-')), portBase: 23820, bucket: 'it-node', address: HOST, name });
    const work = await mkdtemp(join(tmpdir(), 'gardenos-it-node-s3conf-'));
    try {
      const port = Number(s3.endpoint.split(':')[1]);
      const external = [
        { apiVersion: 'v1', kind: 'Service', metadata: { name: 'seaweedfs', namespace: ns }, spec: { clusterIP: 'None', ports: [{ name: 's3', port }] } },
        {
          apiVersion: 'discovery.k8s.io/v1',
          kind: 'EndpointSlice',
          metadata: { name: 'seaweedfs-1', namespace: ns, labels: { 'kubernetes.io/service-name': 'seaweedfs' } },
          addressType: 'IPv4',
          endpoints: [{ addresses: [HOST] }],
          ports: [{ name: 's3', port }],
        },
      ];
      await applyObjects(kc, external, { report: silent });

      // gardenos.yaml with the repository in the bucket, applied as `gardenos up` applies it: the repository pod rolls.
      const configFile = join(work, 'gardenos.yaml');
      const text = await readFile(p.configFile, 'utf8');
      const moved = text.replace(
        'backups: { enabled: true,',
        `backups: { enabled: true, repository: { s3: { endpoint: "${s3.endpoint}", bucket: it-node, uriStyle: path, caFile: ${s3.caFile}, credentialsFile: ${s3.credentialsFile} } },`,
      );
      assert.notEqual(moved, text);
      await writeFile(configFile, moved);
      const { loadConfig } = await import('../../src/config/load.ts');
      const { kustomizationObjects } = await import('../../src/platform/render.ts');
      const config = await loadConfig(configFile);
      const objects = (kustomizationObjects(await renderPlatform(config, { secretsDir: p.secretsDir, withSecrets: true })) as KubernetesObject[]).filter(
        (o) => !unobtainable(o),
      );
      const repoBefore = await core.readNamespacedPod({ name: 'pgbackrest-repo-0', namespace: ns });
      await applyObjects(kc, objects, { report: silent });
      await awaitRollouts(kc, objects, { report: silent, waitMs: 300_000 });
      const repoAfter = await waitFor(
        'the repository pod to be replaced and ready',
        async () => {
          const pod = await core.readNamespacedPod({ name: 'pgbackrest-repo-0', namespace: ns });
          return pod.metadata?.uid !== repoBefore.metadata?.uid && pod.status?.containerStatuses?.every((c) => c.ready) ? pod : undefined;
        },
        { timeoutMs: 180_000, intervalMs: 1_000 },
      );
      assert.ok(repoAfter.metadata?.annotations?.['gardenos.dev/repository-revision']);

      const gardenos = (...args: string[]) =>
        p.c.cli([...args, '--config', configFile, '--secrets-dir', p.secretsDir, '--kubeconfig', cp.adminKubeconfigFile, '--json']);
      // What `gardenos up`'s backups phase does: the stanza in the bucket, and a WAL switch on the leader seen there.
      const { platformBackupCheck } = await import('../../src/platform/backups.ts');
      await platformBackupCheck(kc, config, silent).catch(async (e: Error) => {
        throw new Error(`${e.message} ${JSON.stringify((e as { details?: string[] }).details)}; ${await p.podReport()}`);
      });
      const full = await gardenos('db', 'backup', '--type', 'full');
      assert.equal(full.code, 0, `${full.stderr}\n${await p.podReport()}`);
      const backup = JSON.parse(full.stdout) as { backup: { label: string; type: string }; verify: { ok: boolean; label: string } | null };
      assert.deepEqual([backup.backup.type, backup.verify?.ok, backup.verify?.label], ['full', true, backup.backup.label], 'restore-tested from the bucket');

      // A point in time after the backup, reached with WAL from the bucket, beside the cluster.
      const leaderHost = (await p.settled('before the restore from S3')).leader.host;
      const leader = p.db(leaderHost);
      await leader.connect();
      let target: string;
      try {
        await leader.query('CREATE TABLE s3_rows (id int PRIMARY KEY)');
        await leader.query('INSERT INTO s3_rows VALUES (1), (2), (3)');
        target = (await leader.query<{ t: Date }>('SELECT clock_timestamp() AS t')).rows[0]!.t.toISOString();
        await waitFor(
          'the clock to pass the target',
          async () => (await leader.query<{ ok: boolean }>('SELECT clock_timestamp() > $1::timestamptz AS ok', [target])).rows[0]!.ok,
          { timeoutMs: 10_000, intervalMs: 50 },
        );
        await leader.query('INSERT INTO s3_rows VALUES (4), (5)');
      } finally {
        await leader.end();
      }
      const beside = await gardenos('db', 'restore', '--to', target, '--beside');
      assert.equal(beside.code, 0, `${beside.stderr}\n${await p.podReport()}`);
      try {
        const read = await execInPod(
          kc,
          { namespace: ns, pod: (JSON.parse(beside.stdout) as { pod: string }).pod, container: 'pgbackrest' },
          ['psql', '-X', '-At', '-h', '/tmp/beside/run', '-U', 'postgres', '-d', 'postgres', '-c', 'SELECT id FROM s3_rows ORDER BY id'],
          30_000,
        );
        assert.deepEqual(read.stdout.trim().split('\n').map(Number), [1, 2, 3], 'the rows up to the target, from the bucket');
      } finally {
        const stopped = await gardenos('db', 'restore', '--stop-beside');
        assert.equal(stopped.code, 0, stopped.stderr);
      }

      // What the bucket holds, read through SeaweedFS's filer (not pgBackRest): the stanza under the cluster's prefix, encrypted.
      const stored = async (path: string) => {
        const r = await fetch(`${s3.filer}/buckets/it-node/${path}`, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(10_000) });
        assert.equal(r.status, 200, `${path}: HTTP ${r.status}`);
        return Buffer.from(await r.arrayBuffer());
      };
      const scope = p.config.postgres.scope;
      assert.equal((await stored(`it-node/backup/${scope}/backup.info`)).subarray(0, 8).toString('latin1'), 'Salted__', 'backup.info encrypted');
      const list = JSON.parse((await gardenos('db', 'backup', 'list')).stdout) as {
        backups: { label: string }[];
        lastVerify: { ok: boolean; label: string } | null;
      };
      assert.deepEqual(
        list.backups.map((b) => b.label),
        [backup.backup.label],
        "the bucket's one backup: the directory repository's are not in it",
      );
      assert.deepEqual([list.lastVerify?.ok, list.lastVerify?.label], [true, backup.backup.label]);
      // The members push WAL through the repository pod: their configuration names no storage and holds no S3 key.
      const memberConf = await execInPod(kc, { namespace: ns, pod: `${scope}-0`, container: 'pgbackrest' }, ['cat', '/etc/pgbackrest/pgbackrest.conf'], 30_000);
      assert.match(memberConf.stdout, /^repo1-host=/m);
      assert.doesNotMatch(memberConf.stdout, /repo1-s3|repo1-type|repo1-path/);
      assert.ok(!memberConf.stdout.includes(JSON.parse(await readFile(s3.credentialsFile, 'utf8')).secretAccessKey as string));
    } finally {
      await s3.stop();
      await rm(work, { recursive: true, force: true });
    }
  });
});
