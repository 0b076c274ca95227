// The production platform's secrets directory: generated passwords, tokens and
// keys (secrets.json), and the PKI — a cluster CA with the certificates for
// etcd members, etcd clients (K3s's datastore, Patroni, the router, GardenOS)
// and PostgreSQL's server TLS. Everything is made once, kept 0600 in a 0700
// directory, never printed, and never copied into a render unless asked.
import { randomBytes } from 'node:crypto';
import { access, readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { hostTls, type Config } from '../config/schema.ts';
import { GardenError } from '../errors.ts';
import type { PemPair } from '../pki/certs.ts';
import { z } from 'zod';
import { clusterSecretsSchema, type ClusterSecrets } from '../render/files.ts';
import { BACKUP_REPO } from '../render/kube/backups.ts';
import { productionTopology } from '../render/topology.ts';
import { ensureDir, writeFileAtomic } from '../util/files.ts';
import { readStateFile } from '../util/state-file.ts';
import { POOLER_SERVICE, PRIMARY_ROUTE, REPLICAS_SERVICE } from '../names.ts';

export interface PlatformSecrets extends ClusterSecrets {
  /** The K3s server token, the same on every server. */
  k3sToken: string;
  supabase: {
    jwtSecret: string;
    /** HS256 JWTs signed with jwtSecret, made once (so renders stay byte-identical). */
    anonKey: string;
    serviceRoleKey: string;
    authenticatorPassword: string;
    authAdminPassword: string;
    storageAdminPassword: string;
    /**
     * During a key rotation (`pki --rotate supabase`): the JWT secret and keys being retired, still
     * accepted by PostgREST and the gateway until `pki --retire supabase`.
     */
    previous?: { jwtSecret: string; anonKey: string; serviceRoleKey: string; rotatedAt: string };
  };
}

/**
 * Starts a rotation of Supabase's JWT secret and API keys: new ones are made, the current ones kept as
 * `previous` (still accepted) — so holders of the service-role key lose nothing while they move to the new
 * key. Refuses while an earlier rotation is unfinished. Returns the secrets as written.
 */
export async function rotateSupabaseKeys(dir: string, now = new Date()): Promise<PlatformSecrets> {
  const secrets = await readPlatformSecrets(dir);
  const s = secrets.supabase;
  if (s.previous) {
    throw new GardenError('STATE_CONFLICT', `a rotation of Supabase's keys started at ${s.previous.rotatedAt} is not finished`, {
      hint: 'once every holder of the service-role key uses the new one and supabase.jwtExpirySeconds have passed since `gardenos up` applied it: `gardenos pki --retire supabase`, then `gardenos up`',
    });
  }
  const { supabaseKeys } = await import('./supabase.ts');
  const jwtSecret = randomBytes(48).toString('base64url');
  const next: PlatformSecrets = {
    ...secrets,
    supabase: {
      ...s,
      jwtSecret,
      ...(await supabaseKeys(jwtSecret)),
      previous: { jwtSecret: s.jwtSecret, anonKey: s.anonKey, serviceRoleKey: s.serviceRoleKey, rotatedAt: now.toISOString() },
    },
  };
  await writeFileAtomic(join(dir, 'secrets.json'), `${JSON.stringify(next, null, 2)}\n`, 0o600);
  return next;
}

/**
 * Ends a rotation: the previous JWT secret and keys are no longer accepted. secrets.json is copied first
 * (0600, beside it) so a retirement made too early can be undone. Returns the backup's path.
 */
export async function retireSupabaseKeys(dir: string, now = new Date()): Promise<string> {
  const secrets = await readPlatformSecrets(dir);
  if (!secrets.supabase.previous)
    throw new GardenError('STATE_CONFLICT', "no rotation of Supabase's keys is in progress: nothing to retire", {
      hint: '`gardenos pki --rotate supabase` starts one',
    });
  const backup = join(dir, `secrets.json.${now.toISOString().replace(/[:.]/g, '-')}.bak`);
  await writeFileAtomic(backup, `${JSON.stringify(secrets, null, 2)}\n`, 0o600);
  const { previous: _retired, ...supabase } = secrets.supabase;
  await writeFileAtomic(join(dir, 'secrets.json'), `${JSON.stringify({ ...secrets, supabase }, null, 2)}\n`, 0o600);
  return backup;
}

const secret = z.string().min(1);
const keys = { jwtSecret: secret, anonKey: secret, serviceRoleKey: secret };
const platformSecretsSchema = clusterSecretsSchema.extend({
  k3sToken: secret,
  supabase: z.looseObject({
    ...keys,
    authenticatorPassword: secret,
    authAdminPassword: secret,
    storageAdminPassword: secret,
    previous: z.object({ ...keys, rotatedAt: secret }).optional(),
  }),
});
const RECOVER = 'restore secrets.json from your copy (or a secrets.json.*.bak beside it): a new one would not match the running platform';
const readSecretsFile = (file: string) => readStateFile(file, platformSecretsSchema, RECOVER) as Promise<PlatformSecrets | undefined>;

/** Where the secrets live unless --secrets-dir says otherwise: beside gardenos.yaml, out of the render. */
export function defaultSecretsDir(configFile: string): string {
  return join(dirname(resolve(configFile)), '.gardenos', 'secrets');
}

const password = () => randomBytes(24).toString('base64url');
/** pgBackRest's repository passphrase (aes-256-cbc), as the local profile makes it. */
const cipherPassphrase = () => randomBytes(32).toString('base64url');

export async function ensurePlatformSecrets(dir: string, config: Config): Promise<PlatformSecrets> {
  await ensureDir(dir, 0o700);
  await writeFileAtomic(join(dir, '.gitignore'), '*\n', 0o600);
  const file = join(dir, 'secrets.json');
  const existing = await readSecretsFile(file);
  // Secrets made before monitoring or backups existed get what is missing added (postgres-exporter's password, the
  // backup repository's passphrase); the rest are kept.
  if (existing) {
    if (existing.monitorPassword && existing.backupCipherPass) return existing;
    const completed: PlatformSecrets = {
      ...existing,
      monitorPassword: existing.monitorPassword ?? password(),
      backupCipherPass: existing.backupCipherPass ?? cipherPassphrase(),
    };
    await writeFileAtomic(file, `${JSON.stringify(completed, null, 2)}\n`, 0o600);
    return completed;
  }
  const { supabaseKeys } = await import('./supabase.ts');
  const jwtSecret = randomBytes(48).toString('base64url');
  const secrets: PlatformSecrets = {
    superuserPassword: password(),
    replicationPassword: password(),
    rewindPassword: password(),
    restApiPassword: password(),
    statsPassword: password(),
    monitorPassword: password(),
    backupCipherPass: cipherPassphrase(),
    etcdClusterToken: `${config.cluster.name}-${randomBytes(8).toString('hex')}`,
    k3sToken: randomBytes(32).toString('hex'),
    supabase: {
      jwtSecret,
      ...(await supabaseKeys(jwtSecret)),
      authenticatorPassword: password(),
      authAdminPassword: password(),
      storageAdminPassword: password(),
    },
  };
  await writeFileAtomic(file, `${JSON.stringify(secrets, null, 2)}\n`, 0o600);
  return secrets;
}

export async function readPlatformSecrets(dir: string): Promise<PlatformSecrets> {
  const s = await readSecretsFile(join(dir, 'secrets.json'));
  if (!s) throw new GardenError('CONFIG_NOT_FOUND', `no secrets in ${dir}`, { hint: 'run `gardenos pki` first (it generates the secrets and certificates)' });
  return s;
}

/** Every certificate of the platform: a name (its file stem) and what it is issued for. */
export interface CertSpec {
  name: string;
  commonName: string;
  ips: string[];
  dnsNames: string[];
  usage: 'server-and-client' | 'server' | 'client';
}

export function certSpecs(config: Config): CertSpec[] {
  const topo = productionTopology(config);
  const node = (name: string) => config.nodes.find((n) => n.name === name)!;
  const ns = config.namespaces.database;
  const svc = (s: string) => [s, `${s}.${ns}`, `${s}.${ns}.svc`, `${s}.${ns}.svc.cluster.local`];
  const ipsOf = (v: string[]) => v.filter((a) => /^[\d.]+$|:/.test(a));
  const namesOf = (v: string[]) => v.filter((a) => !/^[\d.]+$|:/.test(a));
  const pgHosts = [...topo.postgres.flatMap((m) => [m.address, node(m.name).address.public]), topo.loadBalancer];
  return [
    ...topo.etcd.map((m) => {
      const hosts = [m.address, node(m.name).address.public, '127.0.0.1'];
      return {
        name: `etcd-${m.name}`,
        commonName: m.name,
        ips: ipsOf(hosts),
        dnsNames: [m.name, 'localhost', ...namesOf(hosts)],
        usage: 'server-and-client' as const,
      };
    }),
    // etcd clients, one identity each, so any one can be revoked on its own.
    ...['k3s', 'patroni', 'router', 'gardenos', ...(config.monitoring.enabled ? ['prometheus'] : [])].map((who) => ({
      name: `etcd-client-${who}`,
      commonName: `${who}`,
      ips: [],
      dnsNames: [],
      usage: 'client' as const,
    })),
    {
      // PostgreSQL's and Patroni's REST API server certificate (also Patroni's etcd client certificate).
      name: 'postgres-server',
      commonName: `${config.postgres.scope}`,
      ips: ipsOf(pgHosts),
      // Each member's pod name in cluster DNS (the StatefulSet's headless Service) too: pgBackRest checks the
      // name it connected to against DNS names only, and the backup repository reaches each member by it.
      dnsNames: [
        ...topo.postgres.map((m) => m.name),
        ...namesOf(pgHosts),
        ...svc(PRIMARY_ROUTE),
        ...svc(REPLICAS_SERVICE),
        ...topo.postgres.flatMap((_, i) => svc(`${config.postgres.scope}-${i}.${config.postgres.scope}`)),
        'localhost',
      ],
      usage: 'server-and-client',
    },
    // The pooler's certificate for its clients (pooler.enabled): apart from postgres-server, whose key is also
    // Patroni's etcd client identity and must not leave the PostgreSQL pods.
    ...(config.pooler.enabled
      ? [{ name: POOLER_CERT, commonName: POOLER_SERVICE, ips: [], dnsNames: [...svc(POOLER_SERVICE), 'localhost'], usage: 'server' as const }]
      : []),
    // The backup repository (backups.enabled): its TLS server's certificate, by the name the members reach it at, and
    // its client identity towards their pgBackRest servers (which let in this common name only).
    ...(config.backups.enabled
      ? [{ name: BACKUP_REPO_CERT, commonName: BACKUP_REPO_CERT, ips: [], dnsNames: svc(BACKUP_REPO_CERT), usage: 'server-and-client' as const }]
      : []),
    // Ingress hosts with tls: internal (private hosts): clients trust the CA.
    ...config.ingress.hosts
      .filter((h) => hostTls(h) === 'internal')
      .map((h) => ({ name: ingressCertName(h.name), commonName: h.name, ips: [], dnsNames: [h.name], usage: 'server' as const })),
  ];
}

/** The PKI file stem (and common name) of the backup repository's certificate (backups.enabled): its pod's name too. */
export const BACKUP_REPO_CERT = BACKUP_REPO;

/** The PKI file stem of the platform pooler's certificate (pooler.enabled). */
export const POOLER_CERT = 'postgres-pooler';

/** The PKI file stem of an ingress host's certificate (tls: internal). */
export const ingressCertName = (host: string) => `ingress-${host}`;

export interface PkiResult {
  dir: string;
  created: string[];
  kept: string[];
}

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );

