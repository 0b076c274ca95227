// backups.enabled: once the platform runs, the repository's stanza is made (idempotent), WAL archiving is proven end
// to end (`pgbackrest check` in the repository's pod) and, when the repository holds no backup yet, a first full one
// is taken (followed by its restore test) — archiving alone restores nothing. Later runs find a backup and only
// check, which changes nothing.
import { describe, GardenError } from '../../errors.ts';
import type { UpPhase } from '../context.ts';
import { noK3sServer } from './kubeconfig.ts';

export const backups: UpPhase = {
  name: 'backups',
  skipReason: (ctx) =>
    noK3sServer(ctx) ??
    (!ctx.config.backups.enabled ? 'backups.enabled is off' : ctx.dryRun ? 'checked after the manifests are applied (not in a dry run)' : undefined),
  async run(ctx) {
    const { opts, report, config } = ctx;
    const { loadKubeConfig } = await import('../../clients/kubernetes.ts');
    const kc = await loadKubeConfig(opts.kubeconfigFile).catch((e: unknown) => {
      throw new GardenError('CONFIG_NOT_FOUND', `no kubeconfig at ${opts.kubeconfigFile}: ${describe(e)}`, {
        hint: 'the kubeconfig phase writes it; do not --skip kubeconfig',
      });
    });
    const { platformBackup, platformBackupCheck, platformBackupList } = await import('../../platform/backups.ts');
    await platformBackupCheck(kc, config, report);
    const list = await platformBackupList(kc, config);
    const newest = list.backups.at(-1);
    if (newest) return `archiving proven; ${list.backups.length} backup(s) in the repository, newest ${newest.label}`;
    let taken = '';
    await ctx.changes.do('platform', 'backups', 'take the first full backup (and its restore test): the repository has none', async () => {
      const first = await platformBackup(kc, config, 'full', { report, timeoutMs: 60 * 60_000 });
      taken = `, first full backup ${first.backup.label}${first.verify?.ok ? ' (restore-tested)' : ''}`;
    });
    return `archiving proven${taken}`;
  },
};
