// A real Kubernetes control plane for tests: kube-apiserver, kube-controller-manager and
// kube-scheduler built from Kubernetes' own Go modules (scripts/build-kube.sh), run the way K3s
// runs them on an external datastore — state in GardenOS's 3-member etcd over mutual TLS with the
// etcd client certificate GardenOS issues for K3s, secure port only, client-certificate users,
// Node+RBAC authorization with the default admission plugins, service-account tokens signed and
// verified, controller-manager and scheduler with kubeconfigs of their own and leader election on.
// Each test gets its own address, directory and processes; `stop` removes all of them.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import { parse } from 'yaml';
import { ROUTER_NAME } from '../../src/render/kube/names.ts';
import type { RouterSettings } from '../../src/router/settings.ts';
import { createCa, issue, loadCa, type CertificateAuthority, type PemPair } from '../../src/pki/certs.ts';
import { waitFor } from '../../src/util/wait.ts';
import { processesMentioning } from './local.ts';

const run = promisify(execFile);
const BUILD = fileURLToPath(new URL('../../scripts/build-kube.sh', import.meta.url));

/** K3s's defaults, so what the tests see is what a K3s server on GardenOS's etcd sees. */
export const SERVICE_CIDR = '10.43.0.0/16';
export const CLUSTER_CIDR = '10.42.0.0/16';
export const ETCD_PREFIX = '/registry';
const ISSUER = 'https://kubernetes.default.svc.cluster.local';

export interface EtcdAccess {
  endpoints: string[];
  /** The CA that signed etcd's certificates, and the one whose key issues the K3s datastore client certificate. */
  ca: PemPair;
}

export interface ControlPlaneOptions {
  /** An address of this machine that is not loopback: the API server advertises it in the `kubernetes` Endpoints, which refuse 127.0.0.0/8. */
  host: string;
  etcd: EtcdAccess;
  port?: number;
  /** Run the components inside this network namespace (a test host of `startTestHosts`), as on that host. */
  netns?: string;
  /** The etcd client certificate and key files to use (the platform's etcd-client-k3s); else one is issued from `etcd.ca`. */
  datastore?: { cert: string; key: string };
}

export interface ControlPlane {
  url: string;
  dir: string;
  /** cluster-admin (O=system:masters), as K3s's /etc/rancher/k3s/k3s.yaml. */
  adminKubeconfigFile: string;
  admin(): KubeConfig;
  /** A kubeconfig that authenticates with a bearer token (a ServiceAccount's, from the TokenRequest API). */
  withToken(token: string): KubeConfig;
  /** A ServiceAccount's token, as the kubelet would project it into the pod. */
  serviceAccountToken(namespace: string, name: string): Promise<string>;
  bin: string;
  /** Kubernetes' CA (what the API server trusts for client certificates), to issue a kubelet's. */
  kubeCa: CertificateAuthority;
  stop(): Promise<void>;
}

/** Builds (or finds in the machine's cache) the Kubernetes binaries; returns their directory. */
export async function kubeBinaries(): Promise<string> {
  const { stdout } = await run('bash', [BUILD], { maxBuffer: 1 << 20, timeout: 3_600_000 });
  return stdout.trim().split('\n').pop()!;
}

/** A kubeconfig for one user (a client certificate's PEM pair, or a bearer token) of the API server at `server`. */
export function kubeconfig(server: string, ca: string, user: { certData?: string; keyData?: string; token?: string }, name = 'gardenos-test'): KubeConfig {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name, server, caData: b64(ca) }],
    users: [{ name, ...(user.certData ? { certData: b64(user.certData), keyData: b64(user.keyData!) } : {}), ...(user.token ? { token: user.token } : {}) }],
    contexts: [{ name, cluster: name, user: name }],
    currentContext: name,
  });
  return kc;
}

