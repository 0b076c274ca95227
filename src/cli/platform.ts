// `gardenos pki`, `gardenos render` and `gardenos plan`: the production platform from gardenos.yaml.
import { access, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { loadConfig } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { GardenError } from '../errors.ts';
import { defaultSecretsDir, ensurePlatformPki, ensurePlatformSecrets } from '../platform/secrets.ts';
import type { RenderedFile } from '../platform/render.ts';
import { formatDoctor, formatPlatformStatus, print } from './output.ts';

export interface PlatformOptions {
  config: string;
  secretsDir?: string;
  json?: boolean;
}

async function prepare(opts: PlatformOptions, rotate: string[] = []): Promise<{ config: Config; secretsDir: string; created: string[] }> {
  const config = await loadConfig(opts.config);
  const secretsDir = resolve(opts.secretsDir ?? defaultSecretsDir(opts.config));
  await ensurePlatformSecrets(secretsDir, config);
  const pki = await ensurePlatformPki(secretsDir, config, rotate);
  return { config, secretsDir, created: pki.created };
}

export async function pkiCommand(opts: PlatformOptions & { rotate?: string[]; retire?: string; yes?: boolean }): Promise<number> {
  // "supabase" is Supabase's JWT secret and keys, not a certificate: rotated in two steps (docs/operations.md).
  const rotateSupabase = opts.rotate?.includes('supabase') ?? false;
  if (opts.retire !== undefined && opts.retire !== 'supabase')
    throw new GardenError('CONFIG_INVALID', `--retire ${opts.retire}: only supabase's previous keys can be retired`, {
      hint: '`gardenos pki --retire supabase` ends a rotation that `--rotate supabase` started',
    });
  const { secretsDir, created } = await prepare(
    opts,
    (opts.rotate ?? []).filter((r) => r !== 'supabase'),
  );
  const { retireSupabaseKeys, rotateSupabaseKeys } = await import('../platform/secrets.ts');
  let supabase: { rotatedAt?: string; retiredBackup?: string } = {};
  if (rotateSupabase) supabase = { rotatedAt: (await rotateSupabaseKeys(secretsDir)).supabase.previous!.rotatedAt };
  if (opts.retire === 'supabase') {
    const { confirmed } = await import('./confirm.ts');
    const ok = await confirmed({
      yes: opts.yes,
      action: "retire Supabase's previous keys",
      loss: 'Tokens signed with the previous JWT secret, and the previous anon and service-role keys, stop working at the next `gardenos up`.',
      expect: 'supabase',
      what: 'the word',
    });
    if (!ok) return 1;
    supabase = { retiredBackup: await retireSupabaseKeys(secretsDir) };
  }
  print(opts.json, { secretsDir, created, supabase }, () =>
    [
      created.length
        ? `issued ${created.join(', ')} in ${secretsDir}/pki (keys 0600)`
        : `every certificate exists in ${secretsDir}/pki; --rotate NAME (or all, ca, supabase) re-issues`,
      ...(supabase.rotatedAt
        ? [
            'new Supabase JWT secret and keys in secrets.json; the previous ones stay accepted. Next: `gardenos up` (PostgREST and the gateway accept both, GoTrue signs with the new),',
            'then give every holder of the service-role key the new one, wait supabase.jwtExpirySeconds, and `gardenos pki --retire supabase` + `gardenos up`',
          ]
        : []),
      ...(supabase.retiredBackup
        ? [`retired Supabase's previous keys (secrets.json copied to ${supabase.retiredBackup} first); run \`gardenos up\` to stop accepting them`]
        : []),
    ].join('\n'),
  );
  return 0;
}

async function renderTree(opts: PlatformOptions & { withSecrets?: boolean; hostRoot?: string }): Promise<RenderedFile[]> {
  const { config, secretsDir, created } = await prepare(opts);
  if (created.length) process.stderr.write(`issued ${created.join(', ')} in ${secretsDir}/pki\n`);
  const { renderPlatform } = await import('../platform/render.ts');
  return renderPlatform(config, { secretsDir, ...(opts.withSecrets ? { withSecrets: true } : {}), ...(opts.hostRoot ? { hostRoot: opts.hostRoot } : {}) });
}

/** `--out` must be a directory or not exist yet: checked before anything (secrets, certificates) is written. */
async function checkOutDir(out: string): Promise<void> {
  const st = await stat(out).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return undefined;
    if (e.code === 'ENOTDIR')
      throw new GardenError('CONFIG_INVALID', `--out ${out}: a part of that path is a file, not a directory`, {
        hint: 'choose a directory for the rendered tree',
      });
    throw e;
  });
  if (st && !st.isDirectory())
    throw new GardenError('CONFIG_INVALID', `--out ${out} is a file; render writes a tree of files into a directory`, {
      hint: 'choose a directory (it is created if missing)',
    });
}

