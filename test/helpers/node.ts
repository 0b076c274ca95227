// A real Kubernetes node for tests: Debian's containerd, runc and CNI plugins, and the kubelet
// built beside the control plane (scripts/build-kube.sh), joined to a control plane from
// test/helpers/kube.ts. No registry is reachable, so every image is made on this machine from
// Debian's binaries with umoci (scripts/build-images.sh) and imported into this node's containerd.
// Everything — containerd's root and socket, the kubelet's directories, the CNI bridge — is the
// test's own and removed by `stop`.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { openSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { CoreV1Api } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { issue } from '../../src/pki/certs.ts';
import { waitFor } from '../../src/util/wait.ts';
import { CLUSTER_CIDR, kubeconfig, type ControlPlane } from './kube.ts';
import { CLUSTER_DNS } from './coredns.ts';
import { processesMentioning } from './local.ts';

const run = promisify(execFile);
const IMAGES = fileURLToPath(new URL('../../scripts/build-images.sh', import.meta.url));
const IPTABLES_CLEANUP = fileURLToPath(new URL('./kubelet-iptables-cleanup.sh', import.meta.url));

export interface TestNode {
  name: string;
  dir: string;
  /** containerd's socket, for `ctr`/`crictl`. */
  socket: string;
  /** Imports an OCI archive whose image is tagged "1" as gardenos.local/<name>:1. */
  importImage(name: string, archive: string): Promise<void>;
  stop(): Promise<void>;
}

export interface NodeOptions {
  name: string;
  /** The node's address (its InternalIP; the kubelet serves there, and hostNetwork pods listen on it). */
  host: string;
  /** Adds `host` to this link (a /24, removed by `stop`) when no link has it yet: a second and third node beside the first. */
  addTo?: string;
  /**
   * Run kube-proxy (default true). The nodes of one test share the machine's network namespace, where
   * kube-proxy's iptables rules are one set: the first node's kube-proxy serves them all.
   */
  kubeProxy?: boolean;
}

/**
 * Builds (or finds in the machine's cache) GardenOS's test images, with the local-path provisioner
 * image from the control plane's bin directory; returns their OCI archives by name.
 */
export async function testImages(kubeBin: string): Promise<Record<string, string>> {
  const { stdout } = await run('bash', [IMAGES, kubeBin], { maxBuffer: 1 << 20, timeout: 1_800_000 });
  return JSON.parse(stdout.trim().split('\n').pop()!) as Record<string, string>;
}

