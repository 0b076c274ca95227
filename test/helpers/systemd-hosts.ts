// Three hosts that really boot systemd, for `gardenos up`: systemd-nspawn containers booted from a
// minimal Debian 12 root (systemd as PID 1, OpenSSH, sudo, HAProxy, and etcd 3.5 from Debian 13 as
// scripts/install-deps.sh takes it — each installed by its package, its own units enabled, as an
// administrator's `apt-get install` leaves a host), each in a network namespace of the test's own
// (10.252.<octet>.11–13 on a bridge, .1 on this side). The root is built once per machine with
// mmdebstrap and cached under a key of its recipe; each host gets its own copy, host keys and
// machine id. One host can log in as a user with sudo instead of root. Hosts power off and boot
// again (a reboot), or stay off. Needs root. cleanup() powers everything off and removes it all.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { access, appendFile, chmod, chown, mkdir, mkdtemp, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ensureNetwork, removeNetwork, type IsolatedNetwork } from '../../src/local/netns.ts';
import { waitFor } from '../../src/util/wait.ts';
import { portOpen } from './net.ts';

const run = promisify(execFile);

/** The packages of every host; etcd-server and etcd-client come from Debian 13 (see the header). */
const PACKAGES = ['systemd', 'systemd-sysv', 'dbus', 'openssh-server', 'sudo', 'haproxy', 'adduser', 'iproute2', 'procps', 'ca-certificates', 'curl'];
const FROM_TRIXIE = ['etcd-server', 'etcd-client'];
/** The user with sudo rights on the host that does not log in as root. */
export const SUDO_USER = 'deploy';

const CACHE = process.env.GARDENOS_NSPAWN_CACHE ?? '/var/cache/gardenos-test/nspawn';
const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );

