// Prometheus for a GardenOS cluster: what to scrape (etcd over mutual TLS, Patroni's REST API over TLS,
// HAProxy's built-in exporter, the router, postgres-exporter, node-exporter), where to send alerts
// (Alertmanager), and GardenOS's alert rules — one for each failure the journal lived through and each
// problem `doctor` knows that metrics can show. Rendered the same for the local profile and the platform;
// `promtool check rules` and `promtool test rules` hold the rules to account.
import { stringify } from 'yaml';
import type { Config } from '../config/schema.ts';
import type { TlsFiles } from './files.ts';
import { hostPort, type Topology } from './topology.ts';
import { GENERATED } from './yaml.ts';

export interface PrometheusInput {
  config: Config;
  topology: Topology;
  /** Prometheus's client certificate for etcd, and the CA it trusts for etcd and Patroni. */
  tls: TlsFiles;
  rulesFile: string;
  /** HAProxy's stats password, for its /metrics (the same credentials as its stats page), in a 0600 file. */
  statsPasswordFile: string;
  /** The HAProxy and router addresses to scrape (local: the load balancer; the platform: each HAProxy host). */
  haproxy: string[];
  router: string[];
  /** On Kubernetes: every router pod, by the DNS name of a headless Service (one A record per pod), instead of `router`. */
  routerPods?: { dnsName: string };
  /** postgres-exporter's address (host:port) for each member. */
  postgresExporters: { member: string; target: string }[];
  /** node-exporter's addresses (host:port). */
  nodeExporters: string[];
  /** Alertmanager's addresses (host:port). */
  alertmanagers: string[];
}

const targets = (members: { name: string; address: string }[], port: number) =>
  members.map((m) => ({ targets: [hostPort(m.address, port)], labels: { member: m.name } }));

export function renderPrometheusConfig(i: PrometheusInput): string {
  const { config, topology } = i;
  const every = `${config.monitoring.scrapeIntervalSeconds}s`;
  const postgresEvery = Math.max(config.monitoring.scrapeIntervalSeconds, 5);
  const doc = {
    global: { scrape_interval: every, evaluation_interval: every, external_labels: { cluster: config.cluster.name } },
    rule_files: [i.rulesFile],
    alerting: { alertmanagers: [{ static_configs: [{ targets: i.alertmanagers }] }] },
    scrape_configs: [
      {
        job_name: 'etcd',
        scheme: 'https',
        tls_config: { ca_file: i.tls.ca, cert_file: i.tls.cert, key_file: i.tls.key },
        static_configs: targets(topology.etcd, config.etcd.clientPort),
      },
      { job_name: 'patroni', scheme: 'https', tls_config: { ca_file: i.tls.ca }, static_configs: targets(topology.postgres, config.postgres.patroniPort) },
      {
        job_name: 'haproxy',
        basic_auth: { username: config.haproxy.statsUser, password_file: i.statsPasswordFile },
        static_configs: [{ targets: i.haproxy.map((a) => hostPort(a, config.haproxy.ports.stats)) }],
      },
      i.routerPods
        ? { job_name: 'router', dns_sd_configs: [{ names: [i.routerPods.dnsName], type: 'A', port: config.router.port, refresh_interval: '30s' }] }
        : { job_name: 'router', static_configs: [{ targets: i.router.map((a) => hostPort(a, config.router.port)) }] },
      {
        job_name: 'postgres',
        // postgres-exporter answers a scrape of a stopped PostgreSQL with pg_up 0 only after about a
        // second: a shorter timeout would call the exporter down whenever its member is.
        scrape_interval: `${postgresEvery}s`,
        scrape_timeout: `${Math.min(postgresEvery, 10)}s`,
        static_configs: i.postgresExporters.map((e) => ({ targets: [e.target], labels: { member: e.member } })),
      },
      { job_name: 'node', static_configs: [{ targets: i.nodeExporters }] },
    ],
  };
  return `${GENERATED}\n${stringify(doc, { lineWidth: 0 })}`;
}

export interface AlertRule {
  alert: string;
  expr: string;
  for: string;
  labels: { severity: 'critical' | 'warning' };
  annotations: { summary: string; fix: string };
}

/**
 * The alert rules. `for` windows are short on purpose: each condition is already a failure (a member down,
 * no leader), and the windows ride out a scrape or a planned switchover, not an outage.
 */
