// GardenOS's alert rules held to account by Prometheus's own tools: `promtool check rules` accepts the
// rendered file, and `promtool test rules` plays series through each rule — the failure it names fires
// with its labels and text, and a healthy cluster fires nothing.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { parseConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { alertRules, renderAlertRules } from '../../src/render/prometheus.ts';

const run = promisify(execFile);
const S = 'scope="gardenos"';

/** The rule's annotations as Prometheus expands them for one alert (the templates these rules use). */
function expanded(config: Config, alert: string, labels: Record<string, string>, value: string): Record<string, string> {
  const r = alertRules(config).find((x) => x.alert === alert)!;
  const fill = (t: string) =>
    t.replace(/\{\{ \$labels\.(\w+) \}\}/g, (_, name: string) => labels[name] ?? '').replace(/\{\{ \$value(?: \| [^}]+)? \}\}/g, value);
  return { summary: fill(r.annotations.summary), fix: fill(r.annotations.fix) };
}

/** node-exporter's root filesystem with `freePercent` free, and the exporter up, for `samples` samples. */
function nodeSeries(freePercent: number, samples: number) {
  const fs = 'job="node", instance="lb:9100", device="/dev/vda", fstype="ext4", mountpoint="/"';
  return [
    { series: 'up{job="node", instance="lb:9100"}', values: `1x${samples}` },
    { series: `node_filesystem_avail_bytes{${fs}}`, values: `${freePercent}x${samples}` },
    { series: `node_filesystem_size_bytes{${fs}}`, values: `100x${samples}` },
  ];
}

/** The backup scheduler's metrics file as node-exporter serves it, fresh: every sample written at its own time. */
function backupSeries(interval: '5s', samples: number) {
  const l = 'job="node", instance="lb:9100"';
  return [
    { series: `gardenos_backup_metrics_timestamp_seconds{${l}}`, values: `0+${parseInt(interval, 10)}x${samples}` },
    { series: `gardenos_backup_last_success_timestamp_seconds{${l}, type="full"}`, values: `0x${samples}` },
    { series: `gardenos_backup_untested_since_timestamp_seconds{${l}}`, values: `0x${samples}` },
    { series: `gardenos_backup_last_restore_test_success{${l}}`, values: `1x${samples}` },
    { series: `gardenos_backup_scheduled_run_failed{${l}, kind="full"}`, values: `0x${samples}` },
  ];
}