/** The hosts' root as a tarball, built once per machine (mmdebstrap), keyed by its recipe. */
export async function hostRootTarball(): Promise<string> {
  const recipe = JSON.stringify({ suite: 'bookworm', variant: 'minbase', PACKAGES, FROM_TRIXIE, SUDO_USER, v: 1 });
  const key = createHash('sha256').update(recipe).digest('hex').slice(0, 16);
  const tarball = join(CACHE, `debian12-systemd-${key}.tar`);
  if (await exists(tarball)) return tarball;
  await mkdir(CACHE, { recursive: true });
  const work = await mkdtemp(join(tmpdir(), 'gardenos-nspawn-root-'));
  try {
    // etcd 3.5 from Debian 13 (Kubernetes 1.34 needs it), fetched as install-deps.sh fetches it: only these packages.
    const apt = join(work, 'apt');
    for (const d of ['lists/partial', 'cache/archives/partial', 'debs']) await mkdir(join(apt, d), { recursive: true });
    await writeFile(
      join(apt, 'trixie.sources'),
      'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n',
    );
    const aptFrom = [
      '-o',
      `Dir::Etc::SourceList=${join(apt, 'trixie.sources')}`,
      '-o',
      'Dir::Etc::SourceParts=/dev/null',
      '-o',
      `Dir::State::Lists=${join(apt, 'lists')}`,
      '-o',
      `Dir::Cache=${join(apt, 'cache')}`,
      '-o',
      'APT::Sandbox::User=root',
    ];
    await run('apt-get', [...aptFrom, 'update', '-qq'], { timeout: 300_000 });
    await run('apt-get', [...aptFrom, 'download', '-qq', ...FROM_TRIXIE], { cwd: join(apt, 'debs'), timeout: 300_000 });
    const debs = join(apt, 'debs');
    const partial = join(work, 'root.tar');
    await run(
      'mmdebstrap',
      [
        '--variant=minbase',
        '--quiet',
        `--include=${PACKAGES.join(',')}`,
        `--customize-hook=mkdir -p "$1/tmp/debs" && cp ${debs}/*.deb "$1/tmp/debs/"`,
        '--customize-hook=chroot "$1" sh -c "DEBIAN_FRONTEND=noninteractive dpkg -i /tmp/debs/*.deb" && rm -rf "$1/tmp/debs"',
        `--customize-hook=chroot "$1" useradd --create-home --shell /bin/bash ${SUDO_USER} && echo "${SUDO_USER} ALL=(ALL) NOPASSWD:ALL" >"$1/etc/sudoers.d/${SUDO_USER}" && chmod 0440 "$1/etc/sudoers.d/${SUDO_USER}"`,
        // Each host makes its own host keys and machine id (below); the build's must not be shared.
        '--customize-hook=rm -f "$1"/etc/ssh/ssh_host_* && : >"$1/etc/machine-id"',
        'bookworm',
        partial,
      ],
      { timeout: 900_000, maxBuffer: 1 << 24 },
    );
    await rename(partial, tarball);
    return tarball;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

export interface SystemdHost {
  name: string;
  address: string;
  namespace: string;
  /** Who `gardenos up` logs in as: root, or SUDO_USER. */
  user: string;
  root: string;
  /** A path on the host (/etc/gardenos/…) as seen from here: under its root directory. */
  path(p: string): string;
}

export interface SystemdHosts {
  dir: string;
  hosts: SystemdHost[];
  keyFile: string;
  knownHosts: string;
  bridgeAddress: string;
  /** Runs a shell command as root inside a running host (its namespaces, not SSH: for assertions). */
  exec(name: string, cmd: string): Promise<string>;
  /** Powers a host off (systemctl poweroff) and waits until its container has exited. */
  powerOff(name: string): Promise<void>;
  /** Boots a host that is off, until its sshd answers. */
  boot(name: string): Promise<void>;
  /** Stops the host's SSH server (systemd's ssh.service), as a host whose sshd is down. */
  stopSsh(name: string): Promise<void>;
  startSsh(name: string): Promise<void>;
  /** The last lines of a host's console (boot messages), for failure messages. */
  console(name: string): Promise<string>;
  cleanup(): Promise<void>;
}

/** `sudoHost`: the host that logs in as SUDO_USER (with sudo) instead of root. */
export async function startSystemdHosts(tag: string, octet: number, opts: { sudoHost?: string } = {}): Promise<SystemdHosts> {
  const tarball = await hostRootTarball();
  const dir = await mkdtemp(join(tmpdir(), `gardenos-${tag}-`));
  await chmod(dir, 0o755);
  const keyFile = join(dir, 'id_ed25519');
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', keyFile, '-C', `gardenos-${tag}`]);
  const publicKey = await readFile(`${keyFile}.pub`, 'utf8');
  const knownHosts = join(dir, 'known_hosts');
  await writeFile(knownHosts, '', { mode: 0o600 });
  const names = ['h1', 'h2', 'h3'];
  const net: IsolatedNetwork = {
    bridge: `gossd${octet}br`,
    loadBalancer: `10.252.${octet}.1`,
    members: names.map((n, i) => ({ member: n, address: `10.252.${octet}.${11 + i}`, namespace: `gos-sd${octet}-${n}`, hostLink: `gossd${octet}v${i}` })),
  };
  // systemd-nspawn keeps its per-container state here; on a machine whose PID 1 is not systemd nothing provides it.
  const nspawnRun = '/run/systemd/nspawn';
  await mkdir(nspawnRun, { recursive: true });
  let mountedRun = false;
  const containers = new Map<string, { child: ChildProcess; exited: Promise<void> }>();
  const hosts: SystemdHost[] = net.members.map((m) => ({
    name: m.member,
    address: m.address,
    namespace: m.namespace,
    user: m.member === opts.sudoHost ? SUDO_USER : 'root',
    root: join(dir, m.member, 'root'),
    path: (p: string) => join(dir, m.member, 'root', p),
  }));
  const host = (name: string) => hosts.find((h) => h.name === name)!;

  const cleanup = async () => {
    // Each host powered off as systemd would be; one that does not go in 20 s is killed with its whole PID namespace.
    await Promise.all([...containers.keys()].map((name) => powerOff(name, 20_000).catch(() => undefined)));
    await removeNetwork(net).catch(() => {});
    if (mountedRun) await run('umount', [nspawnRun]).catch(() => {});
    await rm(dir, { recursive: true, force: true });
  };

  /** The PID (in this machine's view) of the host's PID 1: its systemd. */
  const initPid = async (name: string) => {
    const c = containers.get(name);
    if (!c?.child.pid) throw new Error(`${name} is not running`);
    const children = (await readFile(`/proc/${c.child.pid}/task/${c.child.pid}/children`, 'utf8')).trim().split(/\s+/).filter(Boolean);
    if (!children[0]) throw new Error(`${name}: its container has no init yet`);
    return children[0];
  };

  /** Powers a host off; after `graceMs` its init is killed (a PID namespace dies with its init; killing nspawn would not stop it). */
  const powerOff = async (name: string, graceMs: number) => {
    const c = containers.get(name);
    if (!c) return;
    const pid = await initPid(name).catch(() => undefined);
    if (pid) await run('nsenter', ['-t', pid, '-a', 'systemctl', 'poweroff']).catch(() => undefined);
    const off = await Promise.race([c.exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), graceMs))]);
    if (off) return;
    if (pid) process.kill(Number(pid), 'SIGKILL');
    c.child.kill('SIGKILL');
    await c.exited;
    throw new Error(`${name} did not power off within ${graceMs} ms (killed)`);
  };

  const boot = async (name: string) => {
    const h = host(name);
    const log = await open(join(dir, h.name, 'console.log'), 'a');
    const child = spawn(
      'systemd-nspawn',
      [
        '--quiet',
        `--directory=${h.root}`,
        '--boot',
        // No machined here (PID 1 is not systemd): run in the calling process's cgroup, unregistered.
        '--register=no',
        '--keep-unit',
        `--machine=${tag}-${h.name}`,
        `--network-namespace-path=/run/netns/${h.namespace}`,
        '--console=read-only',
        '--resolv-conf=off',
        '--timezone=off',
      ],
      { stdio: ['ignore', log.fd, log.fd] },
    );
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    exited.finally(() => log.close().catch(() => {}));
    containers.set(name, { child, exited: exited.then(() => void containers.delete(name)) });
    await waitFor(
      `${name} to boot (sshd answering)`,
      async () => {
        if (!containers.has(name)) throw new Error(`its container exited: ${(await readFile(join(dir, h.name, 'console.log'), 'utf8')).slice(-1500)}`);
        return portOpen(h.address, 22);
      },
      { timeoutMs: 90_000, intervalMs: 200 },
    );
  };

  try {
    if ((await run('findmnt', ['-n', nspawnRun]).catch(() => ({ stdout: '' }))).stdout.trim() === '') {
      await run('mount', ['-t', 'tmpfs', '-o', 'mode=0755', 'tmpfs', nspawnRun]);
      mountedRun = true;
    }
    await ensureNetwork(net);
    for (const h of hosts) {
      await mkdir(h.root, { recursive: true });
      await run('tar', ['-C', h.root, '--numeric-owner', '-xpf', tarball], { timeout: 300_000 });
      await writeFile(join(h.root, 'etc/hostname'), `${h.name}\n`);
      await writeFile(join(h.root, 'etc/hosts'), `127.0.0.1 localhost\n127.0.1.1 ${h.name}\n${h.address} ${h.name}\n`);
      await writeFile(join(h.root, 'etc/machine-id'), `${randomBytes(16).toString('hex')}\n`);
      // Its own host keys (ssh-keygen -A under the host's root).
      await run('ssh-keygen', ['-A', '-f', h.root]);
      // The test's key for the user it logs in as; the host's network, as systemd-networkd would leave it, is the namespace's.
      const home = h.user === 'root' ? join(h.root, 'root') : join(h.root, 'home', h.user);
      await mkdir(join(home, '.ssh'), { recursive: true, mode: 0o700 });
      await writeFile(join(home, '.ssh', 'authorized_keys'), publicKey, { mode: 0o600 });
      if (h.user !== 'root') {
        const { uid, gid } = await stat(home);
        await chown(join(home, '.ssh'), uid, gid);
        await chown(join(home, '.ssh', 'authorized_keys'), uid, gid);
      }
      await appendFile(join(h.root, 'etc/ssh/sshd_config'), 'PasswordAuthentication no\nKbdInteractiveAuthentication no\n');
    }
    for (const h of hosts) await boot(h.name);
  } catch (e) {
    await cleanup();
    throw e;
  }

  return {
    dir,
    hosts,
    keyFile,
    knownHosts,
    bridgeAddress: net.loadBalancer,
    async exec(name, cmd) {
      return (await run('nsenter', ['-t', await initPid(name), '-a', 'sh', '-c', cmd], { maxBuffer: 1 << 22 })).stdout;
    },
    powerOff: (name) => powerOff(name, 60_000),
    async stopSsh(name) {
      await run('nsenter', ['-t', await initPid(name), '-a', 'systemctl', 'stop', 'ssh.service']);
      await waitFor(`sshd on ${name} to stop`, async () => !(await portOpen(host(name).address, 22)), { timeoutMs: 10_000, intervalMs: 100 });
    },
    async startSsh(name) {
      await run('nsenter', ['-t', await initPid(name), '-a', 'systemctl', 'start', 'ssh.service']);
      await waitFor(`sshd on ${name}`, () => portOpen(host(name).address, 22), { timeoutMs: 20_000, intervalMs: 100 });
    },
    boot,
    async console(name) {
      return (await readFile(join(dir, name, 'console.log'), 'utf8').catch(() => '')).slice(-2000);
    },
    cleanup,
  };
}
