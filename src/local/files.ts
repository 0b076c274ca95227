// Every file the local cluster's daemons read, rendered by the shared
// renderers with the local profile's addresses and paths, with its mode and owner.
import { renderAlertmanagerConfig, renderAlertRules, renderPrometheusConfig } from '../render/prometheus.ts';
import { renderEtcdConfig } from '../render/etcd.ts';
import { USERS, type ClusterSecrets } from '../render/files.ts';
import { renderHaproxyConfig } from '../render/haproxy.ts';
import type { S3Credentials } from '../config/credentials.ts';
import { renderPatroniConfig } from '../render/patroni.ts';
import { archiveCommand, renderPgbackrestConfig, replicaFromBackupScript, restoreCommand } from '../render/pgbackrest.ts';
import { renderPgbouncerIni, renderPgbouncerUserlist } from '../render/pgbouncer.ts';
import { renderRouterSettings } from '../render/router.ts';
import { hostPort } from '../render/topology.ts';
import type { Owner } from '../util/files.ts';
import type { LocalCluster } from './cluster.ts';
import { PRIMARY_ROUTE, REPLICAS_BACKEND } from '../names.ts';

export interface LocalFile {
  file: string;
  /** The directory it lives in, created with `dirMode` and the file's owner. */
  dir: string;
  dirMode: number;
  content: string;
  mode: number;
  owner?: Owner;
  /** Who reads it: the member name, "haproxy" or "router". */
  member: string;
  /** The process that reads it. */
  processId: string;
}

export function localFiles(c: LocalCluster, secrets: ClusterSecrets, s3?: S3Credentials): LocalFile[] {
  const { config, topology, layout, specs } = c;
  const pgOwner = c.pgOwner ? { owner: c.pgOwner } : {};
  return [
    ...topology.etcd.map((m, i): LocalFile => {
      const f = layout.etcd(m.name);
      return {
        file: f.configFile,
        dir: f.dir,
        dirMode: 0o700,
        content: renderEtcdConfig({ config, topology, member: m, files: f, secrets }),
        mode: 0o644,
        member: m.name,
        processId: specs.etcd[i]!.id,
      };
    }),
    ...topology.postgres.map((m, i): LocalFile => {
      const f = layout.patroni(m.name);
      // Holds passwords: readable by its PostgreSQL only.
      return {
        file: f.configFile,
        dir: f.socketDir,
        dirMode: 0o700,
        content: renderPatroniConfig({ config, topology, member: m, files: f, secrets, ...archiveOf(c, m.name) }),
        mode: 0o600,
        ...pgOwner,
        member: m.name,
        processId: specs.patroni[i]!.id,
      };
    }),
    {
      file: layout.haproxy.configFile,
      dir: layout.haproxy.dir,
      dirMode: 0o700,
      content: renderHaproxyConfig({ config, topology, files: layout.haproxy, secrets }),
      mode: 0o600,
      member: 'haproxy',
      processId: specs.haproxy.id,
    },
    {
      file: layout.router.configFile,
      dir: layout.router.dir,
      dirMode: 0o700,
      content: renderRouterSettings({
        config,
        topology,
        etcdTls: layout.client,
        listenHost: topology.loadBalancer,
        sinks: [{ type: 'haproxy', socket: layout.haproxy.adminSocket, primaryBackend: PRIMARY_ROUTE, replicasBackend: REPLICAS_BACKEND }],
        // Every certificate of the local cluster, for GardenOSCertificateExpiringSoon.
        certificates: [
          layout.ca.cert,
          layout.client.cert,
          ...topology.etcd.map((m) => layout.etcd(m.name).tls.cert),
          ...topology.postgres.map((m) => layout.patroni(m.name).tls.cert),
          ...(config.pooler.enabled ? [layout.pooler.tls.cert] : []),
        ],
        ...(config.pooler.enabled
          ? {
              pooler: {
                socketDir: layout.pooler.socketDir,
                port: config.pooler.port,
                user: USERS.monitor,
                passwordFile: layout.router.poolerPasswordFile,
                pauseMarker: layout.pooler.pauseMarker,
              },
            }
          : {}),
      }),
      mode: 0o600,
      member: 'router',
      processId: specs.router.id,
    },
    ...(config.pooler.enabled && secrets.monitorPassword
      ? [
          {
            file: layout.router.poolerPasswordFile,
            dir: layout.router.dir,
            dirMode: 0o700,
            content: secrets.monitorPassword,
            mode: 0o600,
            member: 'router',
            processId: specs.router.id,
          },
        ]
      : []),
    ...(config.pooler.enabled
      ? [
          {
            file: layout.pooler.configFile,
            content: renderPgbouncerIni({
              config,
              listen: topology.loadBalancer,
              server: { host: topology.loadBalancer, port: config.haproxy.ports.primary },
              files: layout.pooler,
              renderedBy: 'gardenos local up',
            }),
          },
          { file: layout.pooler.userlist, content: renderPgbouncerUserlist(secrets) },
        ].map((f): LocalFile => ({ ...f, dir: layout.pooler.socketDir, dirMode: 0o700, mode: 0o600, ...pgOwner, member: 'pooler', processId: specs.pooler.id }))
      : []),
    ...(config.monitoring.enabled
      ? [
          {
            file: layout.monitoring.configFile,
            content: renderPrometheusConfig({
              config,
              topology,
              tls: layout.client,
              rulesFile: layout.monitoring.rulesFile,
              statsPasswordFile: layout.monitoring.statsPasswordFile,
              haproxy: [topology.loadBalancer],
              router: [topology.loadBalancer],
              postgresExporters: topology.postgres.map((m, i) => ({
                member: m.name,
                target: hostPort(topology.loadBalancer, config.monitoring.exporterPorts.postgres + i),
              })),
              nodeExporters: [hostPort(topology.loadBalancer, config.monitoring.exporterPorts.node)],
              alertmanagers: [hostPort(topology.loadBalancer, config.monitoring.alertmanager.port)],
            }),
            processId: specs.monitoring.id,
          },
          { file: layout.monitoring.rulesFile, content: renderAlertRules(config), processId: specs.monitoring.id },
          { file: layout.monitoring.statsPasswordFile, content: secrets.statsPassword, processId: specs.monitoring.id },
          { file: layout.monitoring.alertmanagerConfigFile, content: renderAlertmanagerConfig(config), processId: 'alertmanager' },
          // Made with the secrets; a cluster from before monitoring existed gets it from ensureSecrets.
          { file: layout.monitoring.monitorPasswordFile, content: secrets.monitorPassword ?? '', processId: specs.exporters[0]!.id },
        ].map((f): LocalFile => ({ ...f, dir: layout.monitoring.dir, dirMode: 0o700, mode: 0o600, member: 'monitoring' }))
      : []),
    ...backupFiles(c, secrets, s3),
  ];
}

