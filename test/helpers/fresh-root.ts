// A brand-new Debian machine for the README's first command: a minimal root
// from Debian's packages (mmdebstrap --variant=minbase; the base tarball is
// cached per machine, everything GardenOS's set-up installs is installed anew
// each time), the machine's Node.js and npm copied in, this checkout copied in,
// and commands run in it with chroot — each in a private mount namespace with
// its own /proc and /dev/shm, optionally inside a network namespace the test
// made, so the cluster never meets anything on the host.
import { execFile, spawn } from 'node:child_process';
import { access, cp, mkdir, mkdtemp, readFile, readdir, readlink, realpath, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const CACHE_DIR = process.env.GARDENOS_TEST_CACHE ?? '/var/cache/gardenos-test';
const REPO = resolve(import.meta.dirname, '../..');

export interface FreshRoot {
  suite: string;
  dir: string;
  /** Runs `command` (a shell line) in the root as root; in `netns` when given. Output is kept, and streamed to `log`. */
  sh(command: string, opts?: { netns?: string; timeoutMs?: number }): Promise<{ code: number; stdout: string; stderr: string }>;
  cleanup(): Promise<void>;
}

/** The base tarball of a minimal Debian `suite`, made once per machine (about 25 s). */
export async function baseTarball(suite: string): Promise<string> {
  const tar = join(CACHE_DIR, `debian-${suite}-minbase.tar`);
  if (
    await access(tar).then(
      () => true,
      () => false,
    )
  )
    return tar;
  await mkdir(CACHE_DIR, { recursive: true });
  const partial = join(CACHE_DIR, `.partial-${process.pid}-${suite}.tar`);
  try {
    await run('mmdebstrap', ['--variant=minbase', '--mode=root', '--format=tar', '--quiet', suite, partial, 'http://deb.debian.org/debian'], {
      maxBuffer: 64 * 1024 * 1024,
    });
    await rename(partial, tar);
  } finally {
    await rm(partial, { force: true });
  }
  return tar;
}

/** The files of this checkout that git knows or would add (no node_modules, no build output). */
async function checkoutFiles(): Promise<string[]> {
  const { stdout } = await run('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: REPO, maxBuffer: 64 * 1024 * 1024 });
  return stdout.split('\0').filter(Boolean);
}

/** Every process whose root directory is `dir` (the daemons `local up` left running in it). */
export async function processesIn(dir: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const root = await readlink(`/proc/${entry}/root`).catch(() => undefined);
    if (root === dir || root?.startsWith(`${dir}/`)) pids.push(Number(entry));
  }
  return pids;
}

/** The first `name` on PATH outside any node_modules (where the project's own Node 24 lives). */
async function onPath(name: string): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (!dir || dir.includes('node_modules')) continue;
    const p = join(dir, name);
    if (
      await access(p).then(
        () => true,
        () => false,
      )
    )
      return realpath(p);
  }
  return undefined;
}

/**
 * The machine's own Node.js and npm (not the project's Node 24, which `npm ci` brings): the ones
 * running `npm test` when it runs this, else the first on PATH; GARDENOS_HOST_NODE / _NPM override.
 */
async function machineNode(): Promise<{ node: string; npmDir: string }> {
  const node = process.env.GARDENOS_HOST_NODE ?? process.env.npm_node_execpath ?? (await onPath('node'));
  const npmCli = process.env.npm_execpath ?? (await onPath('npm'));
  const npmDir = process.env.GARDENOS_HOST_NPM ?? (npmCli ? resolve(dirname(npmCli), '..') : undefined);
  if (!node || !npmDir) throw new Error('no Node.js and npm of the machine found on PATH (set GARDENOS_HOST_NODE and GARDENOS_HOST_NPM)');
  return { node, npmDir };
}

