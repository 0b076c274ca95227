// The primary router's Kubernetes sink against a real API server (test/helpers/kube.ts) while a real
// local Patroni cluster (isolated, 10.251.226.0/24) switches over and loses its leader: two real
// `gardenos router` processes with the router's ServiceAccount token, one Lease between them.
// postgres-primary's Endpoints and EndpointSlice must name exactly the leader, never two addresses
// (every version is watched); a 409 from a concurrent writer is retried; the Lease moves when the
// active router is killed, and a router that lost it writes nothing. Needs root, as CI runs.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import {
  CoordinationV1Api,
  CoreV1Api,
  KubernetesObjectApi,
  Watch,
  type KubernetesObject,
  type V1Endpoints,
  type V1EndpointSlice,
} from '@kubernetes/client-node';
import { parse, stringify } from 'yaml';
import { applyObjects } from '../../src/clients/apply.ts';
import type { LocalStatus } from '../../src/local/status.ts';
import { silent } from '../../src/log/events.ts';
import { ROUTER_NAME } from '../../src/render/kube/names.ts';
import { routerManifests } from '../../src/render/kube/router.ts';
import type { RouterSettings } from '../../src/router/settings.ts';
import { upsert } from '../../src/router/sinks/kubernetes.ts';
import { waitFor } from '../../src/util/wait.ts';
import { exampleConfig } from '../helpers/fixtures.ts';
import { kubernetesRouterSettings, startControlPlane, type ControlPlane } from '../helpers/kube.ts';
import { CLI, makeTestCluster, type TestCluster } from '../helpers/local.ts';

const asRoot = process.getuid?.() === 0;
const OCTET = 226;
const HOST = `10.251.${OCTET}.1`;
const DB = 'database';
const LEASE_SECONDS = 6;

interface Seen {
  at: number;
  kind: 'Endpoints' | 'EndpointSlice';
  addresses: string[];
}

