// A throw-away local cluster for integration tests: its own cluster name,
// loopback addresses (127.0.<octet>.x) and state directory, driven through the
// real CLI, and cleaned up even when the test fails.
import { execFile, spawn } from 'node:child_process';
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DashboardView } from '../../src/dashboard/view.ts';
import { waitFor } from '../../src/util/wait.ts';

/** The CLI from the TypeScript sources (what the tests run). */
export const CLI = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
/** The compiled CLI, for benchmarks that should measure what users run. */
export const DIST_CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface TestCluster {
  name: string;
  dir: string;
  stateDir: string;
  configFile: string;
  prefix: string;
  cli(args: string[], opts?: CliOptions): Promise<CliResult>;
  /** Pids of every process whose command line mentions this cluster's state directory. */
  processes(): Promise<number[]>;
  cleanup(): Promise<void>;
}

export interface CliOptions {
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  /** Which CLI entry to run (default: the TypeScript sources). */
  cli?: string;
}

export function runCli(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [opts.cli ?? CLI, ...args],
      { env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 240_000, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

export async function processesMentioning(text: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const [cmd, stat] = await Promise.all([
      readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => ''),
      readFile(`/proc/${entry}/stat`, 'utf8').catch(() => ''),
    ]);
    const zombie = / [ZX] /.test(stat.slice(stat.lastIndexOf(')')));
    if (!zombie && cmd.split('\0').join(' ').includes(text)) pids.push(Number(entry));
  }
  return pids;
}

export async function makeTestCluster(name: string, octet: number, extraYaml = '', cliPath?: string): Promise<TestCluster> {
  const dir = await mkdtemp(join(tmpdir(), `gardenos-${name}-`));
  await chmod(dir, 0o755); // PostgreSQL runs as the postgres user when tests run as root
  const stateDir = join(dir, 'state');
  const configFile = join(dir, 'gardenos.yaml');
  const prefix = `127.0.${octet}`;
  await writeFile(
    configFile,
    [
      `cluster: { name: ${name} }`,
      `postgres: { scope: ${name}, ttl: 20, loopWait: 2, retryTimeout: 5 }`,
      'haproxy: { checkIntervalMs: 1000, fall: 2, rise: 1 }',
      // Loopback addresses by default; with `up --isolated`, a bridge of its own in 10.251.<octet>.0/24.
      `local: { addressPrefix: "${prefix}", isolatedPrefix: "10.251.${octet}" }`,
      extraYaml,
    ].join('\n'),
  );
  const base = ['-c', configFile, '--state-dir', stateDir];
  const cluster: TestCluster = {
    name,
    dir,
    stateDir,
    configFile,
    prefix,
    cli: (args, opts) => {
      // `local <verb> …`: the local options go after `local`.
      const [group, ...rest] = args;
      return runCli(group === 'local' ? ['local', ...base, ...rest] : args, { ...(cliPath ? { cli: cliPath } : {}), ...opts });
    },
    processes: () => processesMentioning(stateDir),
    async cleanup() {
      await cluster.cli(['local', 'destroy', '--yes']);
      for (const pid of await processesMentioning(stateDir)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      // PostgreSQL's children name their data directory only through the postmaster.
      await rm(dir, { recursive: true, force: true });
    },
  };
  return cluster;
}

/** A connection URI from `status` (which never prints the password) with the superuser's password put in. */
export async function withPassword(uri: string, stateDir: string): Promise<string> {
  const { superuserPassword } = JSON.parse(await readFile(join(stateDir, 'secrets', 'passwords.json'), 'utf8')) as { superuserPassword: string };
  const u = new URL(uri);
  u.password = superuserPassword;
  return u.toString();
}

/**
 * Runs `gardenos <before> dashboard --port 0 --json <after>` (`before`: `local` and its global options, for the
 * local cluster), takes the first view it serves on /api/view, and stops it.
 */
export async function firstDashboardView(before: string[], after: string[] = []): Promise<DashboardView> {
  const child = spawn(process.execPath, [CLI, ...before, 'dashboard', '--port', '0', '--json', ...after], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d));
  child.stderr!.on('data', (d: Buffer) => (err += d));
  try {
    const { url } = await waitFor('the dashboard to listen', async () => (out.includes('\n') ? (JSON.parse(out) as { url: string }) : undefined), {
      timeoutMs: 30_000,
      intervalMs: 100,
    }).catch((e: Error) => {
      throw new Error(`${e.message}; its output: ${out}${err}`);
    });
    return await waitFor(
      "the dashboard's first view",
      async () => {
        const r = await fetch(`${url}api/view`);
        return r.ok ? ((await r.json()) as DashboardView) : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 250 },
    );
  } finally {
    child.kill('SIGTERM');
  }
}