export async function renderCommand(opts: PlatformOptions & { out: string; withSecrets?: boolean; hostRoot?: string }): Promise<number> {
  const out = resolve(opts.out);
  await checkOutDir(out);
  const files = await renderTree(opts);
  const { writeRender } = await import('../platform/render.ts');
  const r = await writeRender(out, files);
  print(opts.json, { out, files: files.map((f) => f.path), ...r }, () =>
    [
      `rendered ${files.length} files into ${out} (${r.written} written, ${files.length - r.written} unchanged${r.removed.length ? `, ${r.removed.length} removed` : ''})`,
      ...(opts.withSecrets ? ['including secrets (0600): keep this directory private'] : []),
      `apply the manifests with: kubectl apply -k ${out}/kubernetes`,
    ].join('\n'),
  );
  return 0;
}

export async function planCommand(opts: PlatformOptions & { out: string; withSecrets?: boolean; hostRoot?: string }): Promise<number> {
  await checkOutDir(resolve(opts.out));
  const files = await renderTree(opts);
  const { planRender } = await import('../platform/render.ts');
  const entries = await planRender(resolve(opts.out), files);
  print(opts.json, { out: resolve(opts.out), changes: entries }, () => {
    if (entries.length === 0) return `no changes: ${resolve(opts.out)} is what gardenos.yaml renders`;
    const counts = (k: string) => entries.filter((e) => e.change === k).length;
    return [
      ...entries.map((e) => `${{ added: '+', removed: '-', changed: '~' }[e.change]} ${e.path}${e.secret ? ' (secret; content not shown)' : ''}`),
      '',
      ...entries.filter((e) => e.diff).map((e) => e.diff!),
      `${counts('added')} to add, ${counts('changed')} to change, ${counts('removed')} to remove; \`gardenos render --out ${opts.out}\` writes them`,
    ].join('\n');
  });
  return 0;
}

/** What status and doctor read: the config, the secrets directory and the kubeconfig — `up`'s, beside the config, when none was named. */
export async function probeTarget(opts: PlatformOptions & { kubeconfig?: string; timeout?: string }) {
  const config = await loadConfig(opts.config);
  const secretsDir = resolve(opts.secretsDir ?? defaultSecretsDir(opts.config));
  const beside = join(dirname(resolve(opts.config)), 'kubeconfig');
  const kubeconfig =
    opts.kubeconfig ??
    ((await access(beside).then(
      () => true,
      () => false,
    ))
      ? beside
      : undefined);
  return { config, probe: { secretsDir, ...(kubeconfig ? { kubeconfig } : {}), ...(opts.timeout ? { timeoutMs: Number(opts.timeout) } : {}) } };
}

export async function doctorCommand(
  opts: PlatformOptions & { kubeconfig?: string; timeout?: string; verbose?: boolean; knownHosts?: string; ssh?: boolean },
): Promise<number> {
  const { config, probe } = await probeTarget(opts);
  const { platformDoctor } = await import('../doctor/platform.ts');
  const r = await platformDoctor(config, { ...probe, ssh: opts.ssh === false ? false : { ...(opts.knownHosts ? { knownHostsFile: opts.knownHosts } : {}) } });
  print(opts.json, r, () => formatDoctor(r, Boolean(opts.verbose)));
  return r.healthy ? 0 : 2;
}

export async function statusCommand(opts: PlatformOptions & { kubeconfig?: string; timeout?: string }): Promise<number> {
  const { config, probe } = await probeTarget(opts);
  const { platformStatus } = await import('../platform/status.ts');
  const s = await platformStatus(config, probe);
  print(opts.json, s, () => formatPlatformStatus(s));
  return s.healthy ? 0 : 2;
}
