// `gardenos render`: the whole production platform as a tree of files —
// per host (etcd, K3s, HAProxy), the Kubernetes manifests as a kustomization,
// and Supabase's database bootstrap — byte-identical for the same input.
// `plan` compares a fresh render with the last one written.
import { createHash } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { readS3Credentials, type S3Credentials } from '../config/credentials.ts';
import { hostTls, type Config } from '../config/schema.ts';
import { GardenError } from '../errors.ts';
import { renderGrafanaDashboard } from '../render/grafana.ts';
import { GENERATED } from '../render/yaml.ts';
import { writeFileAtomic } from '../util/files.ts';
import { hostFiles, hostPaths } from './hosts.ts';
import { platformManifests, type Manifest } from '../render/kube/platform.ts';
import { secretManifests } from '../render/kube/secrets.ts';
import { ingressCertName, POOLER_CERT, BACKUP_REPO_CERT, readPair, readPlatformSecrets } from './secrets.ts';
import { supabaseBootstrapSql } from './supabase.ts';
import { loginRoleSql } from '../ops/roles.ts';
import { USERS } from '../render/files.ts';

/** The rendered psql script that makes postgres-exporter's role (monitoring.enabled). */
export const MONITOR_ROLE_SQL = 'postgres/monitoring-role.sql';

export interface RenderedFile {
  /** Relative to the output directory, with "/" separators. */
  path: string;
  content: string;
  mode: number;
  /** Holds a secret: written only with --with-secrets, never shown in a diff. */
  secret: boolean;
}

export interface RenderOptions {
  secretsDir: string;
  withSecrets?: boolean;
  /**
   * Each host's filesystem root as the rendered files name paths (default "/"): a directory
   * with "{node}" in it renders for staging, as the tests do to run the rendered etcd here.
   */
  hostRoot?: string;
}

export const INDEX_FILE = '.gardenos-render.json';

const manifestsYaml = (manifests: Manifest[]) =>
  `${GENERATED}\n${manifests.map((m) => stringify(m, { lineWidth: 0, aliasDuplicateObjects: false })).join('---\n')}`;

export async function renderPlatform(config: Config, opts: RenderOptions): Promise<RenderedFile[]> {
  if (config.nodes.length === 0)
    throw new GardenError('CONFIG_INVALID', 'gardenos.yaml has no nodes: nothing to render for a platform', {
      hint: 'add the three hosts under `nodes:` (see `gardenos init`)',
    });
  const secrets = await readPlatformSecrets(opts.secretsDir);
  const files: RenderedFile[] = [];
  const add = (path: string, content: string, mode = 0o644, secret = false) => files.push({ path, content, mode, secret });

  for (const node of config.nodes) {
    const root = (opts.hostRoot ?? '/').replaceAll('{node}', node.name);
    const paths = hostPaths(root);
    const onHost = (abs: string) => posix.join('hosts', node.name, posix.relative(root, abs));
    for (const f of hostFiles(config, node, secrets, paths)) add(onHost(f.path), f.content, f.mode);
    if (opts.withSecrets) {
      const certs = ['ca', ...(node.roles.includes('etcd') ? [`etcd-${node.name}`] : []), ...(node.roles.includes('k3s-server') ? ['etcd-client-k3s'] : [])];
      for (const name of certs) {
        const pair = await readPair(opts.secretsDir, name);
        const target = name === 'ca' ? { cert: paths.ca } : paths.cert(name);
        add(onHost(target.cert), pair.cert, 0o644, true);
        if ('key' in target) add(onHost(target.key), pair.key, 0o600, true);
      }
      if (node.roles.includes('k3s-server')) add(onHost(paths.k3sToken), `${secrets.k3sToken}\n`, 0o600, true);
      if (node.roles.includes('haproxy')) add(onHost(paths.haproxyEnv), `GARDENOS_STATS_PASSWORD=${secrets.statsPassword}\n`, 0o600, true);
    }
  }

  const s = secrets.supabase;
  const keysRevision = createHash('sha256')
    .update(`${s.jwtSecret}|${s.previous?.jwtSecret ?? ''}`)
    .digest('hex')
    .slice(0, 12);
  const manifestFiles = platformManifests(config, { keysRevision });
  const resources = manifestFiles.map((f) => f.file);
  if (opts.withSecrets) {
    const [ca, postgresServer, routerClient] = await Promise.all([
      readPair(opts.secretsDir, 'ca'),
      readPair(opts.secretsDir, 'postgres-server'),
      readPair(opts.secretsDir, 'etcd-client-router'),
    ]);
    const internal = config.ingress.hosts.filter((h) => hostTls(h) === 'internal').map((h) => h.name);
    const ingressCerts = Object.fromEntries(await Promise.all(internal.map(async (h) => [h, await readPair(opts.secretsDir, ingressCertName(h))] as const)));
    const prometheusClient = config.monitoring.enabled ? await readPair(opts.secretsDir, 'etcd-client-prometheus') : undefined;
    const poolerServer = config.pooler.enabled ? await readPair(opts.secretsDir, POOLER_CERT) : undefined;
    const backupRepo = config.backups.enabled ? await readPair(opts.secretsDir, BACKUP_REPO_CERT) : undefined;
    const backupS3 = config.backups.enabled ? await readBackupS3(config) : undefined;
    add(
      'kubernetes/05-secrets.yaml',
      manifestsYaml(
        secretManifests(config, {
          secrets,
          ca: ca.cert,
          postgresServer,
          routerClient,
          ingressCerts,
          ...(prometheusClient ? { prometheusClient } : {}),
          ...(poolerServer ? { poolerServer } : {}),
          ...(backupRepo ? { backupRepo } : {}),
          ...(backupS3 ? { backupS3 } : {}),
        }),
      ),
      0o600,
      true,
    );
    resources.splice(1, 0, '05-secrets.yaml');
  }
  for (const f of manifestFiles) add(`kubernetes/${f.file}`, manifestsYaml(f.manifests));
  add(
    'kubernetes/kustomization.yaml',
    `${GENERATED}\n${stringify({ apiVersion: 'kustomize.config.k8s.io/v1beta1', kind: 'Kustomization', resources }, { lineWidth: 0 })}`,
  );
  if (config.supabase.enabled) add('supabase/bootstrap.sql', supabaseBootstrapSql());
  // postgres-exporter's login, made on the leader by `gardenos up` (psql -v verifier=… with the password's SCRAM verifier).
  if (config.monitoring.enabled) add(MONITOR_ROLE_SQL, `${GENERATED.replace(/^# /gm, '-- ')}\n${loginRoleSql(USERS.monitor, ['pg_monitor'])}`);
  // For a Grafana the user already runs: the panels of `gardenos dashboard` (import it, pick the Prometheus).
  add('monitoring/grafana-dashboard.json', `${JSON.stringify(renderGrafanaDashboard(config), null, 2)}\n`);
  return files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** backups.repository.s3: the access key (its file only its owner may read) and the endpoint's CA, read where GardenOS runs. */
async function readBackupS3(config: Config): Promise<{ key: S3Credentials; ca?: string } | undefined> {
  const s3 = config.backups.repository.s3;
  if (!s3) return undefined;
  const key = await readS3Credentials(s3.credentialsFile);
  if (!s3.caFile) return { key };
  const ca = await readFile(s3.caFile, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw new GardenError('CONFIG_NOT_FOUND', `backups.repository.s3.caFile ${s3.caFile}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`, {
      hint: "the PEM certificate of the CA that signed the S3 endpoint's certificate, on the machine that runs gardenos",
    });
  });
  if (!ca.includes('-----BEGIN CERTIFICATE-----'))
    throw new GardenError('CONFIG_INVALID', `backups.repository.s3.caFile ${s3.caFile} holds no PEM certificate`);
  return { key, ca };
}

