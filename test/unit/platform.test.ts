// The production render: deterministic, every Kubernetes manifest valid against
// the Kubernetes OpenAPI schema (kubernetes-models), no secret outside the files
// marked secret, and the settings the issue asks for.
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { V1Container } from '@kubernetes/client-node';
import { jwtVerify, decodeProtectedHeader } from 'jose';
import { parse, parseAllDocuments } from 'yaml';
import { parseConfig } from '../../src/config/load.ts';
import { GardenError } from '../../src/errors.ts';
import type { Config } from '../../src/config/schema.ts';
import { platformManifests } from '../../src/render/kube/platform.ts';
import { renderPlatform, type RenderedFile } from '../../src/platform/render.ts';
import { ensurePlatformPki, ensurePlatformSecrets, type PlatformSecrets } from '../../src/platform/secrets.ts';
import { createCa } from '../../src/pki/certs.ts';
import { exampleConfig } from '../helpers/fixtures.ts';

type Obj = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; annotations?: Record<string, string> }; [k: string]: unknown };

/** Validates one object with kubernetes-models' generated JSON Schema validator for its apiVersion and kind. */
async function validate(obj: Obj): Promise<void> {
  const [group, version] = obj.apiVersion.includes('/') ? obj.apiVersion.split('/') : ['', obj.apiVersion];
  // cert-manager's kinds (tls: acme) from its own generated schemas.
  const pkg = group?.endsWith('cert-manager.io') ? '@kubernetes-models/cert-manager' : 'kubernetes-models';
  const mod = (await import(`${pkg}/${group ? `${group}/` : ''}${version}/${obj.kind}`)) as Record<string, new (o: unknown) => { validate(): void }>;
  const Model = mod[obj.kind] ?? mod.default;
  assert.ok(Model, `no schema for ${obj.apiVersion} ${obj.kind}`);
  try {
    new Model(obj).validate();
  } catch (e) {
    throw new Error(`${obj.kind} ${obj.metadata.namespace ?? ''}/${obj.metadata.name} is invalid: ${(e as Error).message}`);
  }
}

const docs = (f: RenderedFile) =>
  parseAllDocuments(f.content)
    .map((d) => d.toJS() as Obj)
    .filter(Boolean);