const archiveOf = (c: LocalCluster, member: string) => {
  const archive = memberArchive(c, member);
  return archive ? { archive } : {};
};

/** Each member's archive_command and restore_command, for its patroni.yml. */
export function memberArchive(c: LocalCluster, member: string): { archiveCommand: string; restoreCommand: string; replicaCommand?: string } | undefined {
  if (!c.config.backups.enabled) return undefined;
  const dataDir = c.layout.patroni(member).dataDir;
  return {
    archiveCommand: archiveCommand(c.layout.backups.configFile, c.config, dataDir),
    restoreCommand: restoreCommand(c.layout.backups.configFile, c.config, dataDir),
    ...(c.config.backups.replicaFromBackupMaxAgeHours > 0 ? { replicaCommand: `/bin/sh ${c.layout.backups.replicaScript(member)}` } : {}),
  };
}

/** pgbackrest.conf (it holds the repository's key) and the superuser's pgpass it connects with: PostgreSQL's user's, 0600. */
export function backupFiles(c: LocalCluster, secrets: ClusterSecrets, s3?: S3Credentials): LocalFile[] {
  if (!c.config.backups.enabled) return [];
  const { layout, topology, config } = c;
  const members = topology.postgres.map((m) => ({
    name: m.name,
    dataDir: layout.patroni(m.name).dataDir,
    socketDir: layout.patroni(m.name).socketDir,
    port: config.postgres.port,
  }));
  const esc = (v: string) => v.replace(/[\\:]/g, '\\$&');
  return [
    {
      file: layout.backups.configFile,
      content: renderPgbackrestConfig({
        config,
        files: layout.backups,
        members,
        ...(secrets.backupCipherPass ? { cipherPass: secrets.backupCipherPass } : {}),
        ...(s3 ? { s3 } : {}),
        superuser: USERS.superuser,
      }),
    },
    { file: layout.backups.pgpass, content: `*:*:*:${USERS.superuser}:${esc(secrets.superuserPassword)}\n` },
    // The scheduler's config: the one `up` resolved, so that it runs the schedule this cluster was started with.
    { file: layout.backups.schedulerConfigFile, content: `${JSON.stringify(config, null, 2)}\n`, processId: c.specs.scheduler.id },
  ]
    .map(
      (f): LocalFile => ({
        processId: 'pgbackrest',
        ...f,
        dir: layout.backups.dir,
        dirMode: 0o700,
        mode: 0o600,
        ...(c.pgOwner ? { owner: c.pgOwner } : {}),
        member: 'backups',
      }),
    )
    .concat(
      config.backups.replicaFromBackupMaxAgeHours > 0
        ? topology.postgres.map((m, i) => ({
            file: layout.backups.replicaScript(m.name),
            content: replicaFromBackupScript(
              layout.backups.configFile,
              config,
              layout.patroni(m.name).dataDir,
              layout.backups.newestFile,
              Math.round(config.backups.replicaFromBackupMaxAgeHours * 3600),
            ),
            dir: layout.backups.dir,
            dirMode: 0o700,
            mode: 0o700,
            ...(c.pgOwner ? { owner: c.pgOwner } : {}),
            member: m.name,
            processId: c.specs.patroni[i]!.id,
          }))
        : [],
    );
}