export function alertRules(config: Config): AlertRule[] {
  const scope = `scope="${config.postgres.scope}"`;
  const rule: RuleFn = (alert, expr, forWindow, severity, summary, fix) => ({
    alert,
    expr,
    for: forWindow,
    labels: { severity },
    annotations: { summary, fix },
  });
  return [
    rule(
      'GardenOSEtcdMemberDown',
      'up{job="etcd"} == 0',
      '30s',
      'warning',
      'etcd member {{ $labels.member }} does not answer',
      "`gardenos local status` / `gardenos status`; the member's log says why (`gardenos local logs etcd-<member>`)",
    ),
    rule(
      'GardenOSEtcdQuorumAtRisk',
      'sum(up{job="etcd"}) <= floor(count(up{job="etcd"}) / 2) + 1 and sum(up{job="etcd"}) < count(up{job="etcd"})',
      '30s',
      'critical',
      'etcd has {{ $value }} members up: one more failure loses quorum, and Patroni then demotes the primary',
      'bring the down member back before anything else; do not restart another',
    ),
    rule(
      'GardenOSEtcdNoLeader',
      'etcd_server_has_leader == 0',
      '30s',
      'critical',
      'etcd member {{ $labels.member }} sees no leader',
      'check the network between the etcd members and their clocks; `gardenos doctor`',
    ),
    rule(
      'GardenOSPostgresMemberDown',
      `up{job="patroni"} == 0 or patroni_postgres_running{${scope}} == 0`,
      '30s',
      'critical',
      'PostgreSQL member {{ $labels.member }} is down (Patroni or PostgreSQL)',
      "`gardenos local status`; the member's log; `gardenos local db reinit <member>` if its data is broken",
    ),
    rule(
      'GardenOSNoLeader',
      `absent(patroni_primary{${scope}} == 1)`,
      '30s',
      'critical',
      'no PostgreSQL member is the leader: writes are refused',
      '`gardenos doctor` (stale DCS state, etcd health, Patroni logs)',
    ),
    ...(config.postgres.synchronousMode
      ? [
          rule(
            'GardenOSNoSyncStandby',
            `absent(patroni_sync_standby{${scope}} == 1)`,
            '1m',
            'warning',
            'no synchronous standby: a failover now could lose acknowledged writes, or writes wait',
            'bring a replica back (`gardenos local status` shows which is down or lagging)',
          ),
        ]
      : []),
    rule(
      'GardenOSReplicationLag',
      `((scalar(max(patroni_xlog_location{${scope}})) - patroni_xlog_replayed_location{${scope}}) and on(member) (patroni_replica{${scope}} == 1)) > ${config.monitoring.replicationLagAlertBytes}`,
      '1m',
      'warning',
      'replica {{ $labels.member }} is {{ $value | humanize1024 }}B behind the primary',
      'check its disk and network; the router stops sending reads to it past router.replicaMaxLagBytes',
    ),
    rule(
      'GardenOSPrimaryBackendDown',
      'haproxy_backend_active_servers{proxy="postgres-primary"} < 1',
      '30s',
      'critical',
      'HAProxy has no server up behind postgres-primary: clients cannot write',
      '`gardenos doctor` (is there a leader? does Patroni answer /primary?)',
    ),
    rule(
      'GardenOSRouterNotFollowingLeader',
      // Both carry the member's name in "member": Patroni's series from its scrape target, the router's from its own label.
      `(patroni_primary{${scope}} == 1) unless on(member) (gardenos_router_primary == 1)`,
      '30s',
      'critical',
      "Patroni's leader is {{ $labels.member }}, but the router does not route the primary to it",
      "the router's log and /status; `gardenos doctor` (primary-endpoint)",
    ),
    rule(
      'GardenOSCertificateExpiringSoon',
      'gardenos_certificate_expiry_timestamp_seconds - time() < 30 * 86400',
      '10m',
      'warning',
      'certificate {{ $labels.subject }} ({{ $labels.file }}) expires in {{ $value | humanizeDuration }}',
      'the platform: `gardenos pki --rotate <name>` (`ca` re-issues everything), then `gardenos up`; a local cluster: delete the expiring leaf and `gardenos local up` issues it again',
    ),
    rule(
      'GardenOSRouterDown',
      'up{job="router"} == 0',
      '1m',
      'critical',
      'the router does not answer: the primary route no longer follows the leader',
      'restart it (`gardenos local up` starts what is missing); its log says why it stopped',
    ),
    rule(
      'GardenOSExporterDown',
      'up{job=~"postgres|node"} == 0',
      '2m',
      'warning',
      '{{ $labels.job }}-exporter {{ $labels.instance }} does not answer: its metrics and the alerts on them are blind',
      'restart it (`gardenos local up` starts what is missing); its log says why it stopped',
    ),
    rule(
      'GardenOSVolumeFilling',
      `100 * node_filesystem_avail_bytes{fstype!~"tmpfs|ramfs"} / node_filesystem_size_bytes{fstype!~"tmpfs|ramfs"} < ${config.monitoring.diskFreeAlertPercent}`,
      '5m',
      'critical',
      'filesystem {{ $labels.mountpoint }} on {{ $labels.instance }} has {{ $value | printf "%.1f" }}% free: PostgreSQL stops when WAL cannot be written',
      'free space or grow the volume; look for WAL kept by a failing archive_command or an inactive replication slot (`gardenos doctor`)',
    ),
    ...(config.backups.enabled ? backupRules(config, rule) : []),
    ...(config.pooler.enabled ? poolerRules(rule) : []),
  ];
}