describe('gardenos render: the production platform', () => {
  let dir: string;
  let config: Config;
  let secrets: PlatformSecrets;
  let plain: RenderedFile[];
  let withSecrets: RenderedFile[];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gardenos-platform-'));
    // The example, plus K3s's local storage disabled (so GardenOS renders its own default StorageClass).
    config = parseConfig(
      (await readFile(new URL('../../examples/gardenos.yaml', import.meta.url), 'utf8')).replace(
        'disable: [traefik, servicelb]',
        'disable: [traefik, servicelb, local-storage]',
      ),
    );
    secrets = await ensurePlatformSecrets(dir, config);
    await ensurePlatformPki(dir, config);
    plain = await renderPlatform(config, { secretsDir: dir });
    withSecrets = await renderPlatform(config, { secretsDir: dir, withSecrets: true });
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('is byte-identical for the same input', async () => {
    assert.deepEqual(await renderPlatform(config, { secretsDir: dir }), plain);
    assert.deepEqual(await renderPlatform(config, { secretsDir: dir, withSecrets: true }), withSecrets);
  });

  it('keeps the secrets 0600 in a 0700 directory, and generates them once', async () => {
    assert.equal((await stat(dir)).mode & 0o777, 0o700);
    assert.equal((await stat(join(dir, 'secrets.json'))).mode & 0o777, 0o600);
    assert.equal((await stat(join(dir, 'pki', 'ca.key'))).mode & 0o777, 0o600);
    assert.deepEqual(await ensurePlatformSecrets(dir, config), secrets);
    const again = await ensurePlatformPki(dir, config);
    assert.deepEqual(again.created, [], 'nothing re-issued');
    const rotated = await ensurePlatformPki(dir, config, ['postgres-server']);
    assert.deepEqual(rotated.created, ['postgres-server']);
  });

  it('writes no secret into the files it does not mark secret', () => {
    const values = [
      secrets.superuserPassword,
      secrets.replicationPassword,
      secrets.rewindPassword,
      secrets.restApiPassword,
      secrets.statsPassword,
      secrets.k3sToken,
      secrets.supabase.jwtSecret,
      secrets.supabase.anonKey,
      secrets.supabase.serviceRoleKey,
      secrets.supabase.authenticatorPassword,
      secrets.supabase.authAdminPassword,
      secrets.supabase.storageAdminPassword,
    ];
    const b64 = values.map((v) => Buffer.from(v).toString('base64'));
    for (const f of withSecrets.filter((x) => !x.secret)) {
      for (const v of [...values, ...b64]) assert.ok(!f.content.includes(v), `${f.path} contains a secret`);
      assert.doesNotMatch(f.content, /PRIVATE KEY/, f.path);
    }
    assert.ok(
      plain.every((f) => !f.secret),
      'without --with-secrets, no secret file at all',
    );
    assert.ok(withSecrets.some((f) => f.path === 'kubernetes/05-secrets.yaml' && f.mode === 0o600));
  });

  it('validates every Kubernetes manifest against the Kubernetes OpenAPI schema', async () => {
    let count = 0;
    for (const f of withSecrets.filter((x) => x.path.startsWith('kubernetes/') && !x.path.endsWith('kustomization.yaml'))) {
      for (const obj of docs(f)) {
        await validate(obj);
        count++;
      }
    }
    assert.ok(count > 40, `${count} objects validated`);
  });

  it('a broken manifest fails that validation (the check can fail)', async () => {
    const deployment = docs(plain.find((f) => f.path === 'kubernetes/50-apps.yaml')!).find((o) => o.kind === 'Deployment')!;
    (deployment.spec as { replicas: unknown }).replicas = 'two';
    await assert.rejects(validate(deployment), /replicas must be integer/);
  });

  it('lists every manifest file in the kustomization, in dependency order', () => {
    const k = docs(withSecrets.find((f) => f.path === 'kubernetes/kustomization.yaml')!)[0] as unknown as { resources: string[] };
    assert.deepEqual(k.resources, [
      '00-namespaces.yaml',
      '05-secrets.yaml',
      '10-storage.yaml',
      '20-postgres.yaml',
      '30-router.yaml',
      '40-supabase.yaml',
      '50-apps.yaml',
      '55-ingress-controller.yaml',
      '60-ingress.yaml',
      '65-acme-issuer.yaml',
    ]);
    for (const r of k.resources)
      assert.ok(
        withSecrets.some((f) => f.path === `kubernetes/${r}`),
        r,
      );
  });

  it('renders etcd with mutual TLS, v3 only, a unique token and a systemd unit', () => {
    const etcd = plain.find((f) => f.path === 'hosts/garden-1/etc/gardenos/etcd/etcd.yml')!.content;
    assert.match(etcd, /listen-client-urls: https:\/\/198\.51\.100\.11:2379/);
    assert.match(etcd, /listen-peer-urls: https:\/\/198\.51\.100\.11:2380/);
    assert.match(etcd, /client-cert-auth: true/);
    assert.match(etcd, /enable-v2: false/);
    assert.match(etcd, new RegExp(`initial-cluster-token: ${secrets.etcdClusterToken}`));
    assert.doesNotMatch(etcd, /http:\/\//);
    assert.match(
      plain.find((f) => f.path === 'hosts/garden-1/etc/systemd/system/gardenos-etcd.service')!.content,
      /ExecStart=\/usr\/bin\/etcd --config-file \/etc\/gardenos\/etcd\/etcd.yml\nRestart=always/,
    );
  });

  it('renders K3s on the external etcd over TLS, with the token in a file and no taint on hybrid servers', () => {
    const k3s = plain.find((f) => f.path === 'hosts/garden-2/etc/rancher/k3s/config.yaml')!;
    assert.equal(k3s.mode, 0o600);
    assert.match(k3s.content, /datastore-endpoint: https:\/\/198\.51\.100\.11:2379,https:\/\/198\.51\.100\.12:2379,https:\/\/198\.51\.100\.13:2379/);
    assert.match(k3s.content, /datastore-certfile: \/etc\/gardenos\/pki\/etcd-client-k3s\.crt/);
    assert.match(k3s.content, /token-file: \/etc\/gardenos\/k3s\/token/);
    assert.match(k3s.content, /tls-san:\n {2}- 198\.51\.100\.11/);
    assert.match(k3s.content, /disable:\n {2}- traefik\n {2}- servicelb\n {2}- local-storage/);
    assert.doesNotMatch(k3s.content, /node-taint/);
    const tainted = parseConfig(JSON.stringify({ ...exampleConfigInput(), k3s: { serversRunWorkloads: false } }));
    return renderPlatform(tainted, { secretsDir: dir }).then((files) => {
      assert.match(files.find((f) => f.path === 'hosts/garden-1/etc/rancher/k3s/config.yaml')!.content, /node-taint:\n {2}- CriticalAddonsOnly=true:NoExecute/);
    });
  });

  it('renders PostgreSQL as a Patroni StatefulSet: etcd3 over TLS, anti-affinity, permissions init, PVCs, PDB, pod CIDR in pg_hba', () => {
    const objs = docs(plain.find((f) => f.path === 'kubernetes/20-postgres.yaml')!);
    const sts = objs.find((o) => o.kind === 'StatefulSet') as unknown as {
      spec: {
        replicas: number;
        template: {
          spec: {
            hostNetwork: boolean;
            affinity: { podAntiAffinity: unknown };
            initContainers: { name: string; command: string[] }[];
            containers: { image: string }[];
          };
        };
        volumeClaimTemplates: { spec: { storageClassName: string; resources: { requests: { storage: string } } } }[];
      };
    };
    assert.equal(sts.spec.replicas, 3);
    assert.ok(sts.spec.template.spec.affinity.podAntiAffinity);
    assert.equal(sts.spec.template.spec.initContainers[0]!.name, 'volume-permissions');
    assert.equal(sts.spec.template.spec.containers[0]!.image, config.postgres.image);
    assert.deepEqual(sts.spec.volumeClaimTemplates[0]!.spec.storageClassName, 'local-path');
    assert.equal(sts.spec.volumeClaimTemplates[0]!.spec.resources.requests.storage, '20Gi');
    assert.ok(objs.some((o) => o.kind === 'PodDisruptionBudget'));
    assert.ok(objs.some((o) => o.kind === 'Service' && (o.spec as { clusterIP: string }).clusterIP === 'None'));
    const secretObjs = docs(withSecrets.find((f) => f.path === 'kubernetes/05-secrets.yaml')!);
    const patroni = Buffer.from(
      (secretObjs.find((o) => o.metadata.name === 'postgres-patroni')!.data as Record<string, string>)['patroni.yml']!,
      'base64',
    ).toString();
    assert.match(patroni, /etcd3:\n {2}hosts:\n {4}- 198\.51\.100\.11:2379/);
    assert.match(patroni, /protocol: https/);
    assert.match(patroni, /- hostssl all all 10\.42\.0\.0\/16 scram-sha-256/);
  });

  it('renders a default StorageClass when K3s local storage is disabled', () => {
    const objs = docs(plain.find((f) => f.path === 'kubernetes/10-storage.yaml')!);
    const sc = objs.find((o) => o.kind === 'StorageClass')!;
    assert.equal(sc.metadata.annotations!['storageclass.kubernetes.io/is-default-class'], 'true');
    const cm = objs.find((o) => o.kind === 'ConfigMap')! as unknown as { data: Record<string, string> };
    assert.deepEqual(JSON.parse(cm.data['config.json']!).nodePathMap[0].paths, [config.storage.path]);
    const helper = JSON.parse(cm.data['helperPod.yaml']!) as { spec: { securityContext: { runAsUser: number }; containers: { image: string }[] } };
    assert.equal(helper.spec.containers[0]!.image, 'busybox:1.36');
    assert.equal(helper.spec.securityContext.runAsUser, 0, 'the helper makes directories on the node as root, whatever the image declares');
  });

  it("runs GardenOS's PostgreSQL image by default as its user 999, Spilo's as 101 when chosen; data under pgroot/ of the mount", () => {
    type Sts = {
      spec: {
        template: {
          spec: {
            securityContext: { fsGroup: number };
            initContainers: { image: string; command: string[] }[];
            containers: { image: string; securityContext: { runAsUser: number } }[];
          };
        };
      };
    };
    const stsOf = (c: Config) => postgresManifests(c).find((o) => o.kind === 'StatefulSet') as unknown as Sts;
    const gardenos = stsOf(config).spec.template.spec;
    assert.equal(config.postgres.flavor, 'gardenos');
    assert.equal(gardenos.containers[0]!.image, `ghcr.io/gardenos/postgres:${config.postgres.version}`);
    assert.equal(gardenos.containers[0]!.securityContext.runAsUser, 999);
    assert.equal(gardenos.securityContext.fsGroup, 999);
    assert.equal(gardenos.initContainers[0]!.image, gardenos.containers[0]!.image, "the permissions step runs the postgres image's own shell");
    assert.match(gardenos.initContainers[0]!.command.join(' '), /chown -R 999:999 \/home\/postgres\/pgdata && chmod 0700/);
    const spilo = parseConfig(JSON.stringify({ ...exampleConfigInput(), postgres: { flavor: 'spilo', version: 16 } }));
    assert.equal(spilo.postgres.image, 'ghcr.io/zalando/spilo-16:3.3-p3');
    assert.equal(stsOf(spilo).spec.template.spec.containers[0]!.securityContext.runAsUser, 101);
    // With monitoring on, the exporter beside Spilo (which has none) is the exporter's own image, started by its entrypoint.
    const spiloMon = parseConfig(JSON.stringify({ ...exampleConfigInput(), postgres: { flavor: 'spilo', version: 16 }, monitoring: { enabled: true } }));
    const beside = (stsOf(spiloMon).spec.template.spec.containers as unknown as V1Container[])[1]!;
    assert.deepEqual(
      [beside.name, beside.image, beside.command, beside.securityContext?.runAsUser],
      ['postgres-exporter', 'quay.io/prometheuscommunity/postgres-exporter:v0.17.1', undefined, 101],
    );
    assert.equal(stsOf(config).spec.template.spec.containers.length, 1, 'monitoring off: no sidecar');
    const chosen = parseConfig(JSON.stringify({ ...exampleConfigInput(), postgres: { image: 'registry.example.com/pg:17', version: 17 } }));
    assert.equal(chosen.postgres.image, 'registry.example.com/pg:17', 'an image named in the config wins');
    const secretObjs = docs(withSecrets.find((f) => f.path === 'kubernetes/05-secrets.yaml')!);
    const patroni = Buffer.from(
      (secretObjs.find((o) => o.metadata.name === 'postgres-patroni')!.data as Record<string, string>)['patroni.yml']!,
      'base64',
    ).toString();
    assert.match(patroni, /data_dir: \/home\/postgres\/pgdata\/pgroot\/data/);
  });

  it("puts Supabase behind the ingress with Supabase's gateway rules: the apikey checked for auth and REST, the open auth links and storage open, prefixes stripped; apps behind the ingress too", () => {
    type Ing = {
      metadata: { name: string; annotations?: Record<string, string> };
      spec: { ingressClassName: string; rules: { http: { paths: { path: string; backend: { service: { name: string; port: { number: number } } } }[] } }[] };
    };
    const ingress = docs(plain.find((f) => f.path === 'kubernetes/60-ingress.yaml')!).filter((o) => o.kind === 'Ingress') as unknown as Ing[];
    const routes = (name: string) => ingress.find((o) => o.metadata.name === name)!;
    const paths = (i: Ing) => i.spec.rules[0]!.http.paths.map((p) => `${p.path}→${p.backend.service.name}:${p.backend.service.port.number}`);
    assert.deepEqual(paths(routes('supabase')), ['/auth/v1→auth:9999', '/rest/v1→rest:3000']);
    assert.deepEqual(paths(routes('supabase-open')), [
      '/auth/v1/verify→auth:9999',
      '/auth/v1/callback→auth:9999',
      '/auth/v1/authorize→auth:9999',
      '/storage/v1→storage:5000',
    ]);
    const middlewares = (i: Ing) => i.metadata.annotations?.['traefik.ingress.kubernetes.io/router.middlewares'];
    assert.equal(middlewares(routes('supabase')), 'supabase-cors@file,supabase-apikey@file,supabase-strip@file');
    assert.equal(middlewares(routes('supabase-open')), 'supabase-cors@file,supabase-strip@file', 'no key asked where none can be sent');
    assert.ok(ingress.every((i) => i.spec.ingressClassName === 'traefik'));
    // The middlewares, in Traefik's file provider: forwardAuth to gateway-auth beside Traefik, the keys only in a Secret.
    const controller = docs(withSecrets.find((f) => f.path === 'kubernetes/55-ingress-controller.yaml')!);
    const dynamic = parseAllDocuments((controller.find((o) => o.kind === 'ConfigMap')!.data as Record<string, string>)['supabase.yml']!)[0]!.toJS() as {
      http: { middlewares: Record<string, Record<string, { address?: string; prefixes?: string[] }>> };
    };
    assert.equal(dynamic.http.middlewares['supabase-apikey']!.forwardAuth!.address, 'http://127.0.0.1:8081/');
    assert.deepEqual(dynamic.http.middlewares['supabase-strip']!.stripPrefix!.prefixes, ['/auth/v1', '/rest/v1', '/storage/v1']);
    type Ds = {
      spec: {
        template: {
          spec: { containers: { name: string; args: string[]; env?: { name: string; valueFrom: { secretKeyRef: { name: string; key: string } } }[] }[] };
        };
      };
    };
    const sidecar = (controller.find((o) => o.kind === 'DaemonSet') as unknown as Ds).spec.template.spec.containers.find((c) => c.name === 'gateway-auth')!;
    assert.deepEqual(sidecar.args, ['gateway-auth', '--listen', '127.0.0.1:8081']);
    assert.deepEqual(
      sidecar.env!.map((e) => `${e.name}=${e.valueFrom.secretKeyRef.name}/${e.valueFrom.secretKeyRef.key}`),
      [
        'SUPABASE_ANON_KEY=supabase-gateway/anon-key',
        'SUPABASE_SERVICE_ROLE_KEY=supabase-gateway/service-role-key',
        'SUPABASE_PREVIOUS_ANON_KEY=supabase-gateway/previous-anon-key',
        'SUPABASE_PREVIOUS_SERVICE_ROLE_KEY=supabase-gateway/previous-service-role-key',
      ],
    );
    const keys = docs(withSecrets.find((f) => f.path === 'kubernetes/05-secrets.yaml')!).find((o) => o.metadata.name === 'supabase-gateway')!;
    assert.equal(keys.metadata.namespace, 'gardenos-system', "beside Traefik: a pod's environment reads Secrets of its own namespace");
    assert.deepEqual(Object.fromEntries(Object.entries(keys.data as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()])), {
      'anon-key': secrets.supabase.anonKey,
      'service-role-key': secrets.supabase.serviceRoleKey,
    });
    const apps = docs(plain.find((f) => f.path === 'kubernetes/50-apps.yaml')!);
    const api = apps.find((o) => o.kind === 'Deployment' && o.metadata.name === 'main-api') as unknown as {
      spec: {
        replicas: number;
        template: {
          spec: {
            containers: {
              env: { name: string; valueFrom: { secretKeyRef: { name: string } } }[];
              readinessProbe: { httpGet: { path: string } };
              livenessProbe: { httpGet: { path: string } };
              resources: unknown;
            }[];
          };
        };
      };
    };
    const c = api.spec.template.spec.containers[0]!;
    assert.deepEqual(
      c.env.map((e) => [e.name, e.valueFrom.secretKeyRef.name]),
      [['DATABASE_URL', 'main-api-secrets']],
    );
    assert.equal(c.readinessProbe.httpGet.path, '/ready', 'readyPath: ready only when its database answers');
    assert.equal(c.livenessProbe.httpGet.path, '/health');
    assert.deepEqual(c.resources, { requests: { cpu: '100m', memory: '256Mi' }, limits: { memory: '256Mi' } });
  });

  it("starts Supabase's containers as a numeric non-root user, and PostgREST's admin server on its own port", () => {
    type Pod = {
      securityContext: { runAsNonRoot?: boolean; runAsUser?: number };
      containers: {
        env: { name: string; value?: string }[];
        ports: { name: string; containerPort: number }[];
        readinessProbe: { httpGet: { path: string; port: string } };
        livenessProbe: { httpGet: { path: string; port: string } };
      }[];
    };
    const supa = docs(plain.find((f) => f.path === 'kubernetes/40-supabase.yaml')!).filter((o) => o.kind === 'Deployment');
    const pod = (name: string) => (supa.find((o) => o.metadata.name === name) as unknown as { spec: { template: { spec: Pod } } }).spec.template.spec;
    for (const name of ['auth', 'rest', 'storage']) {
      const sc = pod(name).securityContext;
      assert.ok(
        sc.runAsNonRoot && Number.isInteger(sc.runAsUser) && sc.runAsUser! > 0,
        `${name}: the kubelet can verify a numeric non-root user (${JSON.stringify(sc)})`,
      );
    }
    const rest = pod('rest').containers[0]!;
    const admin = rest.env.find((e) => e.name === 'PGRST_ADMIN_SERVER_PORT')!.value;
    assert.notEqual(Number(admin), rest.ports.find((p) => p.name === 'http')!.containerPort, 'the admin server does not take the API port');
    assert.equal(rest.ports.find((p) => p.name === 'status')!.containerPort, Number(admin));
    assert.deepEqual(
      [rest.readinessProbe.httpGet, rest.livenessProbe.httpGet],
      [
        { path: '/ready', port: 'status' },
        { path: '/live', port: 'status' },
      ],
      "probed on PostgREST's admin server",
    );
  });

  it("installs Traefik on every node's HTTP and HTTPS ports with least privilege, and the routes name its class", () => {
    const objs = docs(plain.find((f) => f.path === 'kubernetes/55-ingress-controller.yaml')!);
    type Ds = {
      spec: { template: { spec: { securityContext: { runAsUser: number }; containers: { args: string[]; ports: { name: string; hostPort?: number }[] }[] } } };
    };
    const ds = objs.find((o) => o.kind === 'DaemonSet') as unknown as Ds;
    const c = ds.spec.template.spec.containers[0]!;
    assert.deepEqual(
      c.ports.filter((p) => p.hostPort).map((p) => [p.name, p.hostPort]),
      [
        ['web', 80],
        ['websecure', 443],
      ],
    );
    assert.ok(c.args.includes('--providers.kubernetesingress.ingressClass=traefik'));
    assert.ok(c.args.includes('--providers.kubernetesingress.namespaces=apps,supabase'), 'watches only the namespaces with routes');
    assert.ok(c.args.includes('--entryPoints.web.http.redirections.entryPoint.to=:443'), 'HTTP goes to HTTPS');
    assert.ok(
      c.args.includes('--providers.kubernetesingress.allowEmptyServices=true'),
      'a route without ready pods answers 503, never falls through to a shorter one',
    );
    assert.equal(objs.find((o) => o.kind === 'IngressClass')!.metadata.name, 'traefik');
    const clusterRole = objs.find((o) => o.kind === 'ClusterRole') as unknown as { rules: { resources: string[] }[] };
    assert.deepEqual(clusterRole.rules.flatMap((r) => r.resources).sort(), ['ingressclasses', 'nodes'], 'reads no Secret cluster-wide');
    assert.deepEqual(
      objs.filter((o) => o.kind === 'Role').map((o) => o.metadata.namespace),
      ['apps', 'supabase'],
    );
    // K3s's own Traefik stays off (the rules refuse otherwise): one controller on the ports.
    const k3s = plain.find((f) => f.path.endsWith('/etc/rancher/k3s/config.yaml'))!.content;
    assert.match(k3s, /- traefik/);
  });

  it("gets each host's certificate where its tls says: ACME through cert-manager, GardenOS's CA, or the user's Secret", async () => {
    const mixed = parseConfig(`cluster: { name: tls }
nodes: [{ name: n1, address: { public: 10.0.0.1, private: 10.0.0.1 }, roles: [etcd, k3s-server, postgres, haproxy] }]
supabase: { enabled: false }
ingress:
  acme: { email: ops@example.com }
  hosts:
    - { name: public.example.com, tls: acme }
    - { name: private.example.internal }
    - { name: own.example.com, tlsSecret: own-cert }
apps:
  - { name: web, image: x/web:1, readyPath: /ready, routes: [{ host: public.example.com }, { host: private.example.internal }, { host: own.example.com, path: /own }] }
`);
    const tlsDir = await mkdtemp(join(tmpdir(), 'gardenos-tls-'));
    try {
      await ensurePlatformSecrets(tlsDir, mixed);
      const pki = await ensurePlatformPki(tlsDir, mixed);
      assert.ok(pki.created.includes('ingress-private.example.internal'), 'the internal host has a certificate from the CA');
      assert.ok(
        !pki.created.some((n) => n.includes('public.example.com') || n.includes('own.example.com')),
        'no CA certificate for hosts that get theirs elsewhere',
      );
      const files = await renderPlatform(mixed, { secretsDir: tlsDir, withSecrets: true });
      const ingress = docs(files.find((f) => f.path === 'kubernetes/60-ingress.yaml')!);
      const web = ingress.find((o) => o.kind === 'Ingress') as unknown as { spec: { tls: { hosts: string[]; secretName: string }[] } };
      assert.deepEqual(web.spec.tls, [
        { hosts: ['public.example.com'], secretName: 'public.example.com-tls' },
        { hosts: ['private.example.internal'], secretName: 'private.example.internal-tls' },
        { hosts: ['own.example.com'], secretName: 'own-cert' },
      ]);
      const cert = ingress.find((o) => o.kind === 'Certificate') as unknown as {
        metadata: { namespace: string };
        spec: { secretName: string; dnsNames: string[]; issuerRef: { name: string; kind: string } };
      };
      assert.deepEqual(
        [cert.metadata.namespace, cert.spec.secretName, cert.spec.dnsNames, cert.spec.issuerRef],
        ['apps', 'public.example.com-tls', ['public.example.com'], { kind: 'ClusterIssuer', name: 'gardenos-acme' }],
      );
      const issuer = docs(files.find((f) => f.path === 'kubernetes/65-acme-issuer.yaml')!)[0] as unknown as {
        spec: { acme: { email: string; server: string; solvers: { http01: { ingress: { ingressClassName: string } } }[] } };
      };
      assert.deepEqual(
        [issuer.spec.acme.email, issuer.spec.acme.server, issuer.spec.acme.solvers[0]!.http01.ingress.ingressClassName],
        ['ops@example.com', 'https://acme-v02.api.letsencrypt.org/directory', 'traefik'],
      );
      const tlsSecrets = docs(files.find((f) => f.path === 'kubernetes/05-secrets.yaml')!).filter((o) => o.type === 'kubernetes.io/tls');
      assert.deepEqual(
        tlsSecrets.map((o) => `${o.metadata.namespace}/${o.metadata.name}`),
        ['apps/private.example.internal-tls'],
        "GardenOS writes only the internal host's Secret",
      );
      for (const f of files.filter((x) => x.path.startsWith('kubernetes/') && !x.path.endsWith('kustomization.yaml')))
        for (const o of docs(f)) await validate(o);
    } finally {
      await rm(tlsDir, { recursive: true, force: true });
    }
  });

  it("monitoring on: Prometheus (its own etcd client certificate, no API token: the router's pods by DNS), Alertmanager and node-exporter, valid objects; promtool accepts its configuration and rules", async () => {
    const mdir = await mkdtemp(join(tmpdir(), 'gardenos-platform-mon-'));
    try {
      const mon = parseConfig(
        `${await readFile(new URL('../../examples/gardenos.yaml', import.meta.url), 'utf8')}\nmonitoring: { enabled: true, retention: 30d, storage: 50Gi }\n`,
      );
      await ensurePlatformSecrets(mdir, mon);
      const pki = await ensurePlatformPki(mdir, mon);
      assert.ok(pki.created.includes('etcd-client-prometheus'), 'an etcd client identity of its own');
      const files = await renderPlatform(mon, { secretsDir: mdir, withSecrets: true });
      const objects = docs(files.find((f) => f.path === 'kubernetes/70-monitoring.yaml')!);
      for (const o of objects) await validate(o);
      assert.deepEqual(
        objects.map((o) => `${o.kind}/${o.metadata.name}`).filter((k) => /StatefulSet|Deployment|DaemonSet/.test(k)),
        ['StatefulSet/prometheus', 'Deployment/alertmanager', 'DaemonSet/node-exporter'],
      );
      assert.deepEqual(
        objects.filter((o) => /Role|ServiceAccount/.test(o.kind)),
        [],
        'no RBAC: it needs none',
      );
      const headless = objects.find((o) => o.kind === 'Service' && o.metadata.name === 'gardenos-router-metrics') as unknown as {
        metadata: { namespace: string };
        spec: { clusterIP: string; selector: Record<string, string> };
      };
      assert.deepEqual(
        [headless.metadata.namespace, headless.spec.clusterIP, headless.spec.selector['app.kubernetes.io/name']],
        ['database', 'None', 'gardenos-router'],
      );
      const sts = objects.find((o) => o.kind === 'StatefulSet') as unknown as {
        spec: {
          template: {
            spec: {
              automountServiceAccountToken: boolean;
              containers: { args: string[]; securityContext: Record<string, unknown> }[];
              securityContext: Record<string, unknown>;
            };
          };
          volumeClaimTemplates: { spec: { resources: { requests: { storage: string } } } }[];
        };
      };
      assert.ok(sts.spec.template.spec.containers[0]!.args.includes('--storage.tsdb.retention.time=30d'));
      assert.equal(sts.spec.volumeClaimTemplates[0]!.spec.resources.requests.storage, '50Gi');
      assert.equal(sts.spec.template.spec.securityContext.runAsNonRoot, true);
      assert.equal(sts.spec.template.spec.automountServiceAccountToken, false);
      assert.equal(sts.spec.template.spec.containers[0]!.securityContext.readOnlyRootFilesystem, true);
      const secretsFile = docs(files.find((f) => f.path === 'kubernetes/05-secrets.yaml')!);
      assert.deepEqual(
        secretsFile.filter((o) => /^(prometheus|postgres-exporter)/.test(o.metadata.name)).map((o) => `${o.metadata.namespace}/${o.metadata.name}`),
        ['gardenos-system/prometheus-etcd-client', 'gardenos-system/prometheus-haproxy-stats', 'database/postgres-exporter'],
      );
      // postgres-exporter beside each Patroni member: GardenOS's image, the node's address, the pod's own socket, least privilege.
      const patroni = docs(files.find((f) => f.path === 'kubernetes/20-postgres.yaml')!).find((o) => o.kind === 'StatefulSet') as unknown as {
        spec: { template: { spec: { containers: V1Container[]; volumes: { name: string; secret?: { secretName: string } }[] } } };
      };
      const [postgresC, exporter] = patroni.spec.template.spec.containers;
      assert.equal(exporter!.name, 'postgres-exporter');
      assert.equal(exporter!.image, postgresC!.image, "GardenOS's image carries Debian's exporter");
      assert.deepEqual(exporter!.command, ['prometheus-postgres-exporter']);
      assert.ok(exporter!.args?.includes('--web.listen-address=$(POD_IP):9187'));
      const env = Object.fromEntries((exporter!.env ?? []).map((e) => [e.name, e.value]));
      assert.equal(env.DATA_SOURCE_URI, ':5432/postgres?host=/var/run/postgresql&sslmode=disable');
      assert.equal(env.DATA_SOURCE_USER, 'gardenos_monitor');
      assert.equal(exporter!.readinessProbe, undefined, 'an exporter that cannot log in never holds its member back');
      assert.deepEqual([exporter!.securityContext?.runAsUser, exporter!.securityContext?.readOnlyRootFilesystem], [999, true]);
      assert.deepEqual(
        (exporter!.volumeMounts ?? []).map((v) => v.mountPath),
        ['/var/run/postgresql', '/etc/postgres-exporter'],
      );
      assert.equal(patroni.spec.template.spec.volumes.find((v) => v.name === 'exporter')?.secret?.secretName, 'postgres-exporter');
      // Its role, by a psql script that holds no secret.
      const roleSql = files.find((f) => f.path === 'postgres/monitoring-role.sql')!.content;
      assert.match(roleSql, /ALTER ROLE "gardenos_monitor" WITH LOGIN NOSUPERUSER .* PASSWORD :'verifier';\nGRANT "pg_monitor" TO "gardenos_monitor";/);
      // promtool on the ConfigMap's files, the paths the pod mounts made real in a scratch directory.
      const cm = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'prometheus') as unknown as { data: Record<string, string> };
      const root = join(mdir, 'etc-prometheus');
      const { mkdir, writeFile, copyFile } = await import('node:fs/promises');
      await mkdir(join(root, 'etcd'), { recursive: true });
      await mkdir(join(root, 'haproxy'), { recursive: true });
      await copyFile(join(mdir, 'pki', 'ca.crt'), join(root, 'etcd', 'ca.crt'));
      await copyFile(join(mdir, 'pki', 'etcd-client-prometheus.crt'), join(root, 'etcd', 'tls.crt'));
      await copyFile(join(mdir, 'pki', 'etcd-client-prometheus.key'), join(root, 'etcd', 'tls.key'));
      await writeFile(join(root, 'haproxy', 'password'), 'x');
      for (const [name, text] of Object.entries(cm.data)) await writeFile(join(root, name), text.replaceAll('/etc/prometheus', root));
      const { execFile } = await import('node:child_process');
      const { promisify } = await import('node:util');
      const out = await promisify(execFile)('promtool', ['check', 'config', join(root, 'prometheus.yml')]).catch((e: { stdout: string; stderr: string }) => {
        throw new Error(`promtool check config: ${e.stdout}${e.stderr}`);
      });
      assert.match(out.stdout, /SUCCESS: 1 rule files found/);
      assert.doesNotMatch(cm.data['gardenos.rules.yml']!, /GardenOSBackup/, "the backup alerts are the local profile's");
      assert.match(cm.data['prometheus.yml']!, /names:\n\s+- gardenos-router-metrics\.database\.svc/);
      const scrape = parse(cm.data['prometheus.yml']!) as { scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[] };
      const nodes = mon.nodes.filter((n) => n.roles.includes('postgres')).map((n) => `${n.address.private}:9187`);
      assert.deepEqual(
        scrape.scrape_configs.find((j) => j.job_name === 'postgres')!.static_configs.flatMap((c) => c.targets),
        nodes,
        'one exporter per member, on its node',
      );
      assert.deepEqual(
        scrape.scrape_configs.find((j) => j.job_name === 'node')!.static_configs.flatMap((c) => c.targets),
        mon.nodes.filter((n) => n.roles.includes('k3s-server')).map((n) => `${n.address.private}:9100`),
        'node-exporter where its DaemonSet runs: the Kubernetes nodes, never an etcd-only host',
      );
    } finally {
      await rm(mdir, { recursive: true, force: true });
    }
  });

  it("pooler on: PgBouncer pods behind postgres-pooler, sending every database to postgres-primary verified against the CA; a certificate of their own (never PostgreSQL's key); valid objects", async () => {
    const pdir = await mkdtemp(join(tmpdir(), 'gardenos-platform-pooler-'));
    try {
      const pooled = parseConfig(
        (await readFile(new URL('../../examples/gardenos.yaml', import.meta.url), 'utf8')).replace(
          'pooler:\n  enabled: false\n  port: 6432\n',
          'pooler:\n  enabled: true\n  port: 6433\n  replicas: 3\n',
        ),
      );
      assert.equal(pooled.pooler.enabled, true);
      const pooledSecrets = await ensurePlatformSecrets(pdir, pooled);
      const pki = await ensurePlatformPki(pdir, pooled);
      assert.ok(pki.created.includes('postgres-pooler'), 'a certificate of its own');
      const files = await renderPlatform(pooled, { secretsDir: pdir, withSecrets: true });
      const kustomization = parse(files.find((f) => f.path === 'kubernetes/kustomization.yaml')!.content) as { resources: string[] };
      assert.ok(
        kustomization.resources.indexOf('25-pooler.yaml') > kustomization.resources.indexOf('20-postgres.yaml'),
        'applied after PostgreSQL, before the router',
      );
      const objects = docs(files.find((f) => f.path === 'kubernetes/25-pooler.yaml')!);
      for (const o of objects) await validate(o);
      assert.deepEqual(
        objects.map((o) => `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`),
        [
          'ConfigMap/database/postgres-pooler',
          'Service/database/postgres-pooler',
          'PodDisruptionBudget/database/postgres-pooler',
          'Deployment/database/postgres-pooler',
        ],
      );
      const ini = (objects[0] as unknown as { data: Record<string, string> }).data['pgbouncer.ini']!;
      assert.match(ini, /^\* = host=postgres-primary\.database\.svc port=5432$/m, 'every database through the primary route');
      assert.match(ini, /^server_tls_sslmode = verify-full$/m);
      assert.match(ini, /^listen_port = 6433$/m);
      assert.match(ini, /^auth_file = \/etc\/pgbouncer-secret\/userlist\.txt$/m);
      assert.ok(!ini.includes(pooledSecrets.superuserPassword), 'no password in the ConfigMap');
      const deploy = objects[3] as unknown as {
        spec: { replicas: number; template: { spec: { containers: V1Container[]; volumes: { name: string; secret?: { secretName: string } }[] } } };
      };
      const [c] = deploy.spec.template.spec.containers;
      assert.equal(deploy.spec.replicas, 3);
      assert.equal(c!.image, pooled.postgres.image, "GardenOS's PostgreSQL image carries Debian's pgbouncer");
      assert.deepEqual(c!.command, ['pgbouncer', '/etc/pgbouncer/pgbouncer.ini']);
      assert.deepEqual(
        [c!.securityContext?.runAsUser, c!.securityContext?.readOnlyRootFilesystem, c!.securityContext?.capabilities?.drop],
        [999, true, ['ALL']],
        'not root (PgBouncer refuses it), nothing writable but its socket directory',
      );
      assert.deepEqual(
        deploy.spec.template.spec.volumes.filter((v) => v.secret).map((v) => v.secret!.secretName),
        ['postgres-pooler'],
      );
      const secret = docs(files.find((f) => f.path === 'kubernetes/05-secrets.yaml')!).find((o) => o.metadata.name === 'postgres-pooler') as unknown as {
        data: Record<string, string>;
      };
      const data = Object.fromEntries(Object.entries(secret.data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
      assert.deepEqual(Object.keys(data).sort(), ['admin-password', 'ca.crt', 'tls.crt', 'tls.key', 'userlist.txt']);
      assert.equal(data['tls.key'], await readFile(join(pdir, 'pki', 'postgres-pooler.key'), 'utf8'));
      assert.notEqual(data['tls.key'], await readFile(join(pdir, 'pki', 'postgres-server.key'), 'utf8'));
      // The certificate names the Service as clients reach it.
      const { X509Certificate } = await import('node:crypto');
      const cert = new X509Certificate(data['tls.crt']!);
      assert.match(cert.subjectAltName ?? '', /DNS:postgres-pooler\.database\.svc\b/);
      // Off (the example's default): nothing of it is rendered.
      assert.ok(!withSecrets.some((f) => f.path === 'kubernetes/25-pooler.yaml' || /postgres-pooler/.test(f.content)));
    } finally {
      await rm(pdir, { recursive: true, force: true });
    }
  });

  it('backups on: a repository pod over mutual TLS (its own certificate and volume), a pgBackRest server beside each member, archive_command on every member, a CronJob per schedule; valid objects; the passphrase only in Secrets', async () => {
    const bdir = await mkdtemp(join(tmpdir(), 'gardenos-platform-backups-'));
    try {
      const text = (await readFile(new URL('../../examples/gardenos.yaml', import.meta.url), 'utf8')).replace(
        'backups:\n  enabled: false\n',
        'backups:\n  enabled: true\n  schedule: { incr: "0 */6 * * *", timeZone: Europe/Berlin }\n',
      );
      const backed = parseConfig(text);
      assert.equal(backed.backups.enabled, true);
      const bsecrets = await ensurePlatformSecrets(bdir, backed);
      assert.ok(bsecrets.backupCipherPass && bsecrets.backupCipherPass.length >= 40, 'a generated passphrase');
      const pki = await ensurePlatformPki(bdir, backed);
      assert.ok(pki.created.includes('pgbackrest-repo'), 'a certificate of its own');
      const files = await renderPlatform(backed, { secretsDir: bdir, withSecrets: true });
      const kustomization = parse(files.find((f) => f.path === 'kubernetes/kustomization.yaml')!.content) as { resources: string[] };
      assert.equal(kustomization.resources.indexOf('22-backups.yaml'), kustomization.resources.indexOf('20-postgres.yaml') + 1);
      const objects = docs(files.find((f) => f.path === 'kubernetes/22-backups.yaml')!);
      for (const o of objects) await validate(o);
      assert.deepEqual(
        objects.map((o) => `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`),
        [
          'ConfigMap/database/pgbackrest-scripts',
          'Service/database/pgbackrest-repo',
          'StatefulSet/database/pgbackrest-repo',
          'CronJob/database/pgbackrest-full',
          'CronJob/database/pgbackrest-diff',
          'CronJob/database/pgbackrest-incr',
        ],
      );
      type CronJob = {
        spec: {
          schedule: string;
          timeZone?: string;
          jobTemplate: { spec: { template: { metadata: { labels: Record<string, string> }; spec: { containers: V1Container[] } } } };
        };
      };
      const crons = objects.filter((o) => o.kind === 'CronJob') as unknown as CronJob[];
      assert.deepEqual(
        crons.map((c) => [c.spec.schedule, c.spec.timeZone]),
        [
          ['0 2 * * 0', 'Europe/Berlin'],
          ['0 2 * * 1-6', 'Europe/Berlin'],
          ['0 */6 * * *', 'Europe/Berlin'],
        ],
      );
      // A Job's pod never carries the repository's labels (its Service would send WAL to it).
      const service = objects.find((o) => o.kind === 'Service') as unknown as { spec: { selector: Record<string, string> } };
      for (const c of crons)
        assert.ok(
          !Object.entries(service.spec.selector).every(([k, v]) => c.spec.jobTemplate.spec.template.metadata.labels[k] === v),
          'not selected by the Service',
        );
      const fullScript = crons[0]!.spec.jobTemplate.spec.template.spec.containers[0]!.command!.join(' ');
      assert.match(fullScript, /--type=full backup/);
      assert.match(fullScript, /pg_amcheck .*--all/, 'a restore test after each full backup');
      assert.doesNotMatch(crons[1]!.spec.jobTemplate.spec.template.spec.containers[0]!.command!.join(' '), /pg_amcheck/, 'none after a differential');

      // The members: a pgBackRest server beside PostgreSQL, its configuration (member.conf only) where archive_command reads it.
      const sts = docs(files.find((f) => f.path === 'kubernetes/20-postgres.yaml')!).find((o) => o.kind === 'StatefulSet') as unknown as {
        spec: {
          template: {
            spec: {
              containers: V1Container[];
              volumes: { name: string; projected?: { sources: { secret?: { name: string; items: { key: string }[] }; configMap?: { name: string } }[] } }[];
            };
          };
        };
      };
      const sidecar = sts.spec.template.spec.containers.find((c) => c.name === 'pgbackrest')!;
      assert.deepEqual(sidecar.command, ['pgbackrest', 'server', '--tls-server-address=$(POD_IP)']);
      assert.equal(sidecar.securityContext?.runAsUser, 999);
      const confVolume = sts.spec.template.spec.volumes.find((v) => v.name === 'pgbackrest')!;
      assert.deepEqual(
        confVolume.projected!.sources.flatMap((src) =>
          src.secret ? src.secret.items.map((i) => `${src.secret!.name}/${i.key}`) : [`configmap/${src.configMap!.name}`],
        ),
        ['pgbackrest/member.conf', 'configmap/pgbackrest-scripts'],
        "never the repository's key in a member's pod; the replica method's script beside member.conf",
      );
      const secretsDoc = docs(files.find((f) => f.path === 'kubernetes/05-secrets.yaml')!);
      const decoded = (name: string) =>
        Object.fromEntries(
          Object.entries((secretsDoc.find((o) => o.metadata.name === name) as unknown as { data: Record<string, string> }).data).map(([k, v]) => [
            k,
            Buffer.from(v, 'base64').toString('utf8'),
          ]),
        );
      const patroni = parse(decoded('postgres-patroni')['patroni.yml']!) as {
        postgresql: { parameters: Record<string, string>; recovery_conf: Record<string, string>; create_replica_methods: string[]; pgbackrest: unknown };
      };
      // A new replica (and `db reinit`) from the repository first, by the script in the ConfigMap the members mount.
      assert.deepEqual(
        [patroni.postgresql.create_replica_methods, patroni.postgresql.pgbackrest],
        [['pgbackrest', 'basebackup'], { command: 'python3 /etc/pgbackrest/replica-from-backup.py', no_params: true }],
      );
      assert.match(
        String((objects.find((o) => o.kind === 'ConfigMap') as unknown as { data: Record<string, string> }).data['replica-from-backup.py']),
        /--type=standby/,
      );
      assert.equal(patroni.postgresql.parameters.archive_mode, 'on');
      assert.match(
        patroni.postgresql.parameters.archive_command!,
        /^pgbackrest --config=\/etc\/pgbackrest\/pgbackrest\.conf --stanza=gardenos .* archive-push "%p"$/,
      );
      assert.match(patroni.postgresql.recovery_conf.restore_command!, /archive-get %f "%p"$/);
      const pb = decoded('pgbackrest');
      assert.deepEqual(Object.keys(pb).sort(), ['ca.crt', 'member.conf', 'repo.conf', 'tls.crt', 'tls.key']);
      // Mutual TLS both ways, each server letting in the other side's certificate only.
      assert.match(pb['member.conf']!, /^repo1-host=pgbackrest-repo\.database\.svc$/m);
      assert.match(pb['member.conf']!, /^tls-server-auth=pgbackrest-repo=gardenos$/m);
      assert.match(pb['repo.conf']!, /^tls-server-auth=gardenos=gardenos$/m);
      assert.match(pb['repo.conf']!, /^pg3-host=gardenos-2\.gardenos\.database\.svc$/m);
      assert.match(pb['repo.conf']!, /^repo1-cipher-pass=/m);
      // The members' certificate names each pod as the repository reaches it (pgBackRest checks DNS names only).
      const { X509Certificate } = await import('node:crypto');
      const pgCert = new X509Certificate(await readFile(join(bdir, 'pki', 'postgres-server.crt'), 'utf8'));
      assert.match(pgCert.subjectAltName ?? '', /DNS:gardenos-0\.gardenos\.database\.svc\b/);
      const repoCert = new X509Certificate(pb['tls.crt']!);
      assert.match(repoCert.subject, /CN=pgbackrest-repo/);
      assert.match(repoCert.subjectAltName ?? '', /DNS:pgbackrest-repo\.database\.svc\b/);
      // The passphrase is in the Secret only: never in a file that is not marked secret.
      for (const f of files.filter((x) => !x.secret)) assert.ok(!f.content.includes(bsecrets.backupCipherPass!), `${f.path} holds the passphrase`);
      // A seconds field is the local scheduler's only; Spilo's image is refused (one pgBackRest everywhere).
      const problem = (yaml: string, re: RegExp) =>
        assert.throws(
          () => parseConfig(yaml),
          (e: unknown) => e instanceof GardenError && e.details.some((d) => re.test(d)),
        );
      problem(text.replace('incr: "0 */6 * * *"', 'incr: "30 0 */6 * * *"'), /backups\.schedule\.incr: .*seconds field/);
      problem(text.replace('postgres:\n  version: 15', 'postgres:\n  flavor: spilo\n  version: 15'), /backups\.enabled: .*flavor gardenos/);
    } finally {
      await rm(bdir, { recursive: true, force: true });
    }
  });

  it("backups into S3 on the platform: the access key and the endpoint's CA only in the repository's configuration (never a member's), read from files only their owner reads; the repository pod restarts when its storage moves", async () => {
    const sdir = await mkdtemp(join(tmpdir(), 'gardenos-platform-s3-'));
    try {
      const base = (await readFile(new URL('../../examples/gardenos.yaml', import.meta.url), 'utf8')).replace(
        'backups:\n  enabled: false\n',
        'backups:\n  enabled: true\n',
      );
      const key = { accessKeyId: 'AKPLATFORM1', secretAccessKey: 'SKplatform-secret-1' };
      await writeFile(join(sdir, 's3.json'), JSON.stringify(key), { mode: 0o600 });
      const caPem = (await createCa('test S3 CA', 2)).cert;
      await writeFile(join(sdir, 's3-ca.crt'), caPem);
      const s3Yaml = base.replace(
        'backups:\n  enabled: true\n',
        `backups:\n  enabled: true\n  repository: { s3: { endpoint: "s3.storage.svc.cluster.local:8333", bucket: garden-backups, uriStyle: path, caFile: ${join(sdir, 's3-ca.crt')}, credentialsFile: ${join(sdir, 's3.json')} } }\n`,
      );
      const onS3 = parseConfig(s3Yaml);
      await ensurePlatformSecrets(sdir, onS3);
      await ensurePlatformPki(sdir, onS3);
      const files = await renderPlatform(onS3, { secretsDir: sdir, withSecrets: true });
      const pb = Object.fromEntries(
        Object.entries(
          (
            docs(files.find((f) => f.path === 'kubernetes/05-secrets.yaml')!).find((o) => o.metadata.name === 'pgbackrest') as unknown as {
              data: Record<string, string>;
            }
          ).data,
        ).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]),
      );
      assert.equal(pb['s3-ca.crt'], caPem);
      const repoConf = pb['repo.conf']!.split('\n');
      for (const line of [
        'repo1-type=s3',
        'repo1-path=/gardenos',
        'repo1-s3-endpoint=s3.storage.svc.cluster.local',
        'repo1-storage-port=8333',
        'repo1-s3-bucket=garden-backups',
        'repo1-storage-ca-file=/etc/pgbackrest/s3-ca.crt',
        `repo1-s3-key=${key.accessKeyId}`,
        `repo1-s3-key-secret=${key.secretAccessKey}`,
      ])
        assert.ok(repoConf.includes(line), `${line} in repo.conf`);
      // A member names no storage (the repository server's own is used) and never holds the key.
      assert.doesNotMatch(pb['member.conf']!, /repo1-path|repo1-type|repo1-s3|AKPLATFORM1|SKplatform/);
      assert.match(pb['member.conf']!, /^repo1-cipher-pass=/m, 'a member still encrypts what it pushes');
      for (const f of files.filter((x) => !x.secret)) assert.ok(!f.content.includes(key.secretAccessKey), `${f.path} holds the S3 secret key`);
      const repoSts = (rendered: typeof files) =>
        docs(rendered.find((f) => f.path === 'kubernetes/22-backups.yaml')!).find((o) => o.kind === 'StatefulSet') as unknown as {
          spec: {
            template: {
              metadata: { annotations: Record<string, string> };
              spec: { volumes: { name: string; secret?: { items: { key: string; path: string }[] } }[] };
            };
          };
        };
      const sts = repoSts(files);
      assert.ok(
        sts.spec.template.spec.volumes.find((v) => v.name === 'config')!.secret!.items.some((i) => i.key === 's3-ca.crt' && i.path === 's3-ca.crt'),
        "the endpoint's CA mounted where repo.conf names it",
      );
      const onDisk = parseConfig(base);
      const dirSts = repoSts(await renderPlatform(onDisk, { secretsDir: sdir }));
      assert.notEqual(
        sts.spec.template.metadata.annotations['gardenos.dev/repository-revision'],
        dirSts.spec.template.metadata.annotations['gardenos.dev/repository-revision'],
        'moving the repository rolls its pod',
      );
      // The key file must be its owner's only; the CA file must exist: clear errors, nothing rendered.
      await chmod(join(sdir, 's3.json'), 0o644);
      await assert.rejects(renderPlatform(onS3, { secretsDir: sdir, withSecrets: true }), /s3\.json can be read by others/);
      await chmod(join(sdir, 's3.json'), 0o600);
      await rm(join(sdir, 's3-ca.crt'));
      await assert.rejects(renderPlatform(onS3, { secretsDir: sdir, withSecrets: true }), /caFile .*s3-ca\.crt: no such file/);
    } finally {
      await rm(sdir, { recursive: true, force: true });
    }
  });

  it("rotates Supabase's JWT secret in two steps: both secrets verify and both keys pass the gateway until the previous is retired; each step rolls the pods", async () => {
    const { importJWK, jwtVerify: verify } = await import('jose');
    // As PostgREST uses a key set of HS256 secrets: the token verifies if one of them verifies it.
    const verifyWithSet = async (token: string, set: string) => {
      for (const jwk of (JSON.parse(set) as { keys: Record<string, string>[] }).keys) {
        const r = await verify(token, await importJWK(jwk, 'HS256'), { algorithms: ['HS256'] }).catch(() => undefined);
        if (r) return r;
      }
      throw new Error('no key of the set verifies the token');
    };
    const { retireSupabaseKeys, rotateSupabaseKeys, readPlatformSecrets } = await import('../../src/platform/secrets.ts');
    const { apikeyVerdict } = await import('../../src/gateway/apikey.ts');
    const rotDir = await mkdtemp(join(tmpdir(), 'gardenos-rotate-'));
    try {
      await ensurePlatformSecrets(rotDir, config);
      await ensurePlatformPki(rotDir, config);
      const revision = (files: RenderedFile[]) => {
        const of = (path: string, kind: string, name: string) =>
          (
            docs(files.find((f) => f.path === path)!).find((o) => o.kind === kind && o.metadata.name === name) as unknown as {
              spec: { template: { metadata: { annotations?: Record<string, string> } } };
            }
          ).spec.template.metadata.annotations?.['gardenos.dev/supabase-keys'];
        const all = [
          of('kubernetes/40-supabase.yaml', 'Deployment', 'auth'),
          of('kubernetes/40-supabase.yaml', 'Deployment', 'rest'),
          of('kubernetes/40-supabase.yaml', 'Deployment', 'storage'),
          of('kubernetes/55-ingress-controller.yaml', 'DaemonSet', 'traefik'),
        ];
        assert.equal(new Set(all).size, 1, `one revision on every pod template that reads the keys: ${all.join(' ')}`);
        return all[0]!;
      };
      const secretData = (files: RenderedFile[], name: string) =>
        Object.fromEntries(
          Object.entries(
            docs(files.find((f) => f.path === 'kubernetes/05-secrets.yaml')!).find((o) => o.metadata.name === name)!.data as Record<string, string>,
          ).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]),
        );
      const before = await renderPlatform(config, { secretsDir: rotDir, withSecrets: true });
      const old = (await readPlatformSecrets(rotDir)).supabase;

      const rotated = (await rotateSupabaseKeys(rotDir, new Date('2026-11-30T00:00:00Z'))).supabase;
      assert.notEqual(rotated.jwtSecret, old.jwtSecret);
      assert.notEqual(rotated.serviceRoleKey, old.serviceRoleKey);
      assert.deepEqual(rotated.previous, {
        jwtSecret: old.jwtSecret,
        anonKey: old.anonKey,
        serviceRoleKey: old.serviceRoleKey,
        rotatedAt: '2026-11-30T00:00:00.000Z',
      });
      const during = await renderPlatform(config, { secretsDir: rotDir, withSecrets: true });
      assert.notEqual(revision(during), revision(before), 'the rotation rolls the pods');
      // PostgREST's key set verifies tokens signed with either secret; GoTrue signs with the new one.
      const jwt = secretData(during, 'supabase-jwt');
      assert.equal(jwt['jwt-secret'], rotated.jwtSecret);
      for (const token of [old.serviceRoleKey, rotated.serviceRoleKey]) assert.equal((await verifyWithSet(token, jwt.jwks!)).payload.role, 'service_role');
      // The gateway admits the old and the new keys while the rotation lasts.
      const gateway = secretData(during, 'supabase-gateway');
      const keys = {
        anonKey: gateway['anon-key']!,
        serviceRoleKey: gateway['service-role-key']!,
        previous: { anonKey: gateway['previous-anon-key']!, serviceRoleKey: gateway['previous-service-role-key']! },
      };
      for (const k of [old.anonKey, old.serviceRoleKey, rotated.anonKey, rotated.serviceRoleKey]) assert.equal(apikeyVerdict({ apikey: k }, keys).status, 200);
      await assert.rejects(rotateSupabaseKeys(rotDir), /a rotation of Supabase's keys started at 2026-11-30T00:00:00.000Z is not finished/);

      // Retired: a backup first; then only the new secret verifies and only the new keys pass.
      const backup = await retireSupabaseKeys(rotDir);
      assert.equal((await stat(backup)).mode & 0o777, 0o600);
      assert.equal(JSON.parse(await readFile(backup, 'utf8')).supabase.previous.jwtSecret, old.jwtSecret, 'the backup can undo a retirement made too early');
      const after = await renderPlatform(config, { secretsDir: rotDir, withSecrets: true });
      assert.notEqual(revision(after), revision(during));
      await assert.rejects(verifyWithSet(old.serviceRoleKey, secretData(after, 'supabase-jwt').jwks!), /no key of the set verifies/);
      assert.equal((await verifyWithSet(rotated.anonKey, secretData(after, 'supabase-jwt').jwks!)).payload.role, 'anon');
      const left = secretData(after, 'supabase-gateway');
      assert.deepEqual(Object.keys(left).sort(), ['anon-key', 'service-role-key']);
      assert.equal(apikeyVerdict({ apikey: old.serviceRoleKey }, { anonKey: left['anon-key']!, serviceRoleKey: left['service-role-key']! }).status, 401);
      await assert.rejects(retireSupabaseKeys(rotDir), /no rotation of Supabase's keys is in progress/);
    } finally {
      await rm(rotDir, { recursive: true, force: true });
    }
  });

  it('refuses a damaged secrets file, naming the file, the field and the way back, before rendering anything', async () => {
    const { readPlatformSecrets } = await import('../../src/platform/secrets.ts');
    const { writeFile: write } = await import('node:fs/promises');
    const bad = await mkdtemp(join(tmpdir(), 'gardenos-damaged-'));
    try {
      const {
        supabase: { jwtSecret: _gone, ...supabase },
        etcdClusterToken: _token,
        ...rest
      } = secrets;
      await write(join(bad, 'secrets.json'), JSON.stringify({ ...rest, supabase }), { mode: 0o600 });
      await assert.rejects(renderPlatform(config, { secretsDir: bad, withSecrets: true }), (e: unknown) => {
        assert.ok(e instanceof GardenError, String(e));
        assert.match(e.message, /secrets\.json is damaged: etcdClusterToken: missing; supabase\.jwtSecret: missing$/);
        assert.match(e.hint ?? '', /restore secrets\.json from your copy/);
        return true;
      });
      await write(join(bad, 'secrets.json'), '{"superuserPassword": "x", ');
      await assert.rejects(readPlatformSecrets(bad), /secrets\.json is damaged: not JSON/);
    } finally {
      await rm(bad, { recursive: true, force: true });
    }
  });

  it('makes anon and service-role keys that verify with the JWT secret and carry the right claims', async () => {
    for (const [key, role] of [
      [secrets.supabase.anonKey, 'anon'],
      [secrets.supabase.serviceRoleKey, 'service_role'],
    ] as const) {
      assert.equal(decodeProtectedHeader(key).alg, 'HS256');
      const { payload } = await jwtVerify(key, new TextEncoder().encode(secrets.supabase.jwtSecret), { issuer: 'supabase', algorithms: ['HS256'] });
      assert.equal(payload.role, role);
      assert.ok(typeof payload.iat === 'number' && typeof payload.exp === 'number' && payload.exp > payload.iat);
    }
    await assert.rejects(jwtVerify(secrets.supabase.anonKey, new TextEncoder().encode('another-secret')));
  });
});

const postgresManifests = (c: Config) => platformManifests(c).find((f) => f.file === '20-postgres.yaml')!.manifests;

function exampleConfigInput(): Record<string, unknown> {
  const c = exampleConfig() as unknown as Record<string, unknown>;
  const { k3s: _k3s, ...rest } = c;
  return rest;
}
