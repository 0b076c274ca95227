// Everything the local commands share: the effective config, the topology
// from the local profile, the state-directory layout, and the process specs
// for each daemon (the same rendered configs production uses).
import { access, readdir, readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Config } from '../config/schema.ts';
import { API_VERSION, SUPPORTED_POSTGRES } from '../config/version.ts';
import { GardenError } from '../errors.ts';
import { USERS } from '../render/files.ts';
import { etcdClientUrls, hostPort, type Topology } from '../render/topology.ts';
import type { PatroniAccess } from '../ops/patroni.ts';
import { readJson, type Owner } from '../util/files.ts';
import { inNamespace, isolatedNetwork, type IsolatedNetwork } from './netns.ts';
import { DEFAULT_LOCAL_CONFIG, defaultStateDir, localLayout, localTopology, resolveStateDir, type LocalLayout } from './profile.ts';
import { createSupervisor, type ProcessSpec, type Supervisor } from './supervisor.ts';
import { postgresOwner, readSecrets } from './state.ts';

export interface LocalCluster {
  config: Config;
  topology: Topology;
  layout: LocalLayout;
  supervisor: Supervisor;
  /** Who PostgreSQL and Patroni run as (undefined: the current user). */
  pgOwner: Owner | undefined;
  specs: {
    etcd: ProcessSpec[];
    patroni: ProcessSpec[];
    haproxy: ProcessSpec;
    router: ProcessSpec;
    pooler: ProcessSpec;
    /** Prometheus. */
    monitoring: ProcessSpec;
    /** What Prometheus scrapes and sends to beside the components: postgres-exporter per member, node-exporter, Alertmanager. */
    exporters: ProcessSpec[];
    scheduler: ProcessSpec;
  };
  /** Set in isolated mode: the namespaces, links and bridge the members live on. */
  network: IsolatedNetwork | undefined;
}

/** This very CLI (src/cli/main.ts or dist/cli/main.js), which the local router process runs. */
const CLI_ENTRY = fileURLToPath(new URL(`../cli/main${extname(fileURLToPath(import.meta.url))}`, import.meta.url));

export interface ClusterMeta {
  name: string;
  createdAt: string;
  config: Config;
}

export interface OpenOptions {
  configFile?: string;
  stateDir?: string;
  /** `up --isolated`: members in their own network namespaces (recorded, so later commands need not repeat it). */
  isolated?: boolean;
  /** `up --with-monitoring`: Prometheus beside the cluster (recorded, like isolation). */
  monitoring?: boolean;
  /** `up --with-backups`: pgBackRest archiving and base backups (recorded, like monitoring). */
  backups?: boolean;
}

/** Sections a recorded config must have to be used as it is (those added after records were first written). */
const RECORD_SECTIONS = ['monitoring', 'backups'] as const;

/**
 * The config comes from -c when given; otherwise from the state directory's
 * record of the last `up` (so `status --state-dir X` needs no -c); otherwise the built-in defaults.
 * The record is GardenOS's own, written after validation, so it is trusted as it is; the
 * validator (and its schema library) is loaded only for input a person wrote, and for a record
 * written before a section existed, which gets that section's defaults.
 */
export async function resolveConfig(opts: OpenOptions): Promise<Config> {
  if (opts.configFile) return (await import('../config/load.ts')).loadConfig(opts.configFile);
  const dir = opts.stateDir ?? process.env.GARDENOS_STATE_DIR ?? defaultStateDir(String(DEFAULT_LOCAL_CONFIG.cluster.name));
  const meta = await readJson<ClusterMeta>(`${dir}/cluster.json`).catch(() => undefined);
  if (meta?.config?.apiVersion === API_VERSION) {
    if (RECORD_SECTIONS.every((k) => k in meta.config)) return meta.config;
    const { config } = (await import('../config/load.ts')).validateConfig(meta.config);
    if (config) return config;
  }
  const { validateConfig } = await import('../config/load.ts');
  // Without a file, the PostgreSQL the machine has: Debian 12 ships 15, Debian 13 ships 17.
  const version = await installedPostgres();
  const { config, problems } = validateConfig(
    version ? { ...DEFAULT_LOCAL_CONFIG, postgres: { ...DEFAULT_LOCAL_CONFIG.postgres, version } } : DEFAULT_LOCAL_CONFIG,
  );
  if (!config) throw new GardenError('CONFIG_INVALID', 'the built-in local config is invalid', { details: problems.map((p) => `${p.path}: ${p.message}`) });
  return config;
}

