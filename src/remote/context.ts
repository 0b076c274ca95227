// What `gardenos up`'s phases share: the options, the render, the hosts (each with
// its SSH connection, its desired files and — once the facts phase ran — what
// is on it), the one seam every change goes through (`Changes`), and the few
// helpers several phases use. Built once by `up`; the phases are in phases/.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { Config, NodeConfig } from '../config/schema.ts';
import { EtcdClient } from '../clients/etcd.ts';
import { describe, GardenError } from '../errors.ts';
import type { Reporter } from '../log/events.ts';
import type { Phase } from '../log/phases.ts';
import { hostPaths, type HostFile, type HostPaths } from '../platform/hosts.ts';
import type { RenderedFile } from '../platform/render.ts';
import type { PlatformSecrets } from '../platform/secrets.ts';
import { etcdClientUrls, type Topology } from '../render/topology.ts';
import type { EtcdMemberStatus } from '../health/probes.ts';
import { waitFor } from '../util/wait.ts';
import { RUNNER_DIR, type ServiceManager, type ServiceName } from './services.ts';
import { directoriesBelowTop, type SshHost, type SshOptions } from './ssh.ts';

export const PHASE_NAMES = [
  'connect',
  'facts',
  'validate',
  'files',
  'etcd',
  'k3s',
  'haproxy',
  'kubeconfig',
  'manifests',
  'database',
  'backups',
  'verify',
] as const;
export type PhaseName = (typeof PHASE_NAMES)[number];

export interface UpOptions extends SshOptions {
  config: Config;
  secretsDir: string;
  dryRun?: boolean;
  skip?: PhaseName[];
  /** Hosts worked on at once in the parallel phases. */
  concurrency?: number;
  /** Deadline for each wait (etcd healthy, a node Ready). */
  waitMs?: number;
  /** Wait for every Deployment and StatefulSet to roll out after applying (default true; `--no-wait`). */
  waitForRollouts?: boolean;
  /** Where `kubeconfig` writes (default ./kubeconfig beside gardenos.yaml). */
  kubeconfigFile: string;
  report: Reporter;
}

export interface Change {
  host: string;
  phase: PhaseName;
  action: string;
}

export interface HostFacts {
  os: string;
  systemd: boolean;
  versions: { etcd: string | null; haproxy: string | null; k3s: string | null };
  clockSkewS: number;
  freeKiB: number;
  listening: string[];
  /** sha256 of each desired file as it is on the host now; absent = missing. */
  hashes: Record<string, string>;
  active: Record<ServiceName, boolean>;
  /** Services an earlier run changed files for but did not get to restart. */
  pending: ServiceName[];
  /** `systemctl is-enabled` of the distribution's own etcd unit (etcd.service), or null where there is none. */
  distroEtcd: string | null;
  /** The mode (octal text) of each of GardenOS's own directories that exists (see gardenosDirs). */
  dirModes: Record<string, string>;
}

/** GardenOS's own configuration directory on a host. */
export const GARDENOS_ETC = '/etc/gardenos';

/** GardenOS's own directories holding `files` (under /etc/gardenos): 0755, for services that read them as their own users. */
export function gardenosDirs(files: readonly { path: string }[]): string[] {
  return [...new Set(files.flatMap((f) => directoriesBelowTop(f.path)))].filter((d) => d === GARDENOS_ETC || d.startsWith(`${GARDENOS_ETC}/`)).sort();
}

export interface Host {
  node: NodeConfig;
  ssh: SshHost;
  files: HostFile[];
  /** Set by the facts phase, with the service manager it found. */
  known?: { facts: HostFacts; services: ServiceManager };
  /** Paths whose content this run changed (or would change). */
  changed: Set<string>;
}

/** What the facts phase learned about `h`; every phase after it may rely on it. */
export function known(h: Host): { facts: HostFacts; services: ServiceManager } {
  if (!h.known) throw new GardenError('STATE_CONFLICT', `no facts about ${h.node.name}: the facts phase has not run`);
  return h.known;
}

/** Where a restart still owed is remembered on the host: written with the files, removed after the (re)start. */
export const PENDING_DIR = '/var/lib/gardenos/pending';

/** The files each service reads: a change to any of them means that service must restart. */
export function serviceFiles(svc: ServiceName, node: string): string[] {
  const p = hostPaths('/');
  switch (svc) {
    case 'etcd':
      return [p.etcdConfig, p.etcdUnit, p.ca, ...Object.values(p.cert(`etcd-${node}`)), `${RUNNER_DIR}/etcd.cmd`];
    case 'haproxy':
      return [p.haproxyConfig, p.haproxyEnv, p.haproxyDropIn, p.ca, `${RUNNER_DIR}/haproxy.cmd`];
    case 'k3s':
      return [p.k3sConfig, p.k3sToken, p.ca, ...Object.values(p.cert('etcd-client-k3s'))];
  }
}

