// `gardenos local dashboard` and `gardenos dashboard`: the live page of the local cluster or of the
// production platform, served until Ctrl-C.
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startDashboard, type DashboardOptions } from '../dashboard/server.ts';
import type { DashboardView } from '../dashboard/view.ts';
import { chaosDir, localSource } from '../dashboard/local.ts';
import { GardenError } from '../errors.ts';
import { openLocalCluster } from '../local/cluster.ts';
import { writeFileAtomic } from '../util/files.ts';
import type { GlobalOptions } from './local.ts';

export interface DashboardFlags {
  address: string;
  port: string;
  tokenFile?: string;
  interval: string;
}

/** The token: read from --token-file, or (bound beyond loopback) made once and kept 0600 in the state directory. */
async function token(flags: DashboardFlags, stateDir: string, loopback: boolean): Promise<{ token?: string; file?: string }> {
  if (flags.tokenFile) {
    const t = (
      await readFile(flags.tokenFile, 'utf8').catch((e: NodeJS.ErrnoException) => {
        throw new GardenError('CONFIG_NOT_FOUND', `cannot read the token file ${flags.tokenFile}: ${e.code ?? e.message}`);
      })
    ).trim();
    if (t.length < 16)
      throw new GardenError('CONFIG_INVALID', `the token in ${flags.tokenFile} is ${t.length} characters; use at least 16 (openssl rand -hex 16)`);
    return { token: t, file: flags.tokenFile };
  }
  if (loopback) return {};
  const file = join(stateDir, 'dashboard-token');
  const existing = (await readFile(file, 'utf8').catch(() => '')).trim();
  if (existing) return { token: existing, file };
  const made = randomBytes(24).toString('base64url');
  await writeFileAtomic(file, `${made}\n`, 0o600);
  return { token: made, file };
}

function parseFlags(flags: DashboardFlags): { port: number; intervalMs: number; loopback: boolean } {
  const port = Number(flags.port);
  const intervalMs = Number(flags.interval);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new GardenError('CONFIG_INVALID', `--port ${flags.port} is not a port number`);
  if (!Number.isInteger(intervalMs) || intervalMs < 100)
    throw new GardenError('CONFIG_INVALID', `--interval ${flags.interval} must be a whole number of milliseconds, at least 100`);
  return { port, intervalMs, loopback: flags.address === 'localhost' || flags.address.startsWith('127.') || flags.address === '::1' };
}

/** Serves until SIGINT/SIGTERM; prints where (never the token). */
async function serve(
  name: string,
  source: () => Promise<DashboardView>,
  opts: DashboardOptions,
  tokenFile: string | undefined,
  json: boolean,
): Promise<number> {
  const dashboard = await startDashboard(source, opts);
  if (json) process.stdout.write(`${JSON.stringify({ url: dashboard.url, ...(tokenFile ? { tokenFile } : {}) })}\n`);
  else process.stdout.write(`dashboard of ${name}: ${tokenFile ? `${dashboard.url}?token=<the token in ${tokenFile}>` : dashboard.url}\nCtrl-C stops it.\n`);
  await new Promise<void>((resolve) => {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => resolve());
  });
  await dashboard.close();
  return 0;
}

export async function dashboardCommand(g: GlobalOptions, flags: DashboardFlags): Promise<number> {
  const { port, intervalMs, loopback } = parseFlags(flags);
  const c = await openLocalCluster(g);
  const t = await token(flags, c.layout.root, loopback);
  return serve(
    c.config.cluster.name,
    localSource(c),
    { host: flags.address, port, intervalMs, chaosDir: chaosDir(c), ...(t.token ? { token: t.token } : {}) },
    t.file,
    Boolean(g.json),
  );
}

/** `gardenos dashboard`: the production platform, from the same probes as `gardenos status`. */
export async function platformDashboardCommand(
  flags: DashboardFlags & { config: string; secretsDir?: string; kubeconfig?: string; prometheus?: string; json?: boolean },
): Promise<number> {
  const { port, intervalMs, loopback } = parseFlags(flags);
  const { probeTarget } = await import('./platform.ts');
  const { platformSource } = await import('../dashboard/platform.ts');
  const { config, probe } = await probeTarget(flags);
  if (flags.prometheus && !/^https?:\/\/[^/]+\/?$/.test(flags.prometheus))
    throw new GardenError('CONFIG_INVALID', `--prometheus ${flags.prometheus} must be http(s)://HOST:PORT`);
  const t = await token(flags, probe.secretsDir, loopback);
  const source = platformSource(config, { ...probe, ...(flags.prometheus ? { prometheus: flags.prometheus.replace(/\/$/, '') } : {}) });
  return serve(config.cluster.name, source, { host: flags.address, port, intervalMs, ...(t.token ? { token: t.token } : {}) }, t.file, Boolean(flags.json));
}