/** The newest PostgreSQL major GardenOS supports that Debian's packages installed here, if any. */
export async function installedPostgres(base = '/usr/lib/postgresql'): Promise<number | undefined> {
  const majors = await readdir(base).catch(() => [] as string[]);
  const usable = await Promise.all(
    SUPPORTED_POSTGRES.filter((v) => majors.includes(String(v))).map(async (v) =>
      (await access(`${base}/${v}/bin/postgres`).then(
        () => true,
        () => false,
      ))
        ? v
        : undefined,
    ),
  );
  return usable.filter((v) => v !== undefined).at(-1);
}

export async function openLocalCluster(opts: OpenOptions): Promise<LocalCluster> {
  const resolved = await resolveConfig(opts);
  const root = resolveStateDir(resolved, opts.stateDir);
  // Isolation is a fact about the cluster that exists, not only about the file: once made with
  // `up --isolated`, every later command (with or without -c) must find its namespaces.
  const recordedConfig = opts.configFile ? (await readJson<ClusterMeta>(`${root}/cluster.json`).catch(() => undefined))?.config : undefined;
  const isolated = opts.isolated || recordedConfig?.local.isolated;
  const withIsolation = isolated ? { ...resolved, local: { ...resolved.local, isolated: true } } : resolved;
  const monitored = opts.monitoring || recordedConfig?.monitoring?.enabled;
  const withMonitoring = monitored ? { ...withIsolation, monitoring: { ...withIsolation.monitoring, enabled: true } } : withIsolation;
  const backedUp = opts.backups || recordedConfig?.backups?.enabled;
  const config = backedUp ? { ...withMonitoring, backups: { ...withMonitoring.backups, enabled: true } } : withMonitoring;
  const layout = localLayout(root, config.postgres.version, config.backups.repository.path);
  const topology = localTopology(config);
  const pgOwner = await postgresOwner();
  // TZ passes through so that the daemons' log times and GardenOS's reading of them agree.
  const env = {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    LANG: 'C.UTF-8',
    LC_ALL: 'C.UTF-8',
    ...(process.env.TZ ? { TZ: process.env.TZ } : {}),
  };
  const network = config.local.isolated ? isolatedNetwork(root, topology) : undefined;
  const place = (spec: ProcessSpec, i: number, owner?: Owner) => (network ? inNamespace(spec, network.members[i]!.namespace, owner) : spec);
  return {
    network,
    config,
    topology,
    layout,
    pgOwner,
    supervisor: createSupervisor(layout.pidsDir),
    specs: {
      etcd: topology.etcd.map((m, i) => {
        const f = layout.etcd(m.name);
        return place(
          {
            id: `etcd-${m.name}`,
            command: 'etcd',
            args: ['--config-file', f.configFile],
            cwd: f.dir,
            env,
            logFile: layout.log(`etcd-${m.name}`),
            match: f.configFile,
          },
          i,
        );
      }),
      patroni: topology.postgres.map((m, i) => {
        const f = layout.patroni(m.name);
        return place(
          {
            id: `patroni-${m.name}`,
            command: 'patroni',
            args: [f.configFile],
            cwd: f.dir,
            env: { ...env, HOME: f.dir, PYTHONUNBUFFERED: '1' },
            ...(pgOwner ? { owner: pgOwner } : {}),
            logFile: layout.log(`patroni-${m.name}`),
            match: f.configFile,
          },
          i,
          pgOwner,
        );
      }),
      router: {
        id: 'router',
        command: process.execPath,
        // A small young generation: measured ~10 MiB less resident memory for a process that allocates little.
        args: ['--max-semi-space-size=1', CLI_ENTRY, 'router', '--config', layout.router.configFile],
        cwd: layout.router.dir,
        env,
        logFile: layout.log('router'),
        match: layout.router.configFile,
      },
      haproxy: {
        id: 'haproxy',
        command: 'haproxy',
        args: ['-f', layout.haproxy.configFile, '-db'],
        cwd: layout.haproxy.dir,
        env,
        logFile: layout.log('haproxy'),
        match: layout.haproxy.configFile,
      },
      // PgBouncer refuses to run as root: it runs as PostgreSQL's user, like Patroni.
      pooler: {
        id: 'pooler',
        command: 'pgbouncer',
        args: [layout.pooler.configFile],
        cwd: layout.pooler.dir,
        env,
        ...(pgOwner ? { owner: pgOwner } : {}),
        logFile: layout.log('pooler'),
        match: layout.pooler.configFile,
      },
      // The backup scheduler (backups.enabled): this CLI, reading the config `up` resolved (JSON is YAML).
      scheduler: {
        id: 'backup-scheduler',
        command: process.execPath,
        args: ['--max-semi-space-size=1', CLI_ENTRY, 'local', '-c', layout.backups.schedulerConfigFile, '--state-dir', root, 'backup-scheduler'],
        cwd: layout.backups.dir,
        env,
        logFile: layout.log('backup-scheduler'),
        match: layout.backups.schedulerConfigFile,
      },
      // Debian's Prometheus, on the load balancer's address (the host's side in isolated mode).
      monitoring: {
        id: 'prometheus',
        command: 'prometheus',
        args: [
          `--config.file=${layout.monitoring.configFile}`,
          `--storage.tsdb.path=${layout.monitoring.dataDir}`,
          `--storage.tsdb.retention.time=${config.monitoring.retention}`,
          `--web.listen-address=${hostPort(topology.loadBalancer, config.monitoring.port)}`,
          '--log.format=json',
        ],
        cwd: layout.monitoring.dir,
        env,
        logFile: layout.log('prometheus'),
        match: layout.monitoring.configFile,
      },
      exporters: [
        // One postgres-exporter per member, on the load balancer's address (the host's side in isolated mode),
        // logging in as the pg_monitor role over TLS checked against the cluster's CA.
        ...topology.postgres.map(
          (m, i): ProcessSpec => ({
            id: `postgres-exporter-${m.name}`,
            command: 'prometheus-postgres-exporter',
            args: [
              `--web.listen-address=${hostPort(topology.loadBalancer, config.monitoring.exporterPorts.postgres + i)}`,
              '--disable-settings-metrics',
              '--log.level=warn',
              '--log.format=json',
            ],
            cwd: layout.monitoring.dir,
            env: {
              ...env,
              DATA_SOURCE_URI: `${hostPort(m.address, config.postgres.port)}/postgres?sslmode=verify-full&sslrootcert=${layout.ca.cert}`,
              DATA_SOURCE_USER: USERS.monitor,
              DATA_SOURCE_PASS_FILE: layout.monitoring.monitorPasswordFile,
            },
            logFile: layout.log(`postgres-exporter-${m.name}`),
            match: `--web.listen-address=${hostPort(topology.loadBalancer, config.monitoring.exporterPorts.postgres + i)}`,
            listen: { host: topology.loadBalancer, port: config.monitoring.exporterPorts.postgres + i, readyPath: '/metrics' },
          }),
        ),
        {
          id: 'node-exporter',
          command: 'prometheus-node-exporter',
          args: [
            `--web.listen-address=${hostPort(topology.loadBalancer, config.monitoring.exporterPorts.node)}`,
            '--collector.disable-defaults',
            ...['filesystem', 'cpu', 'meminfo', 'loadavg', 'textfile'].map((c) => `--collector.${c}`),
            `--collector.textfile.directory=${layout.monitoring.textfileDir}`,
            '--log.format=json',
          ],
          cwd: layout.monitoring.dir,
          env,
          logFile: layout.log('node-exporter'),
          match: `--collector.textfile.directory=${layout.monitoring.textfileDir}`,
          listen: { host: topology.loadBalancer, port: config.monitoring.exporterPorts.node, readyPath: '/metrics' },
        },
        {
          id: 'alertmanager',
          command: 'prometheus-alertmanager',
          args: [
            `--config.file=${layout.monitoring.alertmanagerConfigFile}`,
            `--storage.path=${layout.monitoring.alertmanagerDataDir}`,
            `--web.listen-address=${hostPort(topology.loadBalancer, config.monitoring.alertmanager.port)}`,
            // One Alertmanager: no gossip port.
            '--cluster.listen-address=',
            '--log.format=json',
          ],
          cwd: layout.monitoring.dir,
          env,
          logFile: layout.log('alertmanager'),
          match: layout.monitoring.alertmanagerConfigFile,
          listen: { host: topology.loadBalancer, port: config.monitoring.alertmanager.port, readyPath: '/-/ready' },
        },
      ],
    },
  };
}