/** Whether a service must (re)start: it is not running, its files changed now, or an earlier run changed them and stopped before restarting it. */
export function owesRestart(h: Host, svc: ServiceName): boolean {
  const { facts } = known(h);
  return !facts.active[svc] || facts.pending.includes(svc) || serviceFiles(svc, h.node.name).some((p) => h.changed.has(p));
}

/** The one seam for changes: each is recorded and reported, and done unless this is a dry run. */
export class Changes {
  readonly list: Change[] = [];
  private readonly dryRun: boolean;
  private readonly report: Reporter;
  constructor(dryRun: boolean, report: Reporter) {
    this.dryRun = dryRun;
    this.report = report;
  }
  async do(host: string, phase: PhaseName, action: string, fn: () => Promise<unknown>): Promise<void> {
    return this.doAll(host, phase, [action], fn);
  }

  /** Several changes made by one action (files written in one command). */
  async doAll(host: string, phase: PhaseName, actions: string[], fn: () => Promise<unknown>): Promise<void> {
    if (actions.length === 0) return;
    for (const action of actions) {
      this.list.push({ host, phase, action });
      this.report({ kind: 'change', member: host, what: this.dryRun ? `would ${action}` : action });
    }
    if (!this.dryRun) await fn();
  }
}

export const sha = (s: string) => createHash('sha256').update(s).digest('hex');

/** Runs `fn` for every item, at most `limit` at once; every failure is kept and reported together. */
export async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  const errors: unknown[] = [];
  await Promise.all(
    Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
      for (let item = queue.shift(); item !== undefined; item = queue.shift()) {
        await fn(item).catch((e) => errors.push(e));
      }
    }),
  );
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) {
    const hints = [...new Set(errors.map((e) => (e instanceof GardenError ? e.hint : undefined)).filter((h): h is string => Boolean(h)))];
    throw new GardenError('MEMBER_FAILED', `${errors.length} hosts failed`, {
      details: errors.map((e) => describe(e)).sort(),
      ...(hints.length ? { hint: hints.join('; ') } : {}),
    });
  }
}

export interface UpContext {
  config: Config;
  opts: UpOptions;
  report: Reporter;
  dryRun: boolean;
  changes: Changes;
  concurrency: number;
  waitMs: number;
  topo: Topology;
  secrets: PlatformSecrets;
  rendered: RenderedFile[];
  paths: HostPaths;
  hosts: Host[];
}

/** One phase of `gardenos up` (one file each under phases/). */
export type UpPhase = Phase<UpContext, PhaseName>;

export const byRole = (ctx: UpContext, role: NodeConfig['roles'][number]): Host[] => ctx.hosts.filter((h) => h.node.roles.includes(role));

/** etcd's members as GardenOS's own client identity sees them, with the certificate from the secrets directory. */
export async function etcdMembers(ctx: UpContext): Promise<EtcdMemberStatus[]> {
  const pki = join(ctx.opts.secretsDir, 'pki');
  const client = new EtcdClient(
    etcdClientUrls(ctx.config, ctx.topo),
    { ca: join(pki, 'ca.crt'), cert: join(pki, 'etcd-client-gardenos.crt'), key: join(pki, 'etcd-client-gardenos.key') },
    { timeoutMs: 3000 },
  );
  try {
    return (await client.statuses()).map((s) => ({
      name: s.endpoint,
      endpoint: s.endpoint,
      healthy: s.ok,
      leader: Boolean(s.isLeader),
      ...(s.error ? { error: s.error } : {}),
    }));
  } finally {
    client.close();
  }
}

/** etcd's health in numbers (for the waits while members start). */
export async function etcdHealth(ctx: UpContext): Promise<{ healthy: number; leader: boolean; total: number }> {
  const members = await etcdMembers(ctx);
  return { healthy: members.filter((m) => m.healthy).length, leader: members.some((m) => m.leader), total: members.length };
}

export const waitEtcdHealthy = (ctx: UpContext, why: string) =>
  waitFor(
    `etcd: every member healthy with a leader (${why})`,
    async () => {
      const h = await etcdHealth(ctx);
      if (h.healthy !== h.total || !h.leader) throw new Error(`${h.healthy}/${h.total} healthy${h.leader ? '' : ', no leader'}`);
      return true;
    },
    { timeoutMs: ctx.waitMs, intervalMs: 500 },
  );

/** (Re)starts a service and clears the restart it owed, after an optional check: one SSH command. */
export async function startService(h: Host, svc: ServiceName, running: boolean, check?: string): Promise<void> {
  const verb = running ? 'restart' : 'start';
  await h.ssh.must(
    `${verb === 'start' ? 'starting' : 'restarting'} ${svc}`,
    [...(check ? [check] : []), known(h).services.command(verb, svc), `rm -f ${PENDING_DIR}/${svc}`].join(' && '),
  );
}
