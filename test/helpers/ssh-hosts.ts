// Three test hosts on this machine for `gardenos up`: each a network namespace
// (10.252.<octet>.11–13 on a bridge of the test's own, .1 on this side) running
// a real OpenSSH server in a mount namespace where /etc/gardenos, /etc/haproxy,
// /etc/rancher, /etc/systemd/system, /var/lib/gardenos, /var/lib/etcd and
// /run/haproxy are private directories of that host. Needs root. Everything is
// removed by cleanup(), processes first.
import { execFile, spawn } from 'node:child_process';
import { access, chmod, mkdir, mkdtemp, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ensureNetwork, removeNetwork, type IsolatedNetwork } from '../../src/local/netns.ts';
import { waitFor } from '../../src/util/wait.ts';
import { portOpen } from './net.ts';

const run = promisify(execFile);

/** Host directories made private inside each test host, as <dir>/<host>/<key>. */
const PRIVATE = {
  'etc-gardenos': '/etc/gardenos',
  'etc-haproxy': '/etc/haproxy',
  'etc-rancher': '/etc/rancher',
  'etc-systemd-system': '/etc/systemd/system',
  'var-lib-gardenos': '/var/lib/gardenos',
  'var-lib-etcd': '/var/lib/etcd',
  'run-haproxy': '/run/haproxy',
} as const;

export interface TestHost {
  name: string;
  address: string;
  namespace: string;
  /** Where this host's private directories live, as seen from here. */
  dir: string;
  /** A path on the host (/etc/gardenos/…) as seen from here. */
  path(p: string): string;
}

export interface TestHosts {
  dir: string;
  hosts: TestHost[];
  keyFile: string;
  knownHosts: string;
  bridgeAddress: string;
  stopSsh(name: string): Promise<void>;
  startSsh(name: string): Promise<void>;
  /** Runs a command inside a host's namespaces (for assertions). */
  exec(name: string, cmd: string): Promise<string>;
  cleanup(): Promise<void>;
}

export async function startTestHosts(tag: string, octet: number): Promise<TestHosts> {
  const dir = await mkdtemp(join(tmpdir(), `gardenos-${tag}-`));
  await chmod(dir, 0o755);
  const keyFile = join(dir, 'id_ed25519');
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', keyFile, '-C', `gardenos-${tag}`]);
  await writeFile(join(dir, 'authorized_keys'), await readFile(`${keyFile}.pub`), { mode: 0o600 });
  const knownHosts = join(dir, 'known_hosts');
  await writeFile(knownHosts, '', { mode: 0o600 });
  const names = ['h1', 'h2', 'h3'];
  const net: IsolatedNetwork = {
    bridge: `gosup${octet}br`,
    loadBalancer: `10.252.${octet}.1`,
    members: names.map((n, i) => ({ member: n, address: `10.252.${octet}.${11 + i}`, namespace: `gos-up${octet}-${n}`, hostLink: `gosup${octet}v${i}` })),
  };
  // Mount points must exist on this machine; the ones made here are removed again.
  const madeTargets: string[] = [];
  for (const target of Object.values(PRIVATE)) {
    if (
      !(await access(target).then(
        () => true,
        () => false,
      ))
    ) {
      await mkdir(target, { recursive: true });
      madeTargets.push(target);
    }
  }
  await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
  await ensureNetwork(net);

  const hosts: TestHost[] = net.members.map((m) => ({
    name: m.member,
    address: m.address,
    namespace: m.namespace,
    dir: join(dir, m.member),
    path: (p: string) => {
      const [key, target] = Object.entries(PRIVATE).find(([, t]) => p === t || p.startsWith(`${t}/`))!;
      return join(dir, m.member, key, p.slice(target.length));
    },
  }));

  const sshd = async (h: TestHost) => {
    await mkdir(h.dir, { recursive: true });
    for (const key of Object.keys(PRIVATE)) await mkdir(join(h.dir, key), { recursive: true, mode: 0o755 });
    const hostKey = join(h.dir, 'ssh_host_ed25519_key');
    if (
      !(await access(hostKey).then(
        () => true,
        () => false,
      ))
    )
      await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey]);
    await writeFile(
      join(h.dir, 'sshd_config'),
      [
        'Port 22',
        `ListenAddress ${h.address}`,
        `HostKey ${hostKey}`,
        `PidFile ${join(h.dir, 'sshd.pid')}`,
        `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
        'PermitRootLogin prohibit-password',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'UsePAM no',
        'StrictModes no',
        'PrintMotd no',
        '',
      ].join('\n'),
    );
    const mounts = Object.entries(PRIVATE)
      .map(([key, target]) => `mount --bind ${join(h.dir, key)} ${target}`)
      .join(' && ');
    // `ip netns exec` gives the command a mount namespace of its own, so these binds are seen only by this host.
    const child = spawn('ip', ['netns', 'exec', h.namespace, 'sh', '-c', `${mounts} && exec /usr/sbin/sshd -D -e -f ${join(h.dir, 'sshd_config')}`], {
      detached: true,
      stdio: ['ignore', 'ignore', 'ignore'],
    });
    child.unref();
    await waitFor(`sshd on ${h.name}`, () => portOpen(h.address, 22), { timeoutMs: 20_000, intervalMs: 100 });
  };
  for (const h of hosts) await sshd(h);

  const pids = async (ns: string) => (await run('ip', ['netns', 'pids', ns]).catch(() => ({ stdout: '' }))).stdout.split('\n').filter(Boolean).map(Number);
  const killAll = async (ns: string) => {
    for (const pid of await pids(ns)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
  };

  return {
    dir,
    hosts,
    keyFile,
    knownHosts,
    bridgeAddress: net.loadBalancer,
    async stopSsh(name) {
      const h = hosts.find((x) => x.name === name)!;
      const pid = Number((await readFile(join(h.dir, 'sshd.pid'), 'utf8')).trim());
      process.kill(pid, 'SIGTERM');
      await waitFor(`sshd on ${name} to stop`, async () => !(await portOpen(h.address, 22)), { timeoutMs: 10_000, intervalMs: 100 });
    },
    async startSsh(name) {
      await sshd(hosts.find((x) => x.name === name)!);
    },
    async exec(name, cmd) {
      const h = hosts.find((x) => x.name === name)!;
      return (await run('ip', ['netns', 'exec', h.namespace, 'sh', '-c', cmd])).stdout;
    },
    async cleanup() {
      for (const h of hosts) await killAll(h.namespace);
      await removeNetwork(net).catch(() => {});
      for (const t of madeTargets) await rmdir(t).catch(() => {});
      await rm(dir, { recursive: true, force: true });
    },
  };
}