/** Kills what runs in `top`'s root and removes it. */
async function removeRoot(top: string): Promise<void> {
  const dir = join(top, 'root');
  for (let i = 0; i < 50; i++) {
    const pids = await processesIn(dir);
    if (!pids.length) break;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  await rm(top, { recursive: true, force: true });
}

/** Roots left by a test process that was killed before its clean-up ran (its pid is in the name). */
async function removeOrphans(): Promise<void> {
  for (const entry of await readdir('/var/tmp').catch(() => [] as string[])) {
    const m = /^gardenos-fresh-\w+-(\d+)-/.exec(entry);
    if (
      m &&
      !(await access(`/proc/${m[1]}`).then(
        () => true,
        () => false,
      ))
    )
      await removeRoot(join('/var/tmp', entry));
  }
}

export async function makeFreshRoot(suite: string, log: (chunk: string) => void = () => {}): Promise<FreshRoot> {
  await removeOrphans();
  const tar = await baseTarball(suite);
  const top = await mkdtemp(`/var/tmp/gardenos-fresh-${suite}-${process.pid}-`);
  const dir = join(top, 'root');
  await mkdir(dir);
  await run('tar', ['-xf', tar, '-C', dir], { maxBuffer: 16 * 1024 * 1024 });

  // The machine's Node.js and npm, as a new machine of this kind has them; its trust store (a
  // TLS-inspecting proxy may sit between this machine and the registries) beside, where the
  // root's own ca-certificates package will not rewrite it.
  const { node, npmDir } = await machineNode();
  await cp(node, join(dir, 'usr/local/bin/node'));
  await cp(npmDir, join(dir, 'usr/local/lib/node_modules/npm'), { recursive: true });
  await symlink('../lib/node_modules/npm/bin/npm-cli.js', join(dir, 'usr/local/bin/npm'));
  await symlink('../lib/node_modules/npm/bin/npx-cli.js', join(dir, 'usr/local/bin/npx'));
  await mkdir(join(dir, 'etc/gardenos-test'), { recursive: true });
  await cp('/etc/ssl/certs/ca-certificates.crt', join(dir, 'etc/gardenos-test/machine-ca.crt')).catch(() => undefined);
  await cp('/etc/resolv.conf', join(dir, 'etc/resolv.conf'), { dereference: true });
  // A root without an init: package scripts must not start the distribution's services (as in containers).
  await writeFile(join(dir, 'usr/sbin/policy-rc.d'), '#!/bin/sh\nexit 101\n', { mode: 0o755 });

  const work = join(dir, 'root/gardenos');
  for (const f of await checkoutFiles()) {
    const from = join(REPO, f);
    if (
      !(await access(from).then(
        () => true,
        () => false,
      ))
    )
      continue; // deleted, not yet committed
    await mkdir(dirname(join(work, f)), { recursive: true });
    await cp(from, join(work, f), { verbatimSymlinks: true });
  }

  const env = [
    'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    'HOME=/root',
    'LANG=C.UTF-8',
    'NODE_EXTRA_CA_CERTS=/etc/gardenos-test/machine-ca.crt',
    'DEBIAN_FRONTEND=noninteractive',
  ];
  const mounts = `mount -t proc proc ${dir}/proc && mount -t tmpfs -o mode=1777 shm ${dir}/dev/shm`;

  const root: FreshRoot = {
    suite,
    dir,
    sh(command, opts = {}) {
      const inner = `${mounts} && exec chroot ${dir} /usr/bin/env -i ${env.join(' ')} /bin/bash -c ${shellQuote(`cd /root/gardenos && ${command}`)}`;
      const argv = ['unshare', '--mount', '--propagation', 'private', '/bin/sh', '-c', inner];
      const full = opts.netns ? ['ip', 'netns', 'exec', opts.netns, ...argv] : argv;
      return new Promise((resolvePromise, reject) => {
        const child = spawn(full[0]!, full.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => {
          stdout += d;
          log(d.toString());
        });
        child.stderr.on('data', (d: Buffer) => {
          stderr += d;
          log(d.toString());
        });
        const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 900_000);
        child.once('error', reject);
        child.once('close', (code) => {
          clearTimeout(timer);
          resolvePromise({ code: code ?? -1, stdout, stderr });
        });
      });
    },
    cleanup: () => removeRoot(top),
  };
  return root;
}

function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/** The README's first command: the first line of its first sh block, without the comment. */
export async function readmeSetupCommand(): Promise<string> {
  const readme = await readFile(join(REPO, 'README.md'), 'utf8');
  const block = /```sh\n([^\n]*)\n/.exec(readme);
  if (!block) throw new Error('README.md has no ```sh block');
  return block[1]!.replace(/\s+#.*$/, '').trim();
}

/** A network namespace with only loopback up; removed by the returned function. */
export async function makeNetns(name: string): Promise<() => Promise<void>> {
  await run('ip', ['netns', 'add', name]);
  await run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  return async () => {
    await run('ip', ['netns', 'delete', name]).catch(() => undefined);
  };
}
