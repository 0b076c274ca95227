// The local cluster's state directory: generated secrets (0600, made once and
// never printed by production commands), the PKI, and who owns what.
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { access, readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import type { CertificateAuthority } from '../pki/certs.ts';
import { USERS, clusterSecretsSchema, type ClusterSecrets } from '../render/files.ts';
import type { Config } from '../config/schema.ts';
import type { Topology } from '../render/topology.ts';
import { GardenError } from '../errors.ts';
import { ensureDir, writeFileAtomic, type Owner } from '../util/files.ts';
import { readStateFile } from '../util/state-file.ts';
import type { LocalLayout } from './profile.ts';

const run = promisify(execFile);

export function generatePassword(): string {
  return randomBytes(24).toString('base64url');
}

export async function ensureSecrets(layout: LocalLayout, cluster: string): Promise<ClusterSecrets> {
  await ensureDir(layout.secretsDir, 0o700);
  const existing = await readSecrets(layout);
  // A cluster made before backups or monitoring existed gets their secrets added; one that has them keeps
  // them (the repository cannot be read with another key).
  const later = { backupCipherPass: () => randomBytes(32).toString('base64url'), monitorPassword: generatePassword };
  if (existing) {
    const missing = (Object.keys(later) as (keyof typeof later)[]).filter((k) => !existing[k]);
    if (!missing.length) return existing;
    const completed = { ...existing, ...Object.fromEntries(missing.map((k) => [k, later[k]()])) };
    await writeFileAtomic(layout.secretsFile, `${JSON.stringify(completed, null, 2)}\n`, 0o600);
    return completed;
  }
  const secrets: ClusterSecrets = {
    superuserPassword: generatePassword(),
    replicationPassword: generatePassword(),
    rewindPassword: generatePassword(),
    restApiPassword: generatePassword(),
    statsPassword: generatePassword(),
    etcdClusterToken: `${cluster}-${randomBytes(8).toString('hex')}`,
    backupCipherPass: later.backupCipherPass(),
    monitorPassword: later.monitorPassword(),
  };
  await writeFileAtomic(layout.secretsFile, `${JSON.stringify(secrets, null, 2)}\n`, 0o600);
  return secrets;
}

/** The superuser's password for every address a client uses, in libpq's format (0600). */
export async function writePgpass(c: { layout: LocalLayout; topology: Topology; config: Config }, secrets: ClusterSecrets): Promise<void> {
  const esc = (v: string) => v.replace(/[\\:]/g, '\\$&');
  const { haproxy, postgres } = c.config;
  const lb = c.topology.loadBalancer;
  const targets: [string, number][] = [
    [lb, haproxy.ports.primary],
    [lb, haproxy.ports.replicas],
    ...c.topology.postgres.map((m): [string, number] => [m.address, postgres.port]),
  ];
  await writeFileAtomic(
    c.layout.pgpassFile,
    targets.map(([h, p]) => `${esc(h)}:${p}:*:${USERS.superuser}:${esc(secrets.superuserPassword)}\n`).join(''),
    0o600,
  );
}

export async function readSecrets(layout: LocalLayout): Promise<ClusterSecrets | undefined> {
  return readStateFile(
    layout.secretsFile,
    clusterSecretsSchema,
    'restore it from your copy; or `gardenos local destroy` and `local up` for a new cluster (its data is lost)',
  ) as Promise<ClusterSecrets | undefined>;
}

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );

/** Who runs PostgreSQL and Patroni: the postgres user when GardenOS runs as root, else the caller. */
export async function postgresOwner(): Promise<Owner | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  try {
    // /etc/passwd first (the Debian package puts the user there); getent for NSS setups.
    const passwd = await readFile('/etc/passwd', 'utf8').catch(() => '');
    const line = passwd.split('\n').find((l) => l.startsWith('postgres:')) ?? (await run('getent', ['passwd', 'postgres'])).stdout.trim();
    const [, , uid, gid] = line.split(':');
    if (!uid || !gid) throw new Error('no postgres user');
    return { uid: Number(uid), gid: Number(gid) };
  } catch {
    throw new GardenError('MISSING_PACKAGE', 'running as root, but there is no "postgres" user to run PostgreSQL as', {
      hint: 'install PostgreSQL from Debian (it creates the user): apt-get install -y postgresql-15',
    });
  }
}

async function writePair(files: { cert: string; key: string }, pair: { cert: string; key: string }, owner?: Owner): Promise<void> {
  await writeFileAtomic(files.key, pair.key, 0o600, owner);
  await writeFileAtomic(files.cert, pair.cert, 0o644, owner);
}

/** Creates the CA and any missing member certificate; existing ones are kept. */
export async function ensurePki(layout: LocalLayout, topo: Topology, pgOwner?: Owner, withPooler = false): Promise<void> {
  // Loaded here, not at the top: the X.509 library costs ~100 ms that read-only commands need not pay.
  const { createCa, issue, loadCa } = await import('../pki/certs.ts');
  await ensureDir(layout.pkiDir, 0o755);
  let ca: CertificateAuthority;
  if (await exists(layout.ca.key)) {
    ca = await loadCa({ cert: await readFile(layout.ca.cert, 'utf8'), key: await readFile(layout.ca.key, 'utf8') });
  } else {
    ca = await createCa(`${topo.cluster} GardenOS CA`);
    await writePair(layout.ca, ca);
  }
  const jobs: Promise<void>[] = [];
  for (const m of topo.etcd) {
    const files = layout.etcd(m.name).tls;
    if (!(await exists(files.cert))) {
      jobs.push(
        issue(ca, { commonName: m.name, ips: [m.address], dnsNames: [m.name, 'localhost'], usage: 'server-and-client' }).then((p) => writePair(files, p)),
      );
    }
  }
  if (withPooler) {
    const p = layout.pooler;
    await ensureDir(p.dir, 0o700, pgOwner);
    await ensureDir(`${p.dir}/tls`, 0o700, pgOwner);
    if (!(await exists(p.tls.cert))) {
      jobs.push(
        issue(ca, { commonName: 'pooler', ips: [topo.loadBalancer], dnsNames: ['localhost'], usage: 'server-and-client' }).then((pair) =>
          writePair(p.tls, pair, pgOwner),
        ),
      );
    }
  }
  for (const m of topo.postgres) {
    const p = layout.patroni(m.name);
    await ensureDir(p.dir, 0o700, pgOwner);
    await ensureDir(`${p.dir}/tls`, 0o700, pgOwner);
    if (!(await exists(p.tls.cert))) {
      // Clients reach PostgreSQL through HAProxy too, so the load balancer's address is a name of every member.
      jobs.push(
        issue(ca, { commonName: m.name, ips: [m.address, topo.loadBalancer], dnsNames: [m.name, 'localhost'], usage: 'server-and-client' }).then((pair) =>
          writePair(p.tls, pair, pgOwner),
        ),
      );
    }
  }
  if (!(await exists(layout.client.cert))) {
    jobs.push(issue(ca, { commonName: 'gardenos', usage: 'client' }).then((p) => writePair(layout.client, p)));
  }
  await Promise.all(jobs);
}
