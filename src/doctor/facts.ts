// What `gardenos doctor` looks at, gathered once and in parallel, so every
// check is a plain function of these facts (and can be tested on its own).
// Each source that cannot be read records why instead of failing the run.
import { execFile } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { userInfo } from 'node:os';
import { promisify } from 'node:util';
import type { Config } from '../config/schema.ts';
import { EtcdClient } from '../clients/etcd.ts';
import { describe } from '../errors.ts';
import { etcdEndpoints, type LocalCluster } from '../local/cluster.ts';
import { gatherStatus, type LocalStatus } from '../local/status.ts';
import { readSecrets } from '../local/state.ts';
import { linesSince, recentLines } from './causes.ts';
import { readStartLog, type StartLog } from '../local/startup.ts';
import { tail } from '../local/supervisor.ts';
import { USERS } from '../render/files.ts';
import type { Topology } from '../render/topology.ts';
import { patroniKeys, type PatroniKeys } from '../router/dcs.ts';
import { request } from '../util/http.ts';
import type { KubeFacts } from '../clients/kubernetes.ts';
import type { PlatformStatus } from '../platform/status.ts';

const run = promisify(execFile);

/** One row of PostgreSQL's pg_hba_file_rules view, as the server parsed its pg_hba.conf. */
export interface HbaRule {
  line: number;
  type: string;
  databases: string[];
  users: string[];
  address: string | null;
  netmask: string | null;
  method: string;
}

export interface MemberFacts {
  name: string;
  address: string;
  configFile: string;
  /** Which DCS section the member's patroni.yml uses, and how it reaches etcd. */
  dcs?: { section: 'etcd' | 'etcd3' | 'none'; protocol: string | undefined; hosts: string[]; hasClientCert: boolean };
  configError?: string;
  dataDir: { path: string; exists: boolean; mode?: number; uid?: number; hasPgVersion: boolean; parentMode?: number; parentUid?: number };
  /** The uid PostgreSQL runs as. */
  expectedUid: number;
  /** The member's log lines (Patroni's and PostgreSQL's) of the last minutes. */
  log: string[];
}

export interface EtcdEndpointFacts {
  endpoint: string;
  /** What a plain-HTTP request to the client port got ("answered 200" or the error). */
  plainHttp: string;
  plainHttpAnswers: boolean;
}

export interface HostFacts {
  user: string;
  uid: number;
  /** The groups of this process (the shell's active groups). */
  activeGroups: number[];
  /** /etc/group as text. */
  groupFile: string;
  /** `ip -j addr` output, parsed; undefined with the reason when it could not run. */
  interfaces: IpInterface[] | undefined;
  interfacesError?: string;
}

export interface IpInterface {
  ifname: string;
  operstate?: string;
  addr_info?: { family: string; local: string; prefixlen: number }[];
}

export interface LocalFacts {
  config: Config;
  topology: Topology;
  status: LocalStatus;
  dcsKeys: Record<string, string> | undefined;
  dcsError?: string;
  /** Where Patroni keeps this cluster's keys in etcd, and their names. */
  patroniKeys: PatroniKeys;
  members: MemberFacts[];
  hba: HbaRule[] | undefined;
  hbaError?: string;
  etcd: EtcdEndpointFacts[];
  /** Every daemon's log since its last start, within the log window: known causes and error lines. */
  logs: StartLog[];
}

export interface DoctorFacts {
  local?: LocalFacts;
  /** The production platform (`gardenos doctor`): see platform.ts. */
  platform?: PlatformFacts;
  host?: HostFacts;
  kube?: KubeFacts;
  kubeError?: string;
}