describe("the router's Kubernetes sink on a real API server, following a real Patroni cluster", {
  timeout: 1_200_000,
  skip: asRoot ? false : 'needs root to create network namespaces (see README)',
}, () => {
  let c: TestCluster;
  let cp: ControlPlane;
  const routers = new Map<string, { child: ChildProcess; port: number; log: string }>();
  const seen: Seen[] = [];
  const watches: { abort(): void }[] = [];
  const json = <T>(s: string) => JSON.parse(s) as T;
  const status = async () => json<LocalStatus>((await c.cli(['local', 'status', '--json'])).stdout);
  const leader = async () =>
    waitFor('a running leader', async () => (await status()).members.find((m) => m.role === 'leader' && m.state === 'running'), {
      timeoutMs: 90_000,
      intervalMs: 300,
    });
  const core = () => cp.admin().makeApiClient(CoreV1Api);
  const primaryIps = async () =>
    ((await core().readNamespacedEndpoints({ name: 'postgres-primary', namespace: DB })).subsets ?? []).flatMap((s) => (s.addresses ?? []).map((a) => a.ip));
  const holder = async () =>
    (await cp.admin().makeApiClient(CoordinationV1Api).readNamespacedLease({ name: ROUTER_NAME, namespace: DB })).spec?.holderIdentity ?? null;
  const routerStatus = async (name: string) => json<{ lastDecision: string }>(await (await fetch(`http://${HOST}:${routers.get(name)!.port}/status`)).text());
  /** Waits until both the Endpoints and the EndpointSlice name exactly `ip`. */
  const routedTo = (ip: string, timeoutMs = 30_000) =>
    waitFor(
      `postgres-primary to name ${ip} only`,
      async () => {
        const ep = await primaryIps();
        const slice =
          (
            await cp
              .admin()
              .makeApiClient(KubernetesObjectApi)
              .read<V1EndpointSlice>({
                apiVersion: 'discovery.k8s.io/v1',
                kind: 'EndpointSlice',
                metadata: { name: 'postgres-primary-gardenos', namespace: DB },
              })
          ).endpoints ?? [];
        const sliceIps = slice.flatMap((e) => e.addresses);
        if (ep.join() !== ip || sliceIps.join() !== ip) throw new Error(`Endpoints [${ep}], EndpointSlice [${sliceIps}]`);
        return true;
      },
      { timeoutMs, intervalMs: 50 },
    );

  const startRouter = async (name: string, port: number) => {
    const kubeconfig = `${c.dir}/${name}.kubeconfig`;
    await writeFile(kubeconfig, cp.withToken(await cp.serviceAccountToken(DB, ROUTER_NAME)).exportConfig(), { mode: 0o600 });
    const settings = await kubernetesRouterSettings(c.stateDir, { listen: { host: HOST, port }, kubeconfig, leaseSeconds: LEASE_SECONDS });
    const file = `${c.dir}/${name}.yml`;
    await writeFile(file, stringify(settings), { mode: 0o600 });
    const log = `${c.dir}/${name}.log`;
    const child = spawn(process.execPath, [CLI, 'router', '--config', file], {
      stdio: ['ignore', openSync(log, 'a'), openSync(log, 'a')],
      env: { ...process.env, POD_NAME: name },
    });
    routers.set(name, { child, port, log });
    await waitFor(`router ${name} to answer`, async () => (await fetch(`http://${HOST}:${port}/status`)).ok, { timeoutMs: 30_000, intervalMs: 200 });
  };

  before(async () => {
    c = await makeTestCluster('it-kuberouter', OCTET);
    const up = await c.cli(['local', 'up', '--isolated', '--json']);
    assert.equal(up.code, 0, up.stderr);
    const ca = { cert: await readFile(`${c.stateDir}/pki/ca.crt`, 'utf8'), key: await readFile(`${c.stateDir}/pki/ca.key`, 'utf8') };
    const local = json<{ status: LocalStatus }>(up.stdout).status;
    cp = await startControlPlane({ host: HOST, etcd: { endpoints: local.etcd.map((e) => e.endpoint), ca } });
    // The router's objects as `gardenos up` applies them, in the database namespace.
    const config = exampleConfig();
    await applyObjects(cp.admin(), [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: DB } }, ...(routerManifests(config) as KubernetesObject[])], {
      report: silent,
    });
    // Every version of the primary's Endpoints and EndpointSlice, as a watcher (kube-proxy) sees them:
    // a watch resumed from the last resourceVersion whenever the server or the client's idle timer ends it.
    for (const [kind, path, name] of [
      ['Endpoints', `/api/v1/namespaces/${DB}/endpoints`, 'postgres-primary'],
      ['EndpointSlice', `/apis/discovery.k8s.io/v1/namespaces/${DB}/endpointslices`, 'postgres-primary-gardenos'],
    ] as const) {
      let resourceVersion: string | undefined;
      let stopped = false;
      let current: { abort(): void } | undefined;
      const begin = async (): Promise<void> => {
        const watch = new Watch(cp.admin());
        current = await watch.watch(
          path,
          { fieldSelector: `metadata.name=${name}`, allowWatchBookmarks: true, ...(resourceVersion ? { resourceVersion } : {}) },
          (type, obj: V1Endpoints & V1EndpointSlice) => {
            // 410 Gone (the watch cache no longer reaches back that far): start from the current state, as an informer does.
            if (type === 'ERROR') {
              resourceVersion = undefined;
              return;
            }
            resourceVersion = obj.metadata?.resourceVersion ?? resourceVersion;
            if (type === 'BOOKMARK') return;
            const addresses =
              kind === 'Endpoints'
                ? (obj.subsets ?? []).flatMap((s) => (s.addresses ?? []).map((a) => a.ip))
                : (obj.endpoints ?? []).flatMap((e) => e.addresses);
            seen.push({ at: Date.now(), kind, addresses });
          },
          () => {
            if (!stopped) void begin();
          },
        );
      };
      await begin();
      watches.push({
        abort: () => {
          stopped = true;
          current?.abort();
        },
      });
    }
    await startRouter('router-a', 18405);
    await startRouter('router-b', 18406);
  });
  after(async () => {
    for (const w of watches) w.abort();
    for (const { child } of routers.values()) {
      child.kill('SIGCONT');
      child.kill('SIGKILL');
    }
    await cp?.stop();
    await c?.cleanup();
  });

  it('one router takes the Lease and points postgres-primary at the leader; the other stands by', async () => {
    const l = await leader();
    await routedTo(l.host);
    const h = await holder();
    assert.ok(h === 'router-a' || h === 'router-b' || h?.startsWith('router-'), `Lease holder ${h}`);
    const standby = [...routers.keys()].find((n) => !h!.startsWith(n))!;
    await waitFor(`${standby} to report standby`, async () => (await routerStatus(standby)).lastDecision.startsWith('standby: '), {
      timeoutMs: 15_000,
      intervalMs: 200,
    });
  });

  it('follows a switchover: the new leader only, never two addresses', async () => {
    const before = await leader();
    const from = seen.length;
    const r = await c.cli(['local', 'db', 'switchover', '--yes', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const after = await leader();
    assert.notEqual(after.name, before.name);
    await routedTo(after.host);
    await waitFor('the watch to see the move', async () => seen.slice(from).some((s) => s.addresses.join() === after.host), {
      timeoutMs: 10_000,
      intervalMs: 50,
    });
  });

  it('follows a crash of the leader: the new leader only, never two addresses', async () => {
    const before = await leader();
    const r = await c.cli(['local', 'chaos', 'primary-crash', '--json']);
    const run = json<{ runs: { verdict: { ok: boolean; failure?: string } }[] }>(r.stdout).runs[0]!;
    assert.equal(run.verdict.ok, true, run.verdict.failure);
    const after = await leader();
    assert.notEqual(after.name, before.name);
    await routedTo(after.host);
  });

  it('retries a write that loses to a concurrent writer (a real 409), and a router without the Lease writes nothing', async () => {
    // An Endpoints object of its own: the running routers keep postgres-primary/-replica and would race the test.
    const admin = core();
    const api = admin;
    const name = 'it-conflict';
    await admin.createNamespacedEndpoints({ namespace: DB, body: { metadata: { name }, subsets: [] } });
    let reads = 0;
    const attempt = (ip: string, mayWrite: () => boolean) =>
      upsert<V1Endpoints>({
        what: `Endpoints ${DB}/${name}`,
        read: async () => {
          const current = await api.readNamespacedEndpoints({ name, namespace: DB });
          // The first read is overtaken by another writer before this one writes.
          if (reads++ === 0)
            await admin.replaceNamespacedEndpoints({
              name,
              namespace: DB,
              body: { ...current, metadata: { ...current.metadata, labels: { ...current.metadata?.labels, touched: 'yes' } } },
            });
          return current;
        },
        create: () => Promise.reject(new Error('not expected')),
        replace: (body) => api.replaceNamespacedEndpoints({ name, namespace: DB, body }),
        desired: (current) => ({ ...current!, subsets: [{ addresses: [{ ip }], ports: [{ name: 'postgresql', port: 5432 }] }] }),
        same: (a, b) => JSON.stringify(a.subsets?.[0]?.addresses?.map((x) => x.ip)) === JSON.stringify(b.subsets?.[0]?.addresses?.map((x) => x.ip)),
        mayWrite,
      });
    try {
      assert.equal(await attempt('10.42.9.9', () => true), true);
      assert.equal(reads, 2, 'the 409 made it read again');
      const now = await admin.readNamespacedEndpoints({ name, namespace: DB });
      assert.equal(now.metadata?.labels?.touched, 'yes', "the other writer's change is kept");
      assert.deepEqual(
        now.subsets?.[0]?.addresses?.map((a) => a.ip),
        ['10.42.9.9'],
      );
      await assert.rejects(
        attempt('10.42.9.10', () => false),
        /no longer holds the Lease/,
      );
      assert.equal(
        (await admin.readNamespacedEndpoints({ name, namespace: DB })).metadata?.resourceVersion,
        now.metadata?.resourceVersion,
        'nothing written without the Lease',
      );
    } finally {
      await admin.deleteNamespacedEndpoints({ name, namespace: DB });
    }
  });

  it('moves the Lease when the active router is frozen, the thawed one writes nothing; and when it is killed', async () => {
    const first = (await holder())!;
    const active = [...routers.keys()].find((n) => first.startsWith(n))!;
    const other = [...routers.keys()].find((n) => n !== active)!;
    routers.get(active)!.child.kill('SIGSTOP');
    await waitFor(`${other} to take the Lease`, async () => (await holder())?.startsWith(other), { timeoutMs: (LEASE_SECONDS + 10) * 1000, intervalMs: 100 });
    // A switchover while the old holder is frozen: the new holder moves postgres-primary.
    const r = await c.cli(['local', 'db', 'switchover', '--yes', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const l = await leader();
    await routedTo(l.host);
    // Thawed, the old holder sees its renewal is overdue and writes nothing.
    const thawedAt = Date.now();
    routers.get(active)!.child.kill('SIGCONT');
    await waitFor(`${active} to report standby after thawing`, async () => (await routerStatus(active)).lastDecision.startsWith('standby: '), {
      timeoutMs: 30_000,
      intervalMs: 100,
    });
    assert.equal((await holder())?.startsWith(other), true, 'the Lease stays with the new holder');
    const afterThaw = seen.filter((s) => s.at >= thawedAt && s.kind === 'Endpoints');
    assert.ok(
      afterThaw.every((s) => s.addresses.join() === l.host),
      `writes after the thaw: ${JSON.stringify(afterThaw)}`,
    );

    // Killed outright: the frozen-then-thawed router takes over again.
    routers.get(other)!.child.kill('SIGKILL');
    await waitFor(`${active} to take the Lease back`, async () => (await holder())?.startsWith(active), {
      timeoutMs: (LEASE_SECONDS + 10) * 1000,
      intervalMs: 100,
    });
    const again = await c.cli(['local', 'db', 'switchover', '--yes', '--json']);
    assert.equal(again.code, 0, again.stderr);
    await routedTo((await leader()).host);
  });

  it('a router that cannot reach the API server says so, and is not ready', async () => {
    // Its kubeconfig names a port nothing listens on: the Lease cannot be read.
    const settings = parse(await readFile(`${c.dir}/router-a.yml`, 'utf8')) as RouterSettings;
    const sink = settings.sinks[0] as Extract<RouterSettings['sinks'][number], { type: 'kubernetes' }>;
    const kubeconfig = `${c.dir}/router-c.kubeconfig`;
    await writeFile(kubeconfig, (await readFile(sink.kubeconfig!, 'utf8')).replace(`${HOST}:6443`, `${HOST}:6449`), { mode: 0o600 });
    await writeFile(`${c.dir}/router-c.yml`, stringify({ ...settings, listen: { host: HOST, port: 18409 }, sinks: [{ ...sink, kubeconfig }] }), {
      mode: 0o600,
    });
    const log = `${c.dir}/router-c.log`;
    const child = spawn(process.execPath, [CLI, 'router', '--config', `${c.dir}/router-c.yml`], { stdio: ['ignore', openSync(log, 'a'), openSync(log, 'a')] });
    routers.set('router-c', { child, port: 18409, log });
    try {
      const body = await waitFor(
        'router-c to report its Lease problem',
        async () => {
          const res = await fetch(`http://${HOST}:18409/readyz`).catch(() => undefined);
          return res?.status === 503 ? await res.text() : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 200 },
      );
      assert.match(body, /^Kubernetes API: reading Lease database\/gardenos-router: .*ECONNREFUSED/);
      assert.match(await readFile(log, 'utf8'), /"lease":"error","detail":"reading Lease database\/gardenos-router/);
    } finally {
      child.kill('SIGKILL');
      routers.delete('router-c');
    }
  });

  it('never showed two addresses behind postgres-primary', () => {
    assert.ok(seen.length > 4, `the watch saw ${seen.length} versions`);
    const two = seen.filter((s) => s.addresses.length > 1);
    assert.deepEqual(two, []);
  });
});
