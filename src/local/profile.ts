// The local profile: maps a platform config onto one machine. Each member gets
// its own loopback address (127.x.y.z), the way three hosts would; everything
// else (ports, Patroni settings, TLS) comes from the same config and renderers.
import { homedir, userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import type { Config, ConfigInput } from '../config/schema.ts';
import type { EtcdFiles, HaproxyFiles, PatroniFiles, TlsFiles } from '../render/files.ts';
import type { PgbackrestFiles } from '../render/pgbackrest.ts';
import type { PoolerFiles } from '../render/pgbouncer.ts';
import type { Member, Topology } from '../render/topology.ts';

/**
 * `gardenos local up` without -c: a developer's sandbox that fails over as fast as Patroni allows
 * (ttl 20 is its floor; loop_wait 2 and retry_timeout 5 keep loop_wait + 2·retry_timeout ≤ ttl
 * with room for one slow etcd round).
 */
export const DEFAULT_LOCAL_CONFIG: ConfigInput = {
  cluster: { name: 'garden-local' },
  postgres: { ttl: 20, loopWait: 2, retryTimeout: 5 },
  haproxy: { checkIntervalMs: 1000, fall: 2, rise: 1 },
};

export function localMembers(config: Config): Member[] {
  const { addressPrefix, isolatedPrefix, isolated, firstHost, members } = config.local;
  const named = config.nodes.filter((n) => n.roles.includes('postgres')).map((n) => n.name);
  return Array.from({ length: members }, (_, i) => ({
    name: named.length === members ? named[i]! : `node${i + 1}`,
    address: `${isolated ? isolatedPrefix : addressPrefix}.${firstHost + i}`,
  }));
}

export function localTopology(config: Config): Topology {
  const members = localMembers(config);
  if (config.local.isolated) {
    // Members in their own network namespaces, on one bridge whose address is the load balancer's.
    const subnet = `${config.local.isolatedPrefix}.0/24`;
    return {
      cluster: config.cluster.name,
      etcd: members,
      postgres: members,
      k3sServers: [],
      loadBalancer: `${config.local.isolatedPrefix}.1`,
      clientNetworks: [subnet],
      memberNetworks: [subnet],
    };
  }
  return {
    cluster: config.cluster.name,
    etcd: members,
    postgres: members,
    k3sServers: [],
    loadBalancer: `${config.local.addressPrefix}.${config.local.firstHost - 1}`,
    clientNetworks: ['127.0.0.0/8'],
    // On loopback the kernel sends from 127.0.0.1 whatever address a member listens on.
    memberNetworks: ['127.0.0.0/8'],
  };
}

export function defaultStateDir(cluster: string, env: NodeJS.ProcessEnv = process.env): string {
  if (env.GARDENOS_STATE_DIR) return env.GARDENOS_STATE_DIR;
  // As root, PostgreSQL runs as the postgres user, which must be able to reach its
  // data directory: /root is closed to it, so root's clusters live under /var/lib.
  if (process.getuid?.() === 0) return join('/var/lib/gardenos', cluster);
  const base = env.XDG_STATE_HOME || join(env.HOME || homedir() || `/home/${userInfo().username}`, '.local', 'state');
  return join(base, 'gardenos', cluster);
}

/** Absolute, so that names derived from it (the isolated network's) do not depend on the working directory. */
export function resolveStateDir(config: Config, flag?: string): string {
  return resolve(flag ?? process.env.GARDENOS_STATE_DIR ?? config.local.stateDir ?? defaultStateDir(config.cluster.name));
}

export interface LocalLayout {
  root: string;
  clusterFile: string;
  secretsDir: string;
  secretsFile: string;
  /** libpq password file for the superuser (PGPASSFILE), so no password is ever printed. */
  pgpassFile: string;
  pkiDir: string;
  logsDir: string;
  pidsDir: string;
  ca: { cert: string; key: string };
  /** The certificate GardenOS itself uses as an etcd client. */
  client: TlsFiles;
  etcd(member: string): EtcdFiles & { dir: string; configFile: string };
  patroni(member: string): PatroniFiles & { dir: string; configFile: string };
  haproxy: HaproxyFiles & { dir: string; configFile: string };
  /** poolerPasswordFile: the pooler's stats user's password, with which the router reads PgBouncer's SHOW lists. */
  router: { dir: string; configFile: string; poolerPasswordFile: string };
  pooler: PoolerFiles & { dir: string; configFile: string };
  monitoring: {
    dir: string;
    configFile: string;
    rulesFile: string;
    dataDir: string;
    statsPasswordFile: string;
    /** postgres-exporter's password (its role is gardenos_monitor). */
    monitorPasswordFile: string;
    alertmanagerConfigFile: string;
    alertmanagerDataDir: string;
    /** node-exporter's textfile directory: the backup scheduler writes its metrics here. */
    textfileDir: string;
  };
  /** pgBackRest (backups.enabled): its config, default repository, logs, and the superuser's pgpass it connects with. */
  backups: PgbackrestFiles & {
    dir: string;
    pgpass: string;
    verifyDir: string;
    /** `db restore --to … --beside`: the restored instance's directory, and its record while it runs. */
    besideDir: string;
    besideRecord: string;
    recordFile: string;
    schedulerConfigFile: string;
    scheduleStateFile: string;
    /** When the newest backup finished (seconds since the epoch): each member's replica-from-backup script reads it. */
    newestFile: string;
    /** The script Patroni runs to create a replica from the repository. */
    replicaScript(member: string): string;
  };
  log(process: string): string;
}

export function localLayout(root: string, postgresVersion: number, repoPath?: string): LocalLayout {
  const pki = join(root, 'pki');
  const ca = { cert: join(pki, 'ca.crt'), key: join(pki, 'ca.key') };
  const tls = (name: string): TlsFiles => ({ ca: ca.cert, cert: join(pki, `${name}.crt`), key: join(pki, `${name}.key`) });
  return {
    root,
    clusterFile: join(root, 'cluster.json'),
    secretsDir: join(root, 'secrets'),
    secretsFile: join(root, 'secrets', 'passwords.json'),
    pgpassFile: join(root, 'secrets', 'pgpass'),
    pkiDir: pki,
    logsDir: join(root, 'logs'),
    pidsDir: join(root, 'pids'),
    ca,
    client: tls('gardenos-client'),
    etcd: (m) => {
      const dir = join(root, 'etcd', m);
      return { dir, configFile: join(dir, 'etcd.yml'), dataDir: join(dir, 'data'), tls: tls(`etcd-${m}`) };
    },
    patroni: (m) => {
      const dir = join(root, 'pg', m);
      return {
        dir,
        configFile: join(dir, 'patroni.yml'),
        dataDir: join(dir, 'data'),
        binDir: `/usr/lib/postgresql/${postgresVersion}/bin`,
        socketDir: join(dir, 'run'),
        pgpass: join(dir, 'pgpass'),
        tls: { ca: ca.cert, cert: join(dir, 'tls', 'server.crt'), key: join(dir, 'tls', 'server.key') },
      };
    },
    haproxy: { dir: join(root, 'haproxy'), configFile: join(root, 'haproxy', 'haproxy.cfg'), adminSocket: join(root, 'haproxy', 'admin.sock'), ca: ca.cert },
    router: { dir: join(root, 'router'), configFile: join(root, 'router', 'router.yml'), poolerPasswordFile: join(root, 'router', 'pooler-stats-password') },
    pooler: {
      dir: join(root, 'pooler'),
      configFile: join(root, 'pooler', 'pgbouncer.ini'),
      socketDir: join(root, 'pooler', 'run'),
      userlist: join(root, 'pooler', 'userlist.txt'),
      pauseMarker: join(root, 'pooler', 'paused-by-gardenos'),
      tls: { ca: ca.cert, cert: join(root, 'pooler', 'tls', 'server.crt'), key: join(root, 'pooler', 'tls', 'server.key') },
    },
    monitoring: {
      dir: join(root, 'monitoring'),
      configFile: join(root, 'monitoring', 'prometheus.yml'),
      rulesFile: join(root, 'monitoring', 'gardenos.rules.yml'),
      dataDir: join(root, 'monitoring', 'data'),
      statsPasswordFile: join(root, 'monitoring', 'haproxy-stats-password'),
      monitorPasswordFile: join(root, 'monitoring', 'postgres-exporter-password'),
      alertmanagerConfigFile: join(root, 'monitoring', 'alertmanager.yml'),
      alertmanagerDataDir: join(root, 'monitoring', 'alertmanager'),
      textfileDir: join(root, 'monitoring', 'textfile'),
    },
    backups: {
      dir: join(root, 'pgbackrest'),
      configFile: join(root, 'pgbackrest', 'pgbackrest.conf'),
      repoPath: repoPath ?? join(root, 'pgbackrest', 'repo'),
      logDir: join(root, 'pgbackrest', 'log'),
      lockDir: join(root, 'pgbackrest', 'lock'),
      spoolDir: join(root, 'pgbackrest', 'spool'),
      pgpass: join(root, 'pgbackrest', 'pgpass'),
      verifyDir: join(root, 'pgbackrest', 'verify'),
      besideDir: join(root, 'pgbackrest', 'beside'),
      besideRecord: join(root, 'pgbackrest', 'beside.json'),
      recordFile: join(root, 'pgbackrest', 'verified.json'),
      schedulerConfigFile: join(root, 'pgbackrest', 'scheduler.json'),
      scheduleStateFile: join(root, 'pgbackrest', 'schedule-state.json'),
      newestFile: join(root, 'pgbackrest', 'newest-backup'),
      replicaScript: (m) => join(root, 'pgbackrest', `replica-from-backup-${m}.sh`),
    },
    log: (p) => join(root, 'logs', `${p}.log`),
  };
}