async function memberFacts(
  c: LocalCluster,
  m: { name: string; address: string },
  parseYaml: (s: string) => unknown,
  logWindowMs: number,
): Promise<MemberFacts> {
  const files = c.layout.patroni(m.name);
  const facts: MemberFacts = {
    name: m.name,
    address: m.address,
    configFile: files.configFile,
    dataDir: { path: files.dataDir, exists: false, hasPgVersion: false },
    expectedUid: c.pgOwner?.uid ?? process.getuid?.() ?? 0,
    log: recentLines(await tail(c.layout.log(`patroni-${m.name}`), 300), logWindowMs),
  };
  try {
    const doc = parseYaml(await readFile(files.configFile, 'utf8')) as Record<string, Record<string, unknown> | undefined>;
    const section = doc.etcd3 ? 'etcd3' : doc.etcd ? 'etcd' : 'none';
    const s = (doc.etcd3 ?? doc.etcd ?? {}) as { protocol?: string; hosts?: string | string[]; host?: string; cert?: string; key?: string };
    const hosts = Array.isArray(s.hosts) ? s.hosts : typeof s.hosts === 'string' ? s.hosts.split(',') : s.host ? [s.host] : [];
    facts.dcs = { section, protocol: s.protocol ?? hosts.find((h) => h.includes('://'))?.split('://')[0], hosts, hasClientCert: Boolean(s.cert && s.key) };
  } catch (e) {
    facts.configError = describe(e);
  }
  const [d, parent, version] = await Promise.all([
    stat(files.dataDir).catch(() => undefined),
    stat(dirname(files.dataDir)).catch(() => undefined),
    stat(join(files.dataDir, 'PG_VERSION')).catch(() => undefined),
  ]);
  facts.dataDir = {
    path: files.dataDir,
    exists: Boolean(d),
    hasPgVersion: Boolean(version),
    ...(d ? { mode: d.mode & 0o7777, uid: d.uid } : {}),
    ...(parent ? { parentMode: parent.mode & 0o7777, parentUid: parent.uid } : {}),
  };
  return facts;
}

async function hbaRules(c: LocalCluster, status: LocalStatus): Promise<HbaRule[]> {
  const leader = status.members.find((m) => m.role === 'leader' && m.apiReachable) ?? status.members.find((m) => m.apiReachable);
  if (!leader) throw new Error('no member answers, so no server to ask');
  const secrets = await readSecrets(c.layout);
  // Through the member's Unix socket: a pg_hba that refuses TCP clients is what this must be able to show.
  return queryHbaRules({
    host: c.layout.patroni(leader.name).socketDir,
    port: c.config.postgres.port,
    user: USERS.superuser,
    ...(secrets ? { password: secrets.superuserPassword } : {}),
  });
}

/** pg_hba_file_rules as the server parsed its pg_hba.conf, read as the superuser through `connect`. */
export async function queryHbaRules(connect: {
  host: string;
  port: number;
  user: string;
  password?: string;
  ssl?: { ca: string; servername?: string };
}): Promise<HbaRule[]> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({
    host: connect.host,
    port: connect.port,
    user: connect.user,
    database: 'postgres',
    ...(connect.password !== undefined ? { password: connect.password } : {}),
    ...(connect.ssl
      ? { ssl: { ca: connect.ssl.ca, rejectUnauthorized: true, ...(connect.ssl.servername ? { servername: connect.ssl.servername } : {}) } }
      : {}),
    connectionTimeoutMillis: 2000,
  });
  client.on('error', () => {});
  await client.connect();
  try {
    const r = await client.query<{
      line_number: number;
      type: string;
      database: string[];
      user_name: string[];
      address: string | null;
      netmask: string | null;
      auth_method: string;
    }>('SELECT line_number, type, database, user_name, address, netmask, auth_method FROM pg_hba_file_rules WHERE error IS NULL ORDER BY line_number');
    return r.rows.map((x) => ({
      line: x.line_number,
      type: x.type,
      databases: x.database,
      users: x.user_name,
      address: x.address,
      netmask: x.netmask,
      method: x.auth_method,
    }));
  } finally {
    await client.end().catch(() => {});
  }
}

async function probeEtcdPlain(endpoint: string): Promise<EtcdEndpointFacts> {
  const plain = endpoint.replace(/^https:/, 'http:');
  try {
    const res = await request(new URL('/version', plain), { method: 'GET', timeoutMs: 1000 });
    return { endpoint, plainHttp: `${plain}/version answered ${res.status}`, plainHttpAnswers: res.status === 200 };
  } catch (e) {
    return { endpoint, plainHttp: `${plain}/version: ${describe(e)}`, plainHttpAnswers: false };
  }
}

