// `gardenos up`: provision the hosts over SSH and apply the platform. The work
// is a list of phases (k0sctl's pattern), one file each under phases/, run by
// the shared runner over one context (context.ts). Each observes first and acts
// only on the difference, and every change goes through `Changes.do`, which
// either does it or, with --dry-run, only records it — so the dry-run plan is
// exactly what a real run would do. etcd and K3s restart one host at a time.
import { runPhases } from '../log/phases.ts';
import { hostPaths } from '../platform/hosts.ts';
import { renderPlatform } from '../platform/render.ts';
import { readPlatformSecrets } from '../platform/secrets.ts';
import { productionTopology } from '../render/topology.ts';
import { Changes, type Change, PHASE_NAMES, type PhaseName, type UpContext, type UpOptions, type UpPhase } from './context.ts';
import { backups } from './phases/backups.ts';
import { connect } from './phases/connect.ts';
import { database } from './phases/database.ts';
import { etcd } from './phases/etcd.ts';
import { facts } from './phases/facts.ts';
import { files } from './phases/files.ts';
import { haproxy } from './phases/haproxy.ts';
import { k3s } from './phases/k3s.ts';
import { kubeconfig } from './phases/kubeconfig.ts';
import { manifests } from './phases/manifests.ts';
import { validate } from './phases/validate.ts';
import { verify } from './phases/verify.ts';
import { nodeTarget, SshHost } from './ssh.ts';

export type { Change, PhaseName, UpOptions } from './context.ts';
export { kubeconfigFor } from './phases/kubeconfig.ts';

/** In this order; `PHASES` (the names `--skip` accepts) is checked against it by the unit tests. */
export const UP_PHASES: readonly UpPhase[] = [connect, facts, validate, files, etcd, k3s, haproxy, kubeconfig, manifests, database, backups, verify];
export const PHASES = PHASE_NAMES;
/** Phases a run may leave out (the first four are how every other phase knows what to do). */
export const SKIPPABLE: readonly PhaseName[] = ['etcd', 'k3s', 'haproxy', 'kubeconfig', 'manifests', 'database', 'backups', 'verify'];

export interface UpResult {
  dryRun: boolean;
  changes: Change[];
  hosts: { name: string; os: string; services: string; etcd: string | null; haproxy: string | null; k3s: string | null }[];
}

export async function up(opts: UpOptions): Promise<UpResult> {
  const { config, report } = opts;
  const dryRun = Boolean(opts.dryRun);
  const rendered = await renderPlatform(config, { secretsDir: opts.secretsDir, withSecrets: true });
  const ctx: UpContext = {
    config,
    opts,
    report,
    dryRun,
    changes: new Changes(dryRun, report),
    concurrency: opts.concurrency ?? 3,
    waitMs: opts.waitMs ?? 120_000,
    topo: productionTopology(config),
    secrets: await readPlatformSecrets(opts.secretsDir),
    rendered,
    paths: hostPaths('/'),
    hosts: config.nodes.map((node) => ({
      node,
      ssh: new SshHost(nodeTarget(node), opts),
      // The host's files from the render: configuration, and its certificates, token and environment file.
      files: rendered
        .filter((f) => f.path.startsWith(`hosts/${node.name}/`))
        .map((f) => ({ path: `/${f.path.slice(`hosts/${node.name}/`.length)}`, content: f.content, mode: f.mode })),
      changed: new Set<string>(),
    })),
  };
  try {
    await runPhases(UP_PHASES, ctx, report, { skip: new Set(opts.skip ?? []) });
  } finally {
    for (const h of ctx.hosts) h.ssh.close();
  }
  return {
    dryRun,
    changes: ctx.changes.list,
    hosts: ctx.hosts.map((h) => ({
      name: h.node.name,
      os: h.known?.facts.os ?? 'unknown',
      services: h.known?.services.kind ?? 'unknown',
      etcd: h.known?.facts.versions.etcd ?? null,
      haproxy: h.known?.facts.versions.haproxy ?? null,
      k3s: h.known?.facts.versions.k3s ?? null,
    })),
  };
}