export async function startNode(cp: ControlPlane, o: NodeOptions): Promise<TestNode> {
  const dir = await mkdtemp(join(tmpdir(), `gardenos-node-${o.name}-`));
  const socket = join(dir, 'containerd', 'containerd.sock');
  const h = createHash('sha256').update(dir).digest('hex').slice(0, 6);
  const bridge = `gosn${h}`;
  const cniName = `gardenos-test-${h}`;
  // The kubelet puts every pod under a cgroup root of this node's own (cgroup v1 here: one per hierarchy),
  // so `stop` can find each process a pod left behind, kill it and remove the tree.
  const cgroupRoot = `/gardenos-test-${h}`;
  const hierarchies = (await readdir('/sys/fs/cgroup', { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => join('/sys/fs/cgroup', d.name));
  // The CRI makes a network namespace per pod sandbox (/var/run/netns/cni-…); the new ones are this node's.
  const podPids = () =>
    run('sh', ['-c', `cat $(find /sys/fs/cgroup/pids${cgroupRoot} -name cgroup.procs 2>/dev/null) /dev/null`]).then(
      (r) => r.stdout.split('\n').filter(Boolean).map(Number),
      () => [] as number[],
    );
  const netnsBefore = new Set(await readdir('/var/run/netns').catch(() => [] as string[]));
  let addedAddress = false;
  const children: ChildProcess[] = [];
  const logOf = new Map<ChildProcess, string>();
  const spawnLogged = (name: string, cmd: string, args: string[]) => {
    const fd = openSync(join(dir, `${name}.log`), 'a', 0o600);
    const child = spawn(cmd, args, { stdio: ['ignore', fd, fd] });
    children.push(child);
    logOf.set(child, join(dir, `${name}.log`));
    return child;
  };
  // The archive's one image is tagged "1": imported into the CRI's namespace as gardenos.local/<name>:1.
  const importImage = async (name: string, archive: string) => {
    await run('ctr', ['--address', socket, '-n', 'k8s.io', 'images', 'import', '--base-name', `gardenos.local/${name}`, archive], { maxBuffer: 1 << 20 });
  };
  const stop = async () => {
    for (const c of children.reverse()) {
      if (c.exitCode === null && c.signalCode === null) {
        const gone = new Promise((r) => c.once('exit', r));
        c.kill('SIGTERM');
        const t = setTimeout(() => c.kill('SIGKILL'), 10_000);
        await gone;
        clearTimeout(t);
      }
    }
    // containerd's shims mention this directory; the pods' own processes are in this node's cgroups.
    for (const pid of [...(await processesMentioning(dir)), ...(await podPids())]) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    await waitFor("the pods' processes to exit", async () => (await podPids()).length === 0, { timeoutMs: 10_000, intervalMs: 100 }).catch(() => undefined);
    for (const hier of hierarchies) await run('find', [join(hier, cgroupRoot), '-depth', '-type', 'd', '-exec', 'rmdir', '{}', ';']).catch(() => undefined);
    for (const ns of await readdir('/var/run/netns').catch(() => [] as string[])) {
      if (ns.startsWith('cni-') && !netnsBefore.has(ns)) await run('ip', ['netns', 'del', ns]).catch(() => undefined);
    }
    // kube-proxy's own clean-up of its iptables chains.
    if (o.kubeProxy !== false) await run(join(cp.bin, 'kube-proxy'), ['--cleanup', '--proxy-mode=iptables']).catch(() => undefined);
    // …and the kubelet's (KUBE-FIREWALL drops traffic to 127.0.0.0/8 from other sources: it must not outlive the test).
    await run('bash', [IPTABLES_CLEANUP]).catch(() => undefined);
    await run('ip', ['link', 'del', bridge]).catch(() => undefined);
    // The pods' masquerade rules: the CRI never ran CNI DEL for sandboxes killed with containerd.
    await run('bash', [IPTABLES_CLEANUP, '--cni', cniName]).catch(() => undefined);
    if (addedAddress) await run('ip', ['addr', 'del', `${o.host}/24`, 'dev', o.addTo!]).catch(() => undefined);
    await run('sh', ['-c', `grep -o ' ${dir}/[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l`]).catch(() => undefined);
    // libcni caches each sandbox's result under /var/lib/cni/results (containerd 1.6 has no setting for it): this
    // node's network's, and the loopback ones of this node's sandboxes.
    const sandboxes = new Set(await readdir(join(dir, 'containerd', 'root', 'io.containerd.grpc.v1.cri', 'sandboxes')).catch(() => [] as string[]));
    for (const f of await readdir('/var/lib/cni/results').catch(() => [] as string[])) {
      const loopback = /^cni-loopback-([0-9a-f]{64})-lo$/.exec(f);
      if (f.startsWith(`${cniName}-`) || (loopback && sandboxes.has(loopback[1]!)))
        await rm(join('/var/lib/cni/results', f), { force: true }).catch(() => undefined);
    }
    // The kubelet links each container's log into /var/log/containers (a fixed path): this node's links go.
    for (const link of await readdir('/var/log/containers').catch(() => [] as string[])) {
      const target = await readlink(join('/var/log/containers', link)).catch(() => '');
      if (target.startsWith(`${dir}/`)) await rm(join('/var/log/containers', link), { force: true }).catch(() => undefined);
    }
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  };

  try {
    if (o.addTo && !(await run('ip', ['-o', 'addr', 'show', 'to', o.host])).stdout.trim()) {
      await run('ip', ['addr', 'add', `${o.host}/24`, 'dev', o.addTo]);
      addedAddress = true;
    }
    const images = await testImages(cp.bin);
    for (const hier of hierarchies) {
      await mkdir(join(hier, cgroupRoot), { recursive: true });
      // A new cpuset cgroup starts with no CPUs or memory nodes: give it its parent's.
      if (hier.endsWith('/cpuset'))
        for (const f of ['cpuset.cpus', 'cpuset.mems']) await writeFile(join(hier, cgroupRoot, f), await readFile(join(hier, f), 'utf8'));
    }
    // containerd: its own root, state and socket; the CRI plugin with runc (cgroupfs, as the kubelet) and CNI.
    const cniConf = join(dir, 'cni');
    await mkdir(cniConf, { recursive: true });
    await writeFile(
      join(dir, 'containerd.toml'),
      [
        'version = 2',
        `root = "${dir}/containerd/root"`,
        `state = "${dir}/containerd/state"`,
        '[grpc]',
        `  address = "${socket}"`,
        '[plugins."io.containerd.internal.v1.opt"]',
        `  path = "${dir}/containerd/opt"`,
        '[plugins."io.containerd.grpc.v1.cri"]',
        '  sandbox_image = "gardenos.local/pause:1"',
        // Root here lacks CAP_SYS_RESOURCE (this VM's sandbox drops it), so a negative oom_score_adj (the
        // sandbox's -998, a Guaranteed pod's -997) is refused: containerd clamps them to its own score instead.
        '  restrict_oom_score_adj = true',
        '  [plugins."io.containerd.grpc.v1.cri".containerd]',
        '    snapshotter = "overlayfs"',
        '    default_runtime_name = "runc"',
        '    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]',
        '      runtime_type = "io.containerd.runc.v2"',
        '      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]',
        '        SystemdCgroup = false',
        '  [plugins."io.containerd.grpc.v1.cri".cni]',
        '    bin_dir = "/usr/lib/cni"',
        `    conf_dir = "${cniConf}"`,
        '',
      ].join('\n'),
    );
    const containerd = spawnLogged('containerd', 'containerd', ['--config', join(dir, 'containerd.toml')]);
    await waitFor(
      'containerd to answer',
      async () => {
        if (containerd.exitCode !== null) throw Object.assign(new Error(`containerd exited: ${await tail(join(dir, 'containerd.log'))}`), { permanent: true });
        await run('ctr', ['--address', socket, 'version']);
        return true;
      },
      { timeoutMs: 30_000, intervalMs: 200, isFatal: permanent },
    );
    for (const [name, archive] of Object.entries(images)) await importImage(name, archive);

    // The kubelet: its own identity (system:node:<name>, which the Node authorizer and NodeRestriction check), serving cert, directories.
    const pki = join(dir, 'pki');
    await mkdir(pki, { mode: 0o700 });
    const clientPair = await issue(cp.kubeCa, { commonName: `system:node:${o.name}`, organization: 'system:nodes', usage: 'client' });
    const servingPair = await issue(cp.kubeCa, { commonName: o.name, ips: [o.host], dnsNames: [o.name], usage: 'server-and-client' });
    for (const [file, content] of [
      ['kubelet-client.crt', clientPair.cert],
      ['kubelet-client.key', clientPair.key],
      ['kubelet.crt', servingPair.cert],
      ['kubelet.key', servingPair.key],
      ['ca.crt', cp.kubeCa.cert],
    ] as const) {
      await writeFile(join(pki, file), content, { mode: 0o600 });
    }
    const writeKubeconfig = (name: string, p: { cert: string; key: string }) =>
      writeFile(join(dir, `${name}.kubeconfig`), kubeconfig(cp.url, cp.kubeCa.cert, { certData: p.cert, keyData: p.key }, name).exportConfig(), {
        mode: 0o600,
      });
    await writeKubeconfig('kubelet', clientPair);
    await writeFile(
      join(dir, 'kubelet.yaml'),
      stringify({
        apiVersion: 'kubelet.config.k8s.io/v1beta1',
        kind: 'KubeletConfiguration',
        address: o.host,
        port: 10250,
        readOnlyPort: 0,
        healthzBindAddress: o.host,
        healthzPort: 10248,
        authentication: { anonymous: { enabled: false }, webhook: { enabled: true }, x509: { clientCAFile: join(pki, 'ca.crt') } },
        authorization: { mode: 'Webhook' },
        tlsCertFile: join(pki, 'kubelet.crt'),
        tlsPrivateKeyFile: join(pki, 'kubelet.key'),
        // This machine's cgroups are v1 and no systemd runs: cgroupfs, as containerd is told above.
        cgroupDriver: 'cgroupfs',
        cgroupRoot,
        containerRuntimeEndpoint: `unix://${socket}`,
        // Its own pod log directory: a kubelet removes the directories of pods it does not run, other nodes' among them.
        podLogsDir: join(dir, 'pod-logs'),
        clusterDomain: 'cluster.local',
        clusterDNS: [CLUSTER_DNS],
        failSwapOn: false,
        resolvConf: '/etc/resolv.conf',
        serializeImagePulls: false,
        evictionHard: { 'memory.available': '100Mi', 'nodefs.available': '1%', 'imagefs.available': '1%' },
        imageGCHighThresholdPercent: 100,
        imageGCLowThresholdPercent: 99,
      }),
    );
    spawnLogged('kubelet', join(cp.bin, 'kubelet'), [
      `--config=${join(dir, 'kubelet.yaml')}`,
      `--kubeconfig=${join(dir, 'kubelet.kubeconfig')}`,
      `--root-dir=${join(dir, 'kubelet')}`,
      `--cert-dir=${pki}`,
      `--hostname-override=${o.name}`,
      `--node-ip=${o.host}`,
      '--v=1',
    ]);
    // kube-proxy (iptables mode, as K3s runs it), so Service addresses — kubernetes.default's 10.43.0.1 among
    // them, which in-cluster clients use — reach their endpoints. Its own identity: system:kube-proxy.
    if (o.kubeProxy !== false) {
      await writeKubeconfig('kube-proxy', await issue(cp.kubeCa, { commonName: 'system:kube-proxy', usage: 'client' }));
      spawnLogged('kube-proxy', join(cp.bin, 'kube-proxy'), [
        `--kubeconfig=${join(dir, 'kube-proxy.kubeconfig')}`,
        `--hostname-override=${o.name}`,
        '--proxy-mode=iptables',
        `--cluster-cidr=${CLUSTER_CIDR}`,
        `--healthz-bind-address=${o.host}:10256`,
        `--metrics-bind-address=${o.host}:10249`,
        // Leave the machine's conntrack sysctls as they are.
        '--conntrack-max-per-core=0',
        '--conntrack-tcp-timeout-established=0',
        '--conntrack-tcp-timeout-close-wait=0',
        '--v=1',
      ]);
    }
    const core = cp.admin().makeApiClient(CoreV1Api);
    // The pod network, as flannel does it: the node registers, the controller-manager gives it a slice of
    // the cluster CIDR, and a bridge of this node's own hands out addresses from that slice.
    const subnet = await waitFor(
      `node ${o.name} to register and get its pod CIDR`,
      async () => {
        const dead = children.find((c) => c.exitCode !== null);
        if (dead) throw Object.assign(new Error(`${dead.spawnargs[0]} exited: ${await tail(logOf.get(dead)!)}`), { permanent: true });
        return (await core.readNode({ name: o.name }).catch(() => undefined))?.spec?.podCIDR;
      },
      { timeoutMs: 120_000, intervalMs: 250, isFatal: permanent },
    );
    await writeFile(
      join(cniConf, '10-gardenos.conflist'),
      JSON.stringify({
        cniVersion: '1.0.0',
        // Per node: the bridge plugin's masquerade rules carry this name, and `stop` removes them by it.
        name: cniName,
        plugins: [
          // host-local keeps its address reservations in the node's directory: pods killed with containerd never
          // release theirs (no CNI DEL), and under /var/lib/cni they would pile up until the range runs out.
          {
            type: 'bridge',
            bridge,
            isGateway: true,
            ipMasq: true,
            hairpinMode: true,
            ipam: { type: 'host-local', dataDir: join(dir, 'cni-ipam'), ranges: [[{ subnet }]], routes: [{ dst: '0.0.0.0/0' }] },
          },
          { type: 'portmap', capabilities: { portMappings: true } },
        ],
      }),
    );
    await waitFor(
      `node ${o.name} to be Ready`,
      async () => {
        const dead = children.find((c) => c.exitCode !== null);
        if (dead) throw Object.assign(new Error(`${dead.spawnargs[0]} exited: ${await tail(logOf.get(dead)!)}`), { permanent: true });
        const node = await core.readNode({ name: o.name });
        const ready = node.status?.conditions?.find((c) => c.type === 'Ready');
        if (ready?.status !== 'True') throw new Error(`Ready=${ready?.status ?? 'none'}: ${ready?.message ?? ''}`);
        return true;
      },
      { timeoutMs: 120_000, intervalMs: 500, isFatal: permanent },
    );
    return { name: o.name, dir, socket, importImage, stop };
  } catch (e) {
    const logs = await Promise.all(
      ['containerd', 'kubelet', ...(o.kubeProxy !== false ? ['kube-proxy'] : [])].map(async (n) => `--- ${n}\n${await tail(join(dir, `${n}.log`))}`),
    );
    await stop();
    throw new Error(`${(e as Error).message}\n${logs.join('\n')}`, { cause: e });
  }
}

const permanent = (e: unknown) => (e as { permanent?: boolean }).permanent === true;
const tail = async (file: string, n = 20) => (await readFile(file, 'utf8').catch(() => '(no log)')).split('\n').slice(-n).join('\n');