export async function gatherLocalFacts(c: LocalCluster, logWindowMs = 10 * 60_000): Promise<LocalFacts> {
  const { parse } = await import('yaml');
  const keys = patroniKeys(c.config.postgres.namespace, c.config.postgres.scope);
  const etcd = new EtcdClient(etcdEndpoints(c), c.layout.client, { timeoutMs: 1500 });
  const specs = [...c.specs.etcd, ...c.specs.patroni, c.specs.haproxy, c.specs.router];
  const [status, dcs, members, plain, logs] = await Promise.all([
    gatherStatus(c, { timeoutMs: 1500 }),
    etcd.readPrefix(keys.prefix).then(
      (r) => ({ keys: r.kvs }),
      (e) => ({ error: describe(e) }),
    ),
    Promise.all(c.topology.postgres.map((m) => memberFacts(c, m, parse, logWindowMs))),
    Promise.all(etcdEndpoints(c).map(probeEtcdPlain)),
    // Continuation lines (a traceback's) go with the timed line before them.
    Promise.all(specs.map((s) => readStartLog(s, (lines) => linesSince(lines, Date.now() - logWindowMs)))),
  ]).finally(() => etcd.close());
  const hba = await hbaRules(c, status).then(
    (rules) => ({ rules }),
    (e) => ({ error: describe(e) }),
  );
  return {
    config: c.config,
    topology: c.topology,
    status,
    patroniKeys: keys,
    dcsKeys: 'keys' in dcs ? dcs.keys : undefined,
    ...('error' in dcs ? { dcsError: dcs.error } : {}),
    members,
    hba: 'rules' in hba ? hba.rules : undefined,
    ...('error' in hba ? { hbaError: hba.error } : {}),
    etcd: plain,
    logs,
  };
}

export interface HostSources {
  user?: string;
  uid?: number;
  activeGroups?: number[];
  groupFile?: string;
  /** The command that prints interfaces as JSON (default `ip -j addr`); tests run it inside a namespace. */
  ipCommand?: string[];
}

export async function gatherHostFacts(src: HostSources = {}): Promise<HostFacts> {
  const ipCommand = src.ipCommand ?? ['ip', '-j', 'addr'];
  const [groupFile, ip] = await Promise.all([
    readFile(src.groupFile ?? '/etc/group', 'utf8').catch(() => ''),
    run(ipCommand[0]!, ipCommand.slice(1), { timeout: 3000 }).then(
      (r) => ({ interfaces: JSON.parse(r.stdout) as IpInterface[] }),
      (e) => ({ error: describe(e) }),
    ),
  ]);
  return {
    user: src.user ?? userInfo().username,
    uid: src.uid ?? process.getuid?.() ?? 0,
    activeGroups: src.activeGroups ?? process.getgroups?.() ?? [],
    groupFile,
    interfaces: 'interfaces' in ip ? ip.interfaces : undefined,
    ...('error' in ip ? { interfacesError: ip.error } : {}),
  };
}

/** What the production doctor gathers (platform.ts): the config, status, pg_hba as PostgreSQL reads it, and the members' pods. */
export interface PostgresPodFacts {
  name: string;
  node: string | undefined;
  /** The volume-permissions step: its exit code once it ran, or why it waits. */
  permissionsStep: { exitCode?: number; waiting?: string };
  /** Patroni's and PostgreSQL's last log lines (this container and its previous run). */
  log: string[];
}

export interface PlatformFacts {
  config: Config;
  topology: Topology;
  status: PlatformStatus;
  hba: HbaRule[] | undefined;
  hbaError?: string;
  pods: PostgresPodFacts[] | undefined;
  podsError?: string;
  /** systemd's view of GardenOS's services on each etcd and HAProxy host, over SSH (undefined with --no-ssh). */
  units?: HostUnits[];
  /** The pooler's pods (pooler.enabled, with a kubeconfig): ready, and PgBouncer's own SHOW STATE. */
  pooler?: PoolerPodFacts[];
  poolerError?: string;
}

export interface PoolerPodFacts {
  name: string;
  ready: boolean;
  /** PgBouncer's SHOW STATE (active, paused, suspended: yes/no), or why it could not be read. */
  state?: Record<string, string>;
  error?: string;
}

/** What systemd says of GardenOS's services on one host. */
export interface HostUnits {
  node: string;
  /** Why the host could not be asked (SSH), when it could not. */
  error?: string;
  /** false: the host does not boot systemd (its services run under GardenOS's runner). */
  systemd?: boolean;
  units: UnitState[];
}

export interface UnitState {
  unit: string;
  /** ActiveState/SubState: active/running, activating/auto-restart, failed/failed … */
  active: string;
  sub: string;
  /** Restarts systemd made since the unit was started by hand (Restart=always). */
  restarts: number;
  /** The journal since its last start (the last lines). */
  journal: string[];
}