/** With the pooler: what the router reads from PgBouncer's admin console. */
function poolerRules(rule: RuleFn): AlertRule[] {
  return [
    rule(
      'GardenOSPoolerDown',
      'gardenos_pooler_up == 0',
      '1m',
      'critical',
      "PgBouncer's admin console does not answer: clients of the pooled endpoint cannot connect",
      '`gardenos local up` starts it; `gardenos local logs pooler` says why it stopped',
    ),
    rule(
      'GardenOSPoolerPaused',
      'max by (database) (gardenos_pooler_paused) == 1',
      '30s',
      'critical',
      'the pooler has held {{ $labels.database }} paused for 30 s: its clients wait (a switchover pauses it for a moment, never this long)',
      '`gardenos local up` resumes a pooler left paused',
    ),
    rule(
      'GardenOSPoolerClientsWaiting',
      'max by (database) (gardenos_pooler_max_wait_seconds) > 5',
      '1m',
      'warning',
      'clients of {{ $labels.database }} wait {{ $value | humanizeDuration }} for a server connection',
      'raise pooler.defaultPoolSize, or find the transactions that hold the connections (`gardenos local doctor`)',
    ),
  ];
}

type RuleFn = (alert: string, expr: string, forWindow: string, severity: 'critical' | 'warning', summary: string, fix: string) => AlertRule;

/** With backups on: WAL archiving (postgres-exporter's pg_stat_archiver) and the backup scheduler's metrics file. */
function backupRules(config: Config, rule: RuleFn): AlertRule[] {
  const m = config.monitoring;
  return [
    rule(
      'GardenOSWalArchivingFailing',
      'increase(pg_stat_archiver_failed_count[5m]) > 0 and increase(pg_stat_archiver_archived_count[5m]) == 0',
      '1m',
      'critical',
      'WAL archiving fails on {{ $labels.member }}: the primary keeps every segment until it succeeds, so its disk fills, and point-in-time recovery stops at the last archived segment',
      "pgBackRest's log says why (repository full or unwritable, wrong key); `gardenos local status` shows the failing segment",
    ),
    rule(
      'GardenOSBackupTooOld',
      `time() - max(gardenos_backup_last_success_timestamp_seconds) > ${m.backupAlertAfterHours * 3600}`,
      '10m',
      'critical',
      'the newest backup is {{ $value | humanizeDuration }} old',
      "take one now (`gardenos local db backup`); the scheduler's log says why the scheduled ones did not run",
    ),
    rule(
      'GardenOSRestoreTestTooOld',
      `time() - gardenos_backup_untested_since_timestamp_seconds > ${m.restoreTestAlertAfterDays * 86400}`,
      '10m',
      'warning',
      'no backup has been restored successfully for {{ $value | humanizeDuration }}: nobody knows whether they restore',
      '`gardenos local db backup verify`',
    ),
    rule(
      'GardenOSRestoreTestFailed',
      'gardenos_backup_last_restore_test_success == 0',
      '0s',
      'critical',
      'the last restore test failed: the newest backup may not restore',
      '`gardenos local db backup verify` says which check failed; take a new full backup (`gardenos local db backup --type full`)',
    ),
    rule(
      'GardenOSScheduledBackupFailed',
      'gardenos_backup_scheduled_run_failed == 1',
      '0s',
      'warning',
      'the last scheduled {{ $labels.kind }} run failed',
      '`gardenos local status` shows its error; `gardenos local logs backup-scheduler`',
    ),
    rule(
      'GardenOSBackupSchedulerSilent',
      'time() - gardenos_backup_metrics_timestamp_seconds > 600 or absent(gardenos_backup_metrics_timestamp_seconds)',
      '5m',
      'critical',
      'the backup scheduler has not reported for 10 minutes: scheduled backups are not being taken',
      '`gardenos local up` starts it; `gardenos local logs backup-scheduler` says why it stopped',
    ),
  ];
}

export function renderAlertRules(config: Config): string {
  return `${GENERATED}\n${stringify({ groups: [{ name: 'gardenos', rules: alertRules(config) }] }, { lineWidth: 0 })}`;
}

/** Alertmanager: every alert to one receiver, grouped per alert and member; forwarded to a webhook when one is set. */
export function renderAlertmanagerConfig(config: Config): string {
  const webhook = config.monitoring.alertmanager.webhookUrl;
  const doc = {
    route: { receiver: 'gardenos', group_by: ['alertname', 'cluster', 'member'], group_wait: '10s', group_interval: '1m', repeat_interval: '4h' },
    receivers: [{ name: 'gardenos', ...(webhook ? { webhook_configs: [{ url: webhook, send_resolved: true }] } : {}) }],
    // While quorum is at risk, the member that is down is the same news.
    inhibit_rules: [{ source_matchers: ['alertname="GardenOSEtcdQuorumAtRisk"'], target_matchers: ['alertname="GardenOSEtcdMemberDown"'], equal: ['cluster'] }],
  };
  return `${GENERATED}\n${stringify(doc, { lineWidth: 0 })}`;
}
