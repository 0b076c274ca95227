// Checks before anything starts: the Debian packages are there, and every
// address:port the cluster will bind is free. Each failure names the fix.
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

export function requirements(postgresVersion: number): Requirement[] {
  return [
    { binary: 'etcd', path: 'etcd', debianPackage: 'etcd-server' },
    { binary: 'etcdctl', path: 'etcdctl', debianPackage: 'etcd-client' },
    { binary: 'patroni', path: 'patroni', debianPackage: 'patroni' },
    { binary: 'postgres', path: `/usr/lib/postgresql/${postgresVersion}/bin/postgres`, debianPackage: `postgresql-${postgresVersion}` },
    { binary: 'haproxy', path: 'haproxy', debianPackage: 'haproxy' },
  ];
}

async function executable(p: string): Promise<boolean> {
  return access(p, constants.X_OK).then(() => true, () => false);
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

export async function checkPorts(needs: readonly PortNeed[]): Promise<void> {
  const results = await Promise.all(needs.map(async (n) => ({ n, err: await portFree(n.host, n.port) })));
  const taken = results.filter((r) => r.err);
  if (taken.length) {
    throw new GardenError(
      'PORT_IN_USE',
      `${taken.map(({ n, err }) => `${n.host}:${n.port} (${n.owner}) is ${err!.code === 'EADDRINUSE' ? 'already in use' : `not usable: ${err!.code}`}`).join('; ')}`,
      {
        hint: 'stop what listens there (`ss -ltnp` shows it), or give this cluster other addresses with local.addressPrefix / local.firstHost in gardenos.yaml',
      },
    );
  }
}