export function etcdEndpoints(c: LocalCluster): string[] {
  return etcdClientUrls(c.config, c.topology);
}

export function routerUrl(c: LocalCluster): string {
  return `http://${hostPort(c.topology.loadBalancer, c.config.router.port)}`;
}

export function patroniUrl(c: LocalCluster, address: string): string {
  return `https://${hostPort(address, c.config.postgres.patroniPort)}`;
}

/** postgres:// URIs through HAProxy, and through the pooler when it is enabled; TLS verified against the cluster CA. */
export function connectionUris(c: LocalCluster, password: string | undefined): { primary: string; replicas: string; pooled?: string } {
  const auth = password === undefined ? 'postgres' : `postgres:${encodeURIComponent(password)}`;
  const q = `sslmode=verify-full&sslrootcert=${encodeURIComponent(c.layout.ca.cert)}`;
  const uri = (port: number) => `postgresql://${auth}@${hostPort(c.topology.loadBalancer, port)}/postgres?${q}`;
  return {
    primary: uri(c.config.haproxy.ports.primary),
    replicas: uri(c.config.haproxy.ports.replicas),
    ...(c.config.pooler.enabled ? { pooled: uri(c.config.pooler.port) } : {}),
  };
}

/** The pid in a member's postmaster.pid, if that PostgreSQL is still running. */
export async function postmasterPid(c: LocalCluster, member: string): Promise<number | undefined> {
  const text = await readFile(`${c.layout.patroni(member).dataDir}/postmaster.pid`, 'utf8').catch(() => undefined);
  const pid = Number(text?.split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  return cmd.includes('postgres') ? pid : undefined;
}

/** Every member's Patroni REST API with the credentials for its unsafe endpoints. */
export async function patroniAccess(c: LocalCluster): Promise<PatroniAccess> {
  const secrets = await readSecrets(c.layout);
  if (!secrets)
    throw new GardenError('NOT_RUNNING', `cluster ${c.config.cluster.name} has no secrets in ${c.layout.root}`, { hint: 'run `gardenos local up` first' });
  return {
    scope: c.config.postgres.scope,
    members: c.topology.postgres.map((m) => ({ name: m.name, apiUrl: patroniUrl(c, m.address) })),
    caFile: c.layout.ca.cert,
    auth: { username: USERS.restApi, password: secrets.restApiPassword },
  };
}