/** The objects of a render's kustomization, in its order — what `kubectl apply -k` would apply. */
export function kustomizationObjects(files: RenderedFile[]): Record<string, unknown>[] {
  const file = (name: string) => files.find((f) => f.path === `kubernetes/${name}`)!.content;
  const { resources } = parseAllDocuments(file('kustomization.yaml'))[0]!.toJS() as { resources: string[] };
  return resources.flatMap((r) =>
    parseAllDocuments(file(r))
      .map((d) => d.toJS() as Record<string, unknown>)
      .filter(Boolean),
  );
}

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

interface RenderIndex {
  files: Record<string, string>;
}

async function readIndex(out: string): Promise<RenderIndex> {
  const text = await readFile(join(out, INDEX_FILE), 'utf8').catch(() => undefined);
  return text ? (JSON.parse(text) as RenderIndex) : { files: {} };
}

/** Writes the tree; removes files the previous render wrote that this one does not (and nothing else). */
export async function writeRender(out: string, files: RenderedFile[]): Promise<{ written: number; removed: string[] }> {
  const before = await readIndex(out);
  let written = 0;
  for (const f of files) if (await writeFileAtomic(join(out, f.path), f.content, f.mode)) written++;
  const removed = Object.keys(before.files).filter((p) => !files.some((f) => f.path === p));
  for (const p of removed) await rm(join(out, p), { force: true });
  await writeFileAtomic(
    join(out, INDEX_FILE),
    `${JSON.stringify({ files: Object.fromEntries(files.map((f) => [f.path, sha(f.content)])) }, null, 2)}\n`,
    0o644,
  );
  return { written, removed };
}

export interface PlanEntry {
  path: string;
  change: 'added' | 'removed' | 'changed';
  secret: boolean;
  /** A unified diff; absent for secrets. */
  diff?: string;
}

/** What `render --out DIR` would change in DIR. */
export async function planRender(out: string, files: RenderedFile[]): Promise<PlanEntry[]> {
  const { createTwoFilesPatch } = await import('diff');
  const before = await readIndex(out);
  const entries: PlanEntry[] = [];
  for (const f of files) {
    const old = f.path in before.files ? await readFile(join(out, f.path), 'utf8').catch(() => undefined) : undefined;
    if (old === f.content) continue;
    const change = old === undefined ? 'added' : 'changed';
    entries.push({
      path: f.path,
      change,
      secret: f.secret,
      ...(f.secret ? {} : { diff: createTwoFilesPatch(`a/${f.path}`, `b/${f.path}`, old ?? '', f.content, '', '', { context: 3 }) }),
    });
  }
  for (const p of Object.keys(before.files)) {
    if (!files.some((f) => f.path === p)) entries.push({ path: p, change: 'removed', secret: false });
  }
  return entries.sort((a, b) => (a.path < b.path ? -1 : 1));
}
