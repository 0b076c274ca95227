// Checks before anything starts: the Debian packages are there, and every
// address:port the cluster will bind is free. Each failure names the fix.
import { execFile } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import { createServer } from 'node:net';
import { delimiter, join } from 'node:path';
import { GardenError } from '../errors.ts';

export interface Requirement {
  binary: string;
  /** Absolute path, or a name looked up on PATH. */
  path: string;
  debianPackage: string;
}

export function requirements(postgresVersion: number, opts: { pooler?: boolean; monitoring?: boolean; backups?: boolean } = {}): Requirement[] {
  return [
    ...(opts.pooler ? [{ binary: 'pgbouncer', path: 'pgbouncer', debianPackage: 'pgbouncer' }] : []),
    ...(opts.monitoring
      ? [
          { binary: 'prometheus', path: 'prometheus', debianPackage: 'prometheus' },
          { binary: 'prometheus-postgres-exporter', path: 'prometheus-postgres-exporter', debianPackage: 'prometheus-postgres-exporter' },
          { binary: 'prometheus-node-exporter', path: 'prometheus-node-exporter', debianPackage: 'prometheus-node-exporter' },
          { binary: 'prometheus-alertmanager', path: 'prometheus-alertmanager', debianPackage: 'prometheus-alertmanager' },
        ]
      : []),
    ...(opts.backups ? [{ binary: 'pgbackrest', path: 'pgbackrest', debianPackage: 'pgbackrest' }] : []),
    { binary: 'etcd', path: 'etcd', debianPackage: 'etcd-server' },
    { binary: 'etcdctl', path: 'etcdctl', debianPackage: 'etcd-client' },
    { binary: 'patroni', path: 'patroni', debianPackage: 'patroni' },
    { binary: 'postgres', path: `/usr/lib/postgresql/${postgresVersion}/bin/postgres`, debianPackage: `postgresql-${postgresVersion}` },
    { binary: 'haproxy', path: 'haproxy', debianPackage: 'haproxy' },
  ];
}

async function executable(p: string): Promise<boolean> {
  return access(p, constants.X_OK).then(
    () => true,
    () => false,
  );
}

export async function which(name: string, path = process.env.PATH ?? ''): Promise<string | undefined> {
  if (name.startsWith('/')) return (await executable(name)) ? name : undefined;
  for (const dir of path.split(delimiter).filter(Boolean)) {
    const candidate = join(dir, name);
    if (await executable(candidate)) return candidate;
  }
  return undefined;
}

export async function checkPackages(reqs: readonly Requirement[], path?: string): Promise<void> {
  const missing: Requirement[] = [];
  for (const r of reqs) if (!(await which(r.path, path))) missing.push(r);
  if (missing.length) {
    const pkgs = [...new Set(missing.map((m) => m.debianPackage))];
    throw new GardenError('MISSING_PACKAGE', `missing ${missing.map((m) => `${m.binary} (Debian package ${m.debianPackage})`).join(', ')}`, {
      hint: `install with: sudo apt-get install -y ${pkgs.join(' ')}`,
    });
  }
}

/** The oldest Patroni GardenOS runs, the one it is proven with (before 3.0.3 a resumed old leader could take the leader key back). */
export const MIN_PATRONI: readonly [number, number] = [4, 0];

/** `patroni --version` → [major, minor, patch], or undefined when it does not say. */
export function parsePatroniVersion(out: string): [number, number, number] | undefined {
  const m = /patroni\s+(\d+)\.(\d+)(?:\.(\d+))?/i.exec(out);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)] : undefined;
}

/** Refuses a Patroni older than MIN_PATRONI, saying what to install. */
export async function checkPatroniVersion(command = 'patroni'): Promise<string> {
  const out = await new Promise<string>((resolve, reject) =>
    execFile(command, ['--version'], { timeout: 15_000 }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      reject(
        new GardenError('MISSING_PACKAGE', `\`${command} --version\` failed: ${(stderr || err.message).trim()}`, {
          hint: 'run scripts/install-deps.sh; it installs Patroni 4 and checks it',
        }),
      );
    }),
  );
  const v = parsePatroniVersion(out);
  const [major, minor] = MIN_PATRONI;
  if (!v || v[0] < major || (v[0] === major && v[1] < minor)) {
    throw new GardenError(
      'UNSUPPORTED_VERSION',
      `Patroni ${v ? v.join('.') : `of unknown version ("${out.trim()}")`} is too old: GardenOS needs Patroni >= ${major}.${minor}`,
      {
        details: [
          'Patroni before 3.0.3 lets a frozen or cut-off old leader take the leader key back when it resumes, losing acknowledged writes; GardenOS is proven with Patroni 4.',
        ],
        hint: "run scripts/install-deps.sh (on Debian 12 it installs Debian 13's patroni 4.0.x beside Debian 12's Python), or `pip install 'patroni[etcd3,psycopg2]>=4'` into a virtual environment on PATH",
      },
    );
  }
  return v.join('.');
}

export interface PortNeed {
  host: string;
  port: number;
  /** Who needs it, for the message: "node1 etcd client". */
  owner: string;
}

export function portFree(host: string, port: number): Promise<NodeJS.ErrnoException | undefined> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', (e: NodeJS.ErrnoException) => resolve(e));
    srv.listen({ host, port, exclusive: true }, () => srv.close(() => resolve(undefined)));
  });
}

/**
 * Who listens on host:port, as `ss` tells it ("postgres pid 1234"), or undefined when ss cannot say
 * (not installed, or another user's socket seen without root). Bounded: it is only for a message.
 */
export function portHolder(host: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile('ss', ['-Hltnp', `sport = :${port}`], { timeout: 2000 }, (err, stdout) => {
      if (err) return resolve(undefined);
      const line = stdout.split('\n').find((l) => l.includes(`${host}:${port}`) || l.includes(`*:${port}`) || l.includes(`0.0.0.0:${port}`));
      const m = line && /users:\(\("([^"]+)",pid=(\d+)/.exec(line);
      resolve(m ? `${m[1]} pid ${m[2]}` : undefined);
    });
  });
}

export async function checkPorts(needs: readonly PortNeed[]): Promise<void> {
  const results = await Promise.all(needs.map(async (n) => ({ n, err: await portFree(n.host, n.port) })));
  const taken = await Promise.all(
    results.filter((r) => r.err).map(async (r) => ({ ...r, holder: r.err!.code === 'EADDRINUSE' ? await portHolder(r.n.host, r.n.port) : undefined })),
  );
  if (taken.length) {
    throw new GardenError(
      'PORT_IN_USE',
      `${taken.map(({ n, err, holder }) => `${n.host}:${n.port} (${n.owner}) is ${err!.code === 'EADDRINUSE' ? `already in use${holder ? ` by ${holder}` : ''}` : `not usable: ${err!.code}`}`).join('; ')}`,
      {
        hint: 'stop what listens there (`ss -ltnp` shows it), or give this cluster other addresses with local.addressPrefix / local.firstHost in gardenos.yaml',
      },
    );
  }
}