describe('alert rules, checked and tested by promtool', () => {
  let dir: string;
  let config: Config;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gardenos-rules-'));
    config = parseConfig(
      `${(await readFile(new URL('../../examples/gardenos.yaml', import.meta.url), 'utf8')).replace('backups:\n  enabled: false', 'backups:\n  enabled: true').replace('pooler:\n  enabled: false', 'pooler:\n  enabled: true')}\nmonitoring: { enabled: true, replicationLagAlertBytes: 67108864 }\n`,
    );
    await writeFile(join(dir, 'rules.yml'), renderAlertRules(config));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('promtool check rules accepts the rendered file', async () => {
    const { stdout } = await run('promtool', ['check', 'rules', join(dir, 'rules.yml')]);
    assert.match(stdout, new RegExp(`SUCCESS: ${alertRules(config).length} rules found`));
  });

  it('promtool check rules refuses a broken rule (the check can fail)', async () => {
    await writeFile(join(dir, 'broken.yml'), renderAlertRules(config).replace('etcd_server_has_leader == 0', 'etcd_server_has_leader ==== 0'));
    await assert.rejects(run('promtool', ['check', 'rules', join(dir, 'broken.yml')]), /parse error/);
  });

  it('fires each alert on the failure it names, with its labels and text, and nothing on a healthy cluster', async () => {
    const member = (name: string, job: string) => `job="${job}", member="${name}", instance="${name}:1"`;
    const healthy = [
      ...['n1', 'n2', 'n3'].flatMap((m) => [
        { series: `up{${member(m, 'etcd')}}`, values: '1x40' },
        { series: `etcd_server_has_leader{${member(m, 'etcd')}}`, values: '1x40' },
        { series: `up{${member(m, 'patroni')}}`, values: '1x40' },
        { series: `patroni_postgres_running{${S}, name="${m}", ${member(m, 'patroni')}}`, values: '1x40' },
      ]),
      { series: `patroni_primary{${S}, name="n1", ${member('n1', 'patroni')}}`, values: '1x40' },
      { series: `patroni_primary{${S}, name="n2", ${member('n2', 'patroni')}}`, values: '0x40' },
      { series: `patroni_sync_standby{${S}, name="n2", ${member('n2', 'patroni')}}`, values: '1x40' },
      { series: `patroni_replica{${S}, name="n2", ${member('n2', 'patroni')}}`, values: '1x40' },
      { series: `patroni_xlog_location{${S}, name="n1", ${member('n1', 'patroni')}}`, values: '1000000x40' },
      { series: `patroni_xlog_replayed_location{${S}, name="n2", ${member('n2', 'patroni')}}`, values: '999000x40' },
      { series: 'haproxy_backend_active_servers{job="haproxy", instance="lb:8404", proxy="postgres-primary"}', values: '1x40' },
      { series: 'up{job="router", instance="lb:8405"}', values: '1x40' },
      { series: 'gardenos_router_primary{job="router", instance="lb:8405", member="n1"}', values: '1x40' },
      {
        series: 'gardenos_certificate_expiry_timestamp_seconds{job="router", instance="lb:8405", file="/pki/ca.crt", subject="CN=ca"}',
        values: '1000000000x40',
      },
      ...['n1', 'n2', 'n3'].map((m) => ({ series: `up{job="postgres", member="${m}", instance="lb:918${m.slice(1)}"}`, values: '1x40' })),
      { series: 'pg_stat_archiver_archived_count{job="postgres", member="n1", instance="lb:9181"}', values: '0+1x40' },
      { series: 'pg_stat_archiver_failed_count{job="postgres", member="n1", instance="lb:9181"}', values: '0x40' },
      ...nodeSeries(50, 40),
      ...backupSeries('5s', 40),
      { series: 'gardenos_pooler_up{job="router", instance="lb:8405"}', values: '1x40' },
      { series: 'gardenos_pooler_paused{job="router", instance="lb:8405", database="app"}', values: '0 1 0x38' },
      { series: 'gardenos_pooler_max_wait_seconds{job="router", instance="lb:8405", database="app"}', values: '0 2 0x38' },
    ];
    const at = '3m';
    const tests = [
      // A healthy cluster: no alert at all.
      { interval: '5s', input_series: healthy, alert_rule_test: alertRules(config).map((r) => ({ eval_time: at, alertname: r.alert, exp_alerts: [] })) },
      // One etcd member down: it is named, and quorum is at risk.
      {
        interval: '5s',
        input_series: healthy.map((s) => (s.series === `up{${member('n3', 'etcd')}}` ? { ...s, values: '1 0x39' } : s)),
        alert_rule_test: [
          {
            eval_time: at,
            alertname: 'GardenOSEtcdMemberDown',
            exp_alerts: [
              {
                exp_labels: { severity: 'warning', job: 'etcd', member: 'n3', instance: 'n3:1' },
                exp_annotations: expanded(config, 'GardenOSEtcdMemberDown', { member: 'n3' }, ''),
              },
            ],
          },
          {
            eval_time: at,
            alertname: 'GardenOSEtcdQuorumAtRisk',
            exp_alerts: [{ exp_labels: { severity: 'critical' }, exp_annotations: expanded(config, 'GardenOSEtcdQuorumAtRisk', {}, '2') }],
          },
        ],
      },
      // etcd without a leader.
      {
        interval: '5s',
        input_series: healthy.map((s) => (s.series === `etcd_server_has_leader{${member('n2', 'etcd')}}` ? { ...s, values: '1 0x39' } : s)),
        alert_rule_test: [
          {
            eval_time: at,
            alertname: 'GardenOSEtcdNoLeader',
            exp_alerts: [
              {
                exp_labels: { severity: 'critical', job: 'etcd', member: 'n2', instance: 'n2:1' },
                exp_annotations: expanded(config, 'GardenOSEtcdNoLeader', { member: 'n2' }, ''),
              },
            ],
          },
        ],
      },
      // A PostgreSQL member's Patroni stops answering.
      {
        interval: '5s',
        input_series: healthy.map((s) => (s.series === `up{${member('n3', 'patroni')}}` ? { ...s, values: '1 0x39' } : s)),
        alert_rule_test: [
          {
            eval_time: at,
            alertname: 'GardenOSPostgresMemberDown',
            exp_alerts: [
              {
                exp_labels: { severity: 'critical', job: 'patroni', member: 'n3', instance: 'n3:1' },
                exp_annotations: expanded(config, 'GardenOSPostgresMemberDown', { member: 'n3' }, ''),
              },
            ],
          },
        ],
      },
      // No leader, no synchronous standby, no primary behind HAProxy, and the router points at a member that is not the leader.
      {
        interval: '5s',
        input_series: healthy.map((s) =>
          s.series.startsWith('patroni_primary{') || s.series.startsWith('patroni_sync_standby{') || s.series.startsWith('haproxy_backend_active_servers{')
            ? { ...s, values: '1 0x39' }
            : s,
        ),
        alert_rule_test: [
          {
            eval_time: at,
            alertname: 'GardenOSNoLeader',
            exp_alerts: [{ exp_labels: { severity: 'critical' }, exp_annotations: expanded(config, 'GardenOSNoLeader', {}, '') }],
          },
          {
            eval_time: at,
            alertname: 'GardenOSNoSyncStandby',
            exp_alerts: [{ exp_labels: { severity: 'warning' }, exp_annotations: expanded(config, 'GardenOSNoSyncStandby', {}, '') }],
          },
          {
            eval_time: at,
            alertname: 'GardenOSPrimaryBackendDown',
            exp_alerts: [
              {
                exp_labels: { severity: 'critical', job: 'haproxy', instance: 'lb:8404', proxy: 'postgres-primary' },
                exp_annotations: expanded(config, 'GardenOSPrimaryBackendDown', {}, ''),
              },
            ],
          },
        ],
      },
      // The leader moved to n2; the router still routes to n1.
      {
        interval: '5s',
        input_series: healthy.map((s) => (s.series.startsWith('patroni_primary{') ? { ...s, values: s.series.includes('"n1"') ? '1 0x39' : '0 1x39' } : s)),
        alert_rule_test: [
          {
            eval_time: at,
            alertname: 'GardenOSRouterNotFollowingLeader',
            exp_alerts: [
              {
                exp_labels: { severity: 'critical', scope: 'gardenos', name: 'n2', job: 'patroni', member: 'n2', instance: 'n2:1' },
                exp_annotations: expanded(config, 'GardenOSRouterNotFollowingLeader', { member: 'n2' }, ''),
              },
            ],
          },
        ],
      },
      // A certificate that expires in ten days (at the evaluation, time() is 900 s after the epoch).
      {
        interval: '1m',
        input_series: [
          {
            series: 'gardenos_certificate_expiry_timestamp_seconds{job="router", instance="lb:8405", file="/pki/etcd-n1.crt", subject="CN=n1"}',
            values: `${10 * 86400 + 900}x20`,
          },
        ],
        alert_rule_test: [
          {
            eval_time: '15m',
            alertname: 'GardenOSCertificateExpiringSoon',
            exp_alerts: [
              {
                exp_labels: { severity: 'warning', job: 'router', instance: 'lb:8405', file: '/pki/etcd-n1.crt', subject: 'CN=n1' },
                exp_annotations: expanded(config, 'GardenOSCertificateExpiringSoon', { subject: 'CN=n1', file: '/pki/etcd-n1.crt' }, '10d 0h 0m 0s'),
              },
            ],
          },
        ],
      },
      // A replica 100 MiB behind; the router down.
      {
        interval: '5s',
        input_series: healthy.map((s) => {
          if (s.series.startsWith('patroni_xlog_location{')) return { ...s, values: '1000000+0x10 105857600+0x29' };
          if (s.series === 'up{job="router", instance="lb:8405"}') return { ...s, values: '1 0x39' };
          return s;
        }),
        alert_rule_test: [
          {
            eval_time: at,
            alertname: 'GardenOSReplicationLag',
            exp_alerts: [
              {
                exp_labels: { severity: 'warning', scope: 'gardenos', name: 'n2', job: 'patroni', member: 'n2', instance: 'n2:1' },
                exp_annotations: expanded(config, 'GardenOSReplicationLag', { member: 'n2' }, '100Mi'),
              },
            ],
          },
          {
            eval_time: at,
            alertname: 'GardenOSRouterDown',
            exp_alerts: [
              { exp_labels: { severity: 'critical', job: 'router', instance: 'lb:8405' }, exp_annotations: expanded(config, 'GardenOSRouterDown', {}, '') },
            ],
          },
        ],
      },
      // An exporter stops answering; WAL archiving fails on the primary and nothing is archived any more.
      {
        interval: '5s',
        input_series: healthy.map((s) => {
          if (s.series === 'up{job="node", instance="lb:9100"}') return { ...s, values: '1 0x39' };
          if (s.series.startsWith('pg_stat_archiver_archived_count{')) return { ...s, values: '5x40' };
          if (s.series.startsWith('pg_stat_archiver_failed_count{')) return { ...s, values: '0+1x40' };
          return s;
        }),
        alert_rule_test: [
          {
            eval_time: at,
            alertname: 'GardenOSExporterDown',
            exp_alerts: [
              {
                exp_labels: { severity: 'warning', job: 'node', instance: 'lb:9100' },
                exp_annotations: expanded(config, 'GardenOSExporterDown', { job: 'node', instance: 'lb:9100' }, ''),
              },
            ],
          },
          {
            eval_time: at,
            alertname: 'GardenOSWalArchivingFailing',
            exp_alerts: [
              {
                exp_labels: { severity: 'critical', job: 'postgres', member: 'n1', instance: 'lb:9181' },
                exp_annotations: expanded(config, 'GardenOSWalArchivingFailing', { member: 'n1' }, ''),
              },
            ],
          },
        ],
      },
      // The pooler: down; paused for good; clients waiting 12 s for a server connection. (The healthy series
      // pause it for one sample, as a switchover does, and that fires nothing.)
      {
        interval: '5s',
        input_series: [
          { series: 'gardenos_pooler_up{job="router", instance="lb:8405"}', values: '1 0x39' },
          { series: 'gardenos_pooler_paused{job="router", instance="lb:8405", database="app"}', values: '0 1x39' },
          { series: 'gardenos_pooler_max_wait_seconds{job="router", instance="lb:8405", database="app"}', values: '0 12x39' },
        ],
        alert_rule_test: [
          {
            eval_time: at,
            alertname: 'GardenOSPoolerDown',
            exp_alerts: [
              { exp_labels: { severity: 'critical', job: 'router', instance: 'lb:8405' }, exp_annotations: expanded(config, 'GardenOSPoolerDown', {}, '') },
            ],
          },
          {
            eval_time: at,
            alertname: 'GardenOSPoolerPaused',
            exp_alerts: [
              { exp_labels: { severity: 'critical', database: 'app' }, exp_annotations: expanded(config, 'GardenOSPoolerPaused', { database: 'app' }, '') },
            ],
          },
          {
            eval_time: at,
            alertname: 'GardenOSPoolerClientsWaiting',
            exp_alerts: [
              {
                exp_labels: { severity: 'warning', database: 'app' },
                exp_annotations: expanded(config, 'GardenOSPoolerClientsWaiting', { database: 'app' }, '12s'),
              },
            ],
          },
        ],
      },
      // Sixteen minutes in (time() is 960): a volume with 5% free; the newest backup 100,000 s older than the
      // test's start, nothing restore-tested for nine days, the last restore test and the last scheduled diff
      // failed, and the scheduler's metrics file not rewritten since the start.
      {
        interval: '1m',
        input_series: [
          ...nodeSeries(5, 20),
          { series: 'gardenos_backup_metrics_timestamp_seconds{job="node", instance="lb:9100"}', values: '0x20' },
          { series: 'gardenos_backup_last_success_timestamp_seconds{job="node", instance="lb:9100", type="full"}', values: '-200000x20' },
          { series: 'gardenos_backup_last_success_timestamp_seconds{job="node", instance="lb:9100", type="diff"}', values: '-100000x20' },
          { series: 'gardenos_backup_untested_since_timestamp_seconds{job="node", instance="lb:9100"}', values: `${-9 * 86400}x20` },
          { series: 'gardenos_backup_last_restore_test_success{job="node", instance="lb:9100"}', values: '0x20' },
          { series: 'gardenos_backup_scheduled_run_failed{job="node", instance="lb:9100", kind="diff"}', values: '1x20' },
          { series: 'gardenos_backup_scheduled_run_failed{job="node", instance="lb:9100", kind="full"}', values: '0x20' },
        ],
        alert_rule_test: [
          {
            eval_time: '16m',
            alertname: 'GardenOSVolumeFilling',
            exp_alerts: [
              {
                exp_labels: { severity: 'critical', job: 'node', instance: 'lb:9100', device: '/dev/vda', fstype: 'ext4', mountpoint: '/' },
                exp_annotations: expanded(config, 'GardenOSVolumeFilling', { mountpoint: '/', instance: 'lb:9100' }, '5.0'),
              },
            ],
          },
          {
            eval_time: '16m',
            alertname: 'GardenOSBackupTooOld',
            exp_alerts: [{ exp_labels: { severity: 'critical' }, exp_annotations: expanded(config, 'GardenOSBackupTooOld', {}, '1d 4h 2m 40s') }],
          },
          {
            eval_time: '16m',
            alertname: 'GardenOSRestoreTestTooOld',
            exp_alerts: [
              {
                exp_labels: { severity: 'warning', job: 'node', instance: 'lb:9100' },
                exp_annotations: expanded(config, 'GardenOSRestoreTestTooOld', {}, '9d 0h 16m 0s'),
              },
            ],
          },
          {
            eval_time: '16m',
            alertname: 'GardenOSRestoreTestFailed',
            exp_alerts: [
              {
                exp_labels: { severity: 'critical', job: 'node', instance: 'lb:9100' },
                exp_annotations: expanded(config, 'GardenOSRestoreTestFailed', {}, ''),
              },
            ],
          },
          {
            eval_time: '16m',
            alertname: 'GardenOSScheduledBackupFailed',
            exp_alerts: [
              {
                exp_labels: { severity: 'warning', job: 'node', instance: 'lb:9100', kind: 'diff' },
                exp_annotations: expanded(config, 'GardenOSScheduledBackupFailed', { kind: 'diff' }, ''),
              },
            ],
          },
          {
            eval_time: '16m',
            alertname: 'GardenOSBackupSchedulerSilent',
            exp_alerts: [
              {
                exp_labels: { severity: 'critical', job: 'node', instance: 'lb:9100' },
                exp_annotations: expanded(config, 'GardenOSBackupSchedulerSilent', {}, ''),
              },
            ],
          },
        ],
      },
    ];
    await writeFile(join(dir, 'tests.yml'), stringify({ rule_files: ['rules.yml'], evaluation_interval: '5s', tests }, { lineWidth: 0 }));
    const r = await run('promtool', ['test', 'rules', join(dir, 'tests.yml')]).catch((e: { stdout?: string; stderr?: string }) => {
      throw new Error(`promtool test rules failed:\n${e.stdout}\n${e.stderr}`);
    });
    assert.match(r.stdout, /SUCCESS/);
  });
});