async function stopChild(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

export async function startControlPlane(o: ControlPlaneOptions): Promise<ControlPlane> {
  const bin = await kubeBinaries();
  const port = o.port ?? 6443;
  const url = `https://${o.host}:${port}`;
  // A run killed mid-test may leave its processes holding this address: they go first.
  for (const pid of await processesMentioning(`--bind-address=${o.host}`)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  const dir = await mkdtemp(join(tmpdir(), 'gardenos-kube-'));
  const pki = join(dir, 'pki');
  await mkdir(pki, { mode: 0o700 });
  const put = async (name: string, content: string) => {
    const file = join(pki, name);
    await writeFile(file, content, { mode: 0o600 });
    return file;
  };
  const pair = async (name: string, p: PemPair) => ({ cert: await put(`${name}.crt`, p.cert), key: await put(`${name}.key`, p.key) });

  // Kubernetes' own CA, apart from etcd's (as K3s keeps server-ca, client-ca and etcd's CA apart).
  const kubeCa = await createCa('gardenos-test kubernetes CA');
  const caFile = await put('ca.crt', kubeCa.cert);
  await put('ca.key', kubeCa.key);
  const serving = await pair(
    'apiserver',
    await issue(kubeCa, {
      commonName: 'kube-apiserver',
      ips: [o.host, '10.43.0.1'],
      dnsNames: ['kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local', 'localhost'],
      usage: 'server-and-client',
    }),
  );
  const client = (commonName: string, organization?: string) => issue(kubeCa, { commonName, usage: 'client', ...(organization ? { organization } : {}) });
  const [admin, kcm, scheduler, kubeletClient] = await Promise.all([
    client('system:admin', 'system:masters'),
    client('system:kube-controller-manager'),
    client('system:kube-scheduler'),
    client('system:kube-apiserver', 'system:masters'),
  ]);
  const kubeletClientFiles = await pair('apiserver-kubelet-client', kubeletClient);
  // The etcd client certificate GardenOS issues for K3s (the platform's etcd-client-k3s), from etcd's CA.
  const etcdCaFile = await put('etcd-ca.crt', o.etcd.ca.cert);
  const datastore = o.datastore ?? (await pair('etcd-client-k3s', await issue(await loadCa(o.etcd.ca), { commonName: 'k3s', usage: 'client' })));
  // Service-account tokens: signed with this key by the API server, verified with its public half.
  const sa = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const saKey = await put('service-account.key', sa.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
  const saPub = await put('service-account.pub', sa.publicKey.export({ type: 'spki', format: 'pem' }).toString());

  const writeKubeconfig = async (name: string, p: PemPair) => {
    const file = join(dir, `${name}.kubeconfig`);
    await writeFile(file, kubeconfig(url, kubeCa.cert, { certData: p.cert, keyData: p.key }, name).exportConfig(), { mode: 0o600 });
    return file;
  };
  const adminKubeconfigFile = await writeKubeconfig('admin', admin);
  const kcmKubeconfig = await writeKubeconfig('kube-controller-manager', kcm);
  const schedulerKubeconfig = await writeKubeconfig('kube-scheduler', scheduler);

  const children: ChildProcess[] = [];
  const start = async (name: string, args: string[]) => {
    const log = join(dir, `${name}.log`);
    const { openSync } = await import('node:fs');
    const fd = openSync(log, 'a', 0o600);
    // `ip netns exec` execs the program itself, so the child is the component (signals reach it).
    const child = o.netns
      ? spawn('ip', ['netns', 'exec', o.netns, join(bin, name), ...args], { stdio: ['ignore', fd, fd] })
      : spawn(join(bin, name), args, { stdio: ['ignore', fd, fd] });
    children.push(child);
    return { child, log };
  };
  const stop = async () => {
    await Promise.all(children.reverse().map((c) => stopChild(c)));
    for (const pid of await processesMentioning(dir)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    await rm(dir, { recursive: true, force: true });
  };

  try {
    const apiserver = await start('kube-apiserver', [
      `--advertise-address=${o.host}`,
      `--bind-address=${o.host}`,
      `--secure-port=${port}`,
      `--cert-dir=${join(dir, 'apiserver-certs')}`,
      '--storage-backend=etcd3',
      `--etcd-servers=${o.etcd.endpoints.join(',')}`,
      `--etcd-cafile=${etcdCaFile}`,
      `--etcd-certfile=${datastore.cert}`,
      `--etcd-keyfile=${datastore.key}`,
      `--etcd-prefix=${ETCD_PREFIX}`,
      `--client-ca-file=${caFile}`,
      `--tls-cert-file=${serving.cert}`,
      `--tls-private-key-file=${serving.key}`,
      `--kubelet-client-certificate=${kubeletClientFiles.cert}`,
      `--kubelet-client-key=${kubeletClientFiles.key}`,
      // K3s's choice: reach kubelets at their addresses, not by names no DNS knows.
      '--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname',
      '--anonymous-auth=false',
      '--authorization-mode=Node,RBAC',
      // K3s's own addition; the rest of the default admission chain is on by default.
      '--enable-admission-plugins=NodeRestriction',
      `--service-account-issuer=${ISSUER}`,
      `--api-audiences=${ISSUER},k3s`,
      `--service-account-key-file=${saPub}`,
      `--service-account-signing-key-file=${saKey}`,
      `--service-cluster-ip-range=${SERVICE_CIDR}`,
      '--service-node-port-range=30000-32767',
      '--allow-privileged=true',
      '--profiling=false',
      '--v=1',
    ]);
    const adminKc = kubeconfig(url, kubeCa.cert, { certData: admin.cert, keyData: admin.key });
    await waitFor(
      'kube-apiserver to be ready',
      async () => {
        if (apiserver.child.exitCode !== null) {
          const tail = (await readFile(apiserver.log, 'utf8')).split('\n').slice(-15).join('\n');
          throw Object.assign(new Error(`kube-apiserver exited (${apiserver.child.exitCode}):\n${tail}`), { permanent: true });
        }
        const res = await fetchWithClientCert(`${url}/readyz`, kubeCa.cert, admin);
        if (res.status !== 200) throw new Error(`/readyz ${res.status}: ${res.body.slice(0, 300)}`);
        return true;
      },
      { timeoutMs: 120_000, intervalMs: 250, isFatal: exited },
    );
    // Each with a kubeconfig of its own (its own identity and RBAC), serving on the test's address, leader election on.
    const component = (kubeconfigFile: string, port: number) => [
      `--kubeconfig=${kubeconfigFile}`,
      `--authentication-kubeconfig=${kubeconfigFile}`,
      `--authorization-kubeconfig=${kubeconfigFile}`,
      `--bind-address=${o.host}`,
      `--secure-port=${port}`,
      '--leader-elect=true',
      '--profiling=false',
      '--v=1',
    ];
    await start('kube-controller-manager', [
      ...component(kcmKubeconfig, 10257),
      `--service-account-private-key-file=${saKey}`,
      `--root-ca-file=${caFile}`,
      '--use-service-account-credentials=true',
      `--cluster-signing-cert-file=${caFile}`,
      `--cluster-signing-key-file=${join(pki, 'ca.key')}`,
      '--allocate-node-cidrs=true',
      `--cluster-cidr=${CLUSTER_CIDR}`,
      `--service-cluster-ip-range=${SERVICE_CIDR}`,
      '--configure-cloud-routes=false',
    ]);
    await start('kube-scheduler', component(schedulerKubeconfig, 10259));
    // Both hold their leader-election Lease, and the controllers have made the default ServiceAccount.
    const k8s = await import('@kubernetes/client-node');
    const coordination = adminKc.makeApiClient(k8s.CoordinationV1Api);
    const core = adminKc.makeApiClient(k8s.CoreV1Api);
    await waitFor(
      'kube-controller-manager and kube-scheduler to hold their leader Leases',
      async () => {
        for (const name of ['kube-controller-manager', 'kube-scheduler']) {
          const dead = children.find((c) => c.spawnargs.some((a) => a.endsWith(`/${name}`)) && c.exitCode !== null);
          if (dead) throw Object.assign(new Error(`${name} exited (${dead.exitCode}): see ${join(dir, `${name}.log`)}`), { permanent: true });
          const lease = await coordination.readNamespacedLease({ name, namespace: 'kube-system' }).catch(() => undefined);
          if (!lease?.spec?.holderIdentity) throw new Error(`${name} holds no Lease yet`);
        }
        await core.readNamespacedServiceAccount({ name: 'default', namespace: 'default' });
        return true;
      },
      { timeoutMs: 120_000, intervalMs: 250, isFatal: exited },
    );
    return {
      url,
      dir,
      bin,
      kubeCa,
      adminKubeconfigFile,
      admin: () => kubeconfig(url, kubeCa.cert, { certData: admin.cert, keyData: admin.key }),
      withToken: (token) => kubeconfig(url, kubeCa.cert, { token }),
      async serviceAccountToken(namespace, name) {
        const r = await core.createNamespacedServiceAccountToken({ name, namespace, body: { spec: { audiences: [ISSUER], expirationSeconds: 3600 } } });
        return r.status!.token!;
      },
      stop,
    };
  } catch (e) {
    const logs = await Promise.all(
      ['kube-apiserver', 'kube-controller-manager', 'kube-scheduler'].map(
        async (n) => `--- ${n}\n${(await readFile(join(dir, `${n}.log`), 'utf8').catch(() => '(no log)')).split('\n').slice(-20).join('\n')}`,
      ),
    );
    await stop();
    throw new Error(`${(e as Error).message}\n${logs.join('\n')}`, { cause: e });
  }
}

/**
 * cert-manager's CRDs (Certificate, ClusterIssuer, …: scripts/build-kube.sh copies them from its Go module at
 * CERT_MANAGER_VERSION) created on this API server and waited for until established: the objects GardenOS
 * renders for tls: acme are then checked against cert-manager's own schemas. The controller is not run (no ACME
 * server is reachable from the tests).
 */
export async function installCertManagerCrds(kc: KubeConfig): Promise<string[]> {
  const { ApiextensionsV1Api, KubernetesObjectApi } = await import('@kubernetes/client-node');
  const dir = join(await kubeBinaries(), 'crds');
  const { readdir } = await import('node:fs/promises');
  const api = KubernetesObjectApi.makeApiClient(kc);
  const names: string[] = [];
  for (const f of (await readdir(dir)).filter((x) => x.endsWith('.yaml')).sort()) {
    const crd = parse(await readFile(join(dir, f), 'utf8')) as { apiVersion: string; kind: string; metadata: { name: string } };
    await api.create(crd);
    names.push(crd.metadata.name);
  }
  const ext = kc.makeApiClient(ApiextensionsV1Api);
  for (const name of names) {
    await waitFor(
      `CRD ${name} to be established`,
      async () => {
        const crd = await ext.readCustomResourceDefinition({ name });
        return crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') || undefined;
      },
      { timeoutMs: 60_000, intervalMs: 200 },
    );
  }
  return names;
}

/**
 * A local cluster's router settings (its etcd, scope and Patroni CA), with the Kubernetes sink instead of
 * HAProxy's: the database namespace's postgres-primary/-replica, the router's Lease, and `kubeconfig`'s credentials.
 */
export async function kubernetesRouterSettings(
  stateDir: string,
  o: { listen: { host: string; port: number }; kubeconfig: string; leaseSeconds: number },
): Promise<RouterSettings> {
  const local = parse(await readFile(`${stateDir}/router/router.yml`, 'utf8')) as RouterSettings;
  return {
    ...local,
    listen: o.listen,
    sinks: [
      {
        type: 'kubernetes',
        namespace: 'database',
        primaryService: 'postgres-primary',
        replicasService: 'postgres-replica',
        podSelector: `cluster-name=${local.scope}`,
        port: 5432,
        lease: { name: ROUTER_NAME, durationSeconds: o.leaseSeconds },
        kubeconfig: o.kubeconfig,
      },
    ],
  };
}

/** A component that exited ends the wait for it at once, with its log's tail. */
const exited = (e: unknown) => (e as { permanent?: boolean }).permanent === true;

/** One HTTPS GET with a client certificate (before a client library is worth making). */
async function fetchWithClientCert(url: string, ca: string, user: PemPair): Promise<{ status: number; body: string }> {
  const https = await import('node:https');
  return new Promise((resolve) => {
    const req = https.get(url, { ca, cert: user.cert, key: user.key, timeout: 3000 }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve({ status: 0, body: e.message }));
  });
}