/**
 * Creates the CA and every missing certificate; `rotate` re-issues the named ones
 * ("all" for every leaf; "ca" for a new CA and, with it, every leaf).
 */
export async function ensurePlatformPki(dir: string, config: Config, rotate: string[] = []): Promise<PkiResult> {
  const { createCa, issue, loadCa } = await import('../pki/certs.ts');
  const pki = join(dir, 'pki');
  await ensureDir(pki, 0o700);
  const write = async (name: string, p: PemPair) => {
    await writeFileAtomic(join(pki, `${name}.key`), p.key, 0o600);
    await writeFileAtomic(join(pki, `${name}.crt`), p.cert, 0o600);
  };
  const specs = certSpecs(config);
  const unknown = rotate.filter((r) => r !== 'all' && r !== 'ca' && !specs.some((s) => s.name === r));
  if (unknown.length)
    throw new GardenError('CONFIG_INVALID', `no certificate called ${unknown.join(', ')}`, {
      hint: `one of: ca, all, supabase (its JWT secret and keys), ${specs.map((s) => s.name).join(', ')}`,
    });
  const created: string[] = [];
  const kept: string[] = [];
  const newCa = rotate.includes('ca') || !(await exists(join(pki, 'ca.key')));
  const ca = newCa
    ? await createCa(`${config.cluster.name} GardenOS CA`)
    : await loadCa({ cert: await readFile(join(pki, 'ca.crt'), 'utf8'), key: await readFile(join(pki, 'ca.key'), 'utf8') });
  if (newCa) {
    await write('ca', ca);
    created.push('ca');
  }
  for (const s of specs) {
    const again = newCa || rotate.includes('all') || rotate.includes(s.name);
    if (!again && (await exists(join(pki, `${s.name}.crt`)))) {
      kept.push(s.name);
      continue;
    }
    await write(s.name, await issue(ca, { commonName: s.commonName, ips: s.ips, dnsNames: s.dnsNames, usage: s.usage }));
    created.push(s.name);
  }
  return { dir: pki, created, kept };
}

/** A certificate and key from the PKI, for files and Kubernetes Secrets. */
export async function readPair(dir: string, name: string): Promise<PemPair> {
  const pki = join(dir, 'pki');
  try {
    return { cert: await readFile(join(pki, `${name}.crt`), 'utf8'), key: await readFile(join(pki, `${name}.key`), 'utf8') };
  } catch {
    throw new GardenError('CONFIG_NOT_FOUND', `no certificate ${name} in ${pki}`, { hint: 'run `gardenos pki` (it creates what is missing)' });
  }
}
