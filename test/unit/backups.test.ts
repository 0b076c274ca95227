// Backups' pure parts: pgBackRest's rendered config and the commands Patroni gets, recovery targets as
// people write them, and which backup a point in time restores from (or why none can).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { readS3Credentials } from '../../src/config/credentials.ts';
import { parseConfig, validateConfig } from '../../src/config/load.ts';
import { GardenError } from '../../src/errors.ts';
import { nextRuns } from '../../src/local/backups.ts';
import { backupProblems } from '../../src/platform/status.ts';
import {
  archiveErrorIn,
  archiverState,
  archivingProblem,
  backupFor,
  compareLsn,
  parseTarget,
  recoverySettings,
  targetOptions,
  type BackupInfo,
  type RepositoryInfo,
} from '../../src/ops/pgbackrest.ts';
import { RESTORE_METHOD, renderPatroniConfig } from '../../src/render/patroni.ts';
import { archiveCommand, renderPgbackrestConfig, replicaFromBackupScript, restoreCommand } from '../../src/render/pgbackrest.ts';
import { productionTopology } from '../../src/render/topology.ts';
import { replicaFromBackupPy } from '../../src/render/kube/backups.ts';
import { createCa, issue } from '../../src/pki/certs.ts';
import { exampleConfig, patroniFiles, SECRETS } from '../helpers/fixtures.ts';

const config = exampleConfig();
const files = {
  configFile: '/etc/pgbackrest/pgbackrest.conf',
  repoPath: '/var/lib/pgbackrest',
  logDir: '/var/log/pgbackrest',
  lockDir: '/run/pgbackrest',
  spoolDir: '/var/spool/pgbackrest',
};
const members = ['pg1', 'pg2', 'pg3'].map((name) => ({ name, dataDir: `/srv/${name}/data`, socketDir: `/srv/${name}/run`, port: 5432 }));

const backup = (label: string, stoppedAt: string, stopLsn: string, extra: Partial<BackupInfo> = {}): BackupInfo => ({
  label,
  type: 'full',
  prior: null,
  startedAt: stoppedAt,
  stoppedAt,
  stopLsn,
  sizeBytes: 1,
  repositoryBytes: 1,
  error: false,
  ...extra,
});
const repo = (backups: BackupInfo[]): RepositoryInfo => ({ stanza: 's', status: 'ok', backups, archive: { min: null, max: null } });

describe('backups', () => {
  it('pgbackrest.conf: encrypted repository, retention, a standby as the source, every member as a pg host', () => {
    const text = renderPgbackrestConfig({ config, files, members, cipherPass: 'k3y', superuser: 'postgres' });
    assert.match(text, /^repo1-cipher-type=aes-256-cbc$/m);
    assert.match(text, /^repo1-cipher-pass=k3y$/m);
    assert.match(text, /^repo1-retention-full=2$/m);
    assert.match(text, /^backup-standby=y$/m);
    assert.match(text, new RegExp(`^\\[${config.postgres.scope}\\]$`, 'm'));
    for (const [i, m] of members.entries()) assert.match(text, new RegExp(`^pg${i + 1}-path=${m.dataDir}$`, 'm'));
    assert.throws(() => renderPgbackrestConfig({ config, files, members, superuser: 'postgres' }), /cipher passphrase/);
    const plain = renderPgbackrestConfig({ config: { ...config, backups: { ...config.backups, encryption: 'none' } }, files, members, superuser: 'postgres' });
    assert.doesNotMatch(plain, /cipher/);
  });

  it('an S3 repository: the bucket over TLS, the path as its prefix, the key from a file only its owner reads; an address as endpoint is refused', async () => {
    // The local profile's file: no nodes.
    const yaml =
      'cluster: { name: garden }\nbackups:\n  enabled: true\n  repository: { s3: { endpoint: "s3.example.net:8333", bucket: garden-backups, uriStyle: path, caFile: /etc/gardenos/s3-ca.crt, credentialsFile: /etc/gardenos/s3.json } }\n';
    const platformYaml = readFileSync(new URL('../../examples/gardenos.yaml', import.meta.url), 'utf8').replace(
      'backups:\n  enabled: false\n',
      'backups:\n  enabled: true\n  repository: { s3: { endpoint: "s3.example.net", bucket: garden-backups, credentialsFile: /etc/gardenos/s3.json } }\n',
    );
    const local = parseConfig(yaml);
    const text = renderPgbackrestConfig({
      config: local,
      files,
      members,
      cipherPass: 'k3y',
      s3: { accessKeyId: 'AK1', secretAccessKey: 'SK1' },
      superuser: 'postgres',
    });
    for (const line of [
      'repo1-type=s3',
      `repo1-path=/${local.cluster.name}`,
      'repo1-s3-endpoint=s3.example.net',
      'repo1-storage-port=8333',
      'repo1-s3-bucket=garden-backups',
      'repo1-s3-uri-style=path',
      'repo1-storage-ca-file=/etc/gardenos/s3-ca.crt',
      'repo1-s3-key=AK1',
      'repo1-s3-key-secret=SK1',
    ])
      assert.ok(text.split('\n').includes(line), `${line} in ${text}`);
    assert.throws(() => renderPgbackrestConfig({ config: local, files, members, cipherPass: 'k3y', superuser: 'postgres' }), /S3 access key/);
    // pgBackRest checks the endpoint's certificate by DNS name only.
    const problems = (y: string) => {
      try {
        parseConfig(y);
        return [];
      } catch (e) {
        return (e as GardenError).details;
      }
    };
    assert.ok(problems(yaml.replace('s3.example.net:8333', '10.0.0.5:8333')).some((d) => /s3\.endpoint: .*is an address/.test(d)));
    assert.deepEqual(problems(platformYaml), [], 'the platform takes an S3 repository too (its repository pod stores into it)');

    const dir = await mkdtemp(join(tmpdir(), 'gardenos-s3-key-'));
    try {
      const f = join(dir, 's3.json');
      await assert.rejects(readS3Credentials(f), /no such file/);
      await writeFile(f, JSON.stringify({ accessKeyId: 'AK1', secretAccessKey: 'SK1' }), { mode: 0o644 });
      await assert.rejects(readS3Credentials(f), (e: GardenError) => /can be read by others \(mode 644\)/.test(e.message) && /chmod 600/.test(e.hint ?? ''));
      await chmod(f, 0o600);
      assert.deepEqual(await readS3Credentials(f), { accessKeyId: 'AK1', secretAccessKey: 'SK1' });
      await writeFile(f, JSON.stringify({ accessKeyId: 'AK1', secretAccessKey: '' }), { mode: 0o600 });
      await assert.rejects(
        readS3Credentials(f),
        (e: GardenError) => e.details.some((d) => /secretAccessKey: is empty/.test(d)) && !e.details.join().includes('AK1'),
      );
      await writeFile(f, 'not json', { mode: 0o600 });
      await assert.rejects(readS3Credentials(f), /is not JSON/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('status names why archiving fails: pgBackRest\'s error just before PostgreSQL\'s "archive command failed", its hints dropped, an older one not taken for it', () => {
    const log = [
      'ERROR: [104]: archive-push command encountered error(s): an old one',
      '2026-12-01 08:00:00.000 UTC [40] LOG:  archive command failed with exit code 104',
      ...Array.from({ length: 50 }, (_, i) => `2026-12-01 08:00:${String(i).padStart(2, '0')},000 INFO: no action. I am (sts-0), the leader with the lock`),
      'ERROR: [039]: HTTP request failed with 503 (Service Unavailable):',
      '       *** Path/Query ***:',
      'HINT: is the repository host running?',
      '2026-12-01 08:01:00.000 UTC [40] LOG:  archive command failed with exit code 39',
      '2026-12-01 08:01:00.000 UTC [40] DETAIL:  The failed archive command was: pgbackrest … archive-push "pg_wal/000000030000000000000009"',
    ];
    assert.equal(archiveErrorIn(log), 'ERROR: [039]: HTTP request failed with 503 (Service Unavailable): *** Path/Query ***:');
    // Its own error must be just before it: one 50 lines up is another failure's.
    assert.equal(archiveErrorIn(log.slice(0, 52)), 'ERROR: [104]: archive-push command encountered error(s): an old one');
    assert.equal(archiveErrorIn([log[0]!, ...log.slice(2, 52), log[55]!]), undefined);
    const t = (s: string) => new Date(`2026-12-01T${s}Z`);
    const row = { archived: '000000030000000000000008', archivedAt: t('08:00:00'), failed: '000000030000000000000009', failedAt: t('08:01:00') };
    assert.deepEqual(archiverState(row, 'ERROR: [039]: …'), {
      failing: true,
      lastArchivedWal: '000000030000000000000008',
      lastFailedWal: '000000030000000000000009',
      lastFailedAt: '2026-12-01T08:01:00.000Z',
      reason: 'ERROR: [039]: …',
    });
    // A success after the failure: no longer failing, and no reason carried.
    assert.deepEqual(archiverState({ ...row, archivedAt: t('08:02:00') }, 'ERROR: [039]: …').failing, false);
    assert.equal('reason' in archiverState({ ...row, archivedAt: t('08:02:00') }, 'x'), false);
    assert.equal(archiverState({ archived: null, archivedAt: null, failed: null, failedAt: null }, undefined).failing, false);
    assert.match(
      archivingProblem(archiverState(row, 'ERROR: [039]: x'), ' on sts-0', 'see its log'),
      /^WAL archiving is failing on sts-0 \(segment 000000030000000000000009, .*\): ERROR: \[039\]: x; .*see its log$/,
    );
  });

  it("the platform's status judges its backups: the newest too old, a failed or old restore test, an unreadable repository", () => {
    const now = Date.parse('2026-12-01T12:00:00Z');
    const ok = {
      reachable: true,
      newest: { label: '20261201-020000F', type: 'full', stoppedAt: '2026-12-01T02:00:00Z', ageHours: 10 },
      archivedTo: '000000040000000000000010',
      lastVerify: { ok: true, label: '20261201-020000F', at: '2026-12-01T02:01:00Z' },
    };
    assert.deepEqual(backupProblems(ok, config, now), []);
    assert.match(backupProblems({ ...ok, newest: { ...ok.newest, ageHours: 30 } }, config, now)[0]!, /is 30 h old \(more than 26 h\)/);
    assert.match(
      backupProblems({ ...ok, lastVerify: { ok: false, label: 'L', at: ok.lastVerify.at, error: 'pg_amcheck found corruption' } }, config, now)[0]!,
      /restore test, of L, failed: pg_amcheck found corruption/,
    );
    assert.match(backupProblems({ ...ok, lastVerify: { ...ok.lastVerify, at: '2026-11-20T00:00:00Z' } }, config, now)[0]!, /more than 8 days old/);
    assert.match(backupProblems({ ...ok, reachable: false, error: 'pod not found' }, config, now)[0]!, /cannot be read: pod not found/);
    // A platform whose first backup is still to come (up takes it) is not a problem: there is nothing to be late yet.
    assert.deepEqual(backupProblems({ ...ok, newest: null, lastVerify: null }, config, now), []);
  });

  it('Patroni: archive_mode and the archive/restore commands on each member; a restore names its bootstrap method', () => {
    const topology = productionTopology(config);
    const archive = {
      archiveCommand: archiveCommand(files.configFile, config, '/srv/pg1/data'),
      restoreCommand: restoreCommand(files.configFile, config, '/srv/pg1/data'),
    };
    assert.equal(
      archive.archiveCommand,
      `pgbackrest --config=${files.configFile} --stanza=${config.postgres.scope} --pg1-path=/srv/pg1/data archive-push "%p"`,
    );
    const input = { config, topology, member: topology.postgres[0]!, files: patroniFiles('/srv', topology.postgres[0]!.name), secrets: SECRETS };
    const p = parse(renderPatroniConfig({ ...input, archive })) as {
      postgresql: { parameters: Record<string, string>; recovery_conf: Record<string, string> };
      bootstrap: Record<string, unknown>;
    };
    assert.equal(p.postgresql.parameters.archive_mode, 'on');
    assert.equal(p.postgresql.parameters.archive_command, archive.archiveCommand);
    assert.equal(p.postgresql.recovery_conf.restore_command, archive.restoreCommand);
    assert.equal(p.bootstrap.method, undefined, 'initdb unless restoring');
    const plain = parse(renderPatroniConfig(input)) as { postgresql: { parameters: Record<string, string> } };
    assert.equal(plain.postgresql.parameters.archive_mode, undefined, 'no archiving without backups');
    const recoveryConf = recoverySettings(parseTarget('2026-11-30T09:00:00Z'), archive.restoreCommand);
    const r = parse(renderPatroniConfig({ ...input, archive, restore: { command: 'pgbackrest restore', recoveryConf } })) as {
      bootstrap: Record<string, { command: string; recovery_conf: Record<string, string> } | string>;
    };
    assert.equal(r.bootstrap.method, RESTORE_METHOD);
    const method = r.bootstrap[RESTORE_METHOD] as { command: string; recovery_conf: Record<string, string> };
    assert.equal(method.recovery_conf.recovery_target_time, '2026-11-30T09:00:00.000Z');
    assert.equal(method.recovery_conf.recovery_target_action, 'promote');
    assert.equal(method.recovery_conf.recovery_target_timeline, 'latest');
  });

  it("a restore beside the cluster gives pgBackRest the target in a form PostgreSQL's recovery_target_time takes at start-up", () => {
    assert.deepEqual(targetOptions(parseTarget('2026-11-30T09:15:00.25Z')), [
      '--type=time',
      '--target=2026-11-30 09:15:00.250+00',
      '--target-action=promote',
      '--target-timeline=latest',
    ]);
    assert.deepEqual(targetOptions(parseTarget('0/3000060')), ['--type=lsn', '--target=0/3000060', '--target-action=promote', '--target-timeline=latest']);
    assert.deepEqual(targetOptions(parseTarget('latest')), ['--type=default', '--target-timeline=latest']);
  });

  it('targets: latest, a time with its offset, an LSN; anything else is refused with the forms it takes', () => {
    assert.deepEqual(parseTarget('latest'), { kind: 'latest' });
    assert.deepEqual(parseTarget('0/3000060'), { kind: 'lsn', lsn: '0/3000060' });
    const t = parseTarget('2026-11-30 10:15:00+01:00');
    assert.equal(t.kind === 'time' && t.time.toISOString(), '2026-11-30T09:15:00.000Z');
    for (const bad of ['yesterday', '2026-11-30T10:15:00', '0/XYZ', '', '2026-13-45T00:00:00Z']) {
      assert.throws(
        () => parseTarget(bad),
        (e: unknown) => e instanceof GardenError && e.code === 'CONFIG_INVALID' && /latest, a time with its offset/.test(e.hint ?? ''),
        bad,
      );
    }
    assert.equal(compareLsn('0/A000000', '0/9FFFFFF'), 1);
    assert.equal(compareLsn('1/0', 'FFFFFFFF/0'), -1);
    assert.equal(compareLsn('0/10', '0/10'), 0);
    assert.deepEqual(recoverySettings({ kind: 'latest' }, 'cmd'), { restore_command: 'cmd', recovery_target_timeline: 'latest' });
  });

  it('chooses the newest backup consistent before the target, and refuses a target before the first one', () => {
    const info = repo([
      backup('F1', '2026-11-30T08:00:00.000Z', '0/3000000'),
      backup('F1_I2', '2026-11-30T09:00:00.000Z', '0/5000000', { type: 'incr', prior: 'F1' }),
      backup('F2', '2026-11-30T10:00:00.000Z', '0/7000000', { error: true }),
    ]);
    assert.equal(backupFor(info, parseTarget('2026-11-30T08:30:00Z')).label, 'F1');
    assert.equal(backupFor(info, parseTarget('2026-11-30T09:30:00Z')).label, 'F1_I2');
    assert.equal(backupFor(info, parseTarget('2026-11-30T11:00:00Z')).label, 'F1_I2', 'a backup with checksum errors is never chosen');
    assert.equal(backupFor(info, parseTarget('0/4000000')).label, 'F1');
    assert.equal(backupFor(info, { kind: 'latest' }).label, 'F1_I2');
    assert.throws(() => backupFor(info, parseTarget('2026-11-30T07:59:00Z')), /before the first backup's consistent point \(F1, 2026-11-30T08:00:00.000Z/);
    assert.throws(() => backupFor(info, parseTarget('0/2000000')), /before the first backup/);
    assert.throws(() => backupFor(repo([]), { kind: 'latest' }), /holds no backup/);
  });

  it('schedule: the next backup of each kind from cron expressions; a full and a diff due together run once, as the full', () => {
    const schedule = parseConfig('cluster: { name: s }\nbackups: { schedule: { full: "0 2 * * 0", diff: "0 2 * * *", incr: "0 */6 * * *" } }').backups.schedule;
    // Saturday 2026-11-28 03:00 local time.
    const saturday = new Date(2026, 10, 28, 3, 0, 0);
    const runs = nextRuns(schedule, saturday);
    assert.deepEqual(
      runs.map((r) => r.kind),
      ['incr', 'full', 'diff'],
    );
    assert.equal(runs[0]!.at.getTime(), new Date(2026, 10, 28, 6, 0, 0).getTime());
    assert.equal(runs[1]!.at.getTime(), new Date(2026, 10, 29, 2, 0, 0).getTime(), 'Sunday 02:00: full');
    assert.equal(runs[2]!.at.getTime(), runs[1]!.at.getTime(), 'the diff is due at the same instant, and sorts after the full');
    assert.equal(parseConfig('cluster: { name: s }').backups.schedule.incr, undefined);
    const { problems } = validateConfig({ cluster: { name: 's' }, backups: { schedule: { full: 'every sunday' } } });
    assert.match(problems.map((p) => `${p.path}: ${p.message}`).join('\n'), /backups\.schedule\.full: must be a cron expression/);
  });

  it('replicas from the repository: Patroni tries the script before basebackup; the script declines an old or missing record', async () => {
    const topology = productionTopology(config);
    const input = { config, topology, member: topology.postgres[0]!, files: patroniFiles('/srv', topology.postgres[0]!.name), secrets: SECRETS };
    const archive = { archiveCommand: 'a', restoreCommand: 'r', replicaCommand: '/bin/sh /srv/replica.sh' };
    const p = parse(renderPatroniConfig({ ...input, archive })) as { postgresql: { create_replica_methods: string[]; pgbackrest: Record<string, unknown> } };
    assert.deepEqual(p.postgresql.create_replica_methods, ['pgbackrest', 'basebackup']);
    assert.deepEqual(p.postgresql.pgbackrest, { command: '/bin/sh /srv/replica.sh', no_params: true });
    const without = parse(renderPatroniConfig({ ...input, archive: { archiveCommand: 'a', restoreCommand: 'r' } })) as { postgresql: Record<string, unknown> };
    assert.equal(without.postgresql.create_replica_methods, undefined, 'basebackup only when replicaFromBackupMaxAgeHours is 0');

    const dir = await mkdtemp(join(tmpdir(), 'gardenos-replica-'));
    try {
      const marker = join(dir, 'newest-backup');
      const script = join(dir, 'replica.sh');
      // pgBackRest stood in by a program that says what it was asked (the script's own logic is under test here).
      await writeFile(join(dir, 'pgbackrest'), '#!/bin/sh\necho "pgbackrest $*"\n', { mode: 0o755 });
      await writeFile(script, replicaFromBackupScript('/etc/pgbackrest.conf', config, '/srv/pg1/data', marker, 3600));
      const runScript = () =>
        promisify(execFile)('/bin/sh', [script], { env: { PATH: `${dir}:/usr/bin:/bin` } }).then(
          (r) => ({ code: 0, ...r }),
          (e: { code: number; stdout: string; stderr: string }) => e,
        );
      let r = await runScript();
      assert.equal(r.code, 1);
      assert.match(r.stderr, /no backup recorded/);
      await writeFile(marker, `${Math.floor(Date.now() / 1000) - 7200}\n`);
      r = await runScript();
      assert.equal(r.code, 1);
      assert.match(r.stderr, /s old \(more than 3600\): copying from the leader/);
      await writeFile(marker, `${Math.floor(Date.now() / 1000) - 60}\n`);
      r = await runScript();
      assert.equal(r.code, 0, r.stderr);
      assert.equal(
        r.stdout.trim(),
        `pgbackrest --config=/etc/pgbackrest.conf --stanza=${config.postgres.scope} --pg1-path=/srv/pg1/data --type=standby restore`,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
  it("the platform's replica method restores the newest backup only when it is recent and on the leader's timeline, else Patroni copies from the leader", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gardenos-replica-py-'));
    const ca = await createCa('test CA');
    const server = await issue(ca, { commonName: 'patroni', ips: ['127.0.0.1'], usage: 'server' });
    let leaderTimeline = 3;
    const patroni = createServer({ key: server.key, cert: server.cert }, (_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({
          members: [
            { name: 'g-1', role: 'sync_standby', timeline: leaderTimeline },
            { name: 'g-0', role: 'leader', timeline: leaderTimeline },
          ],
        }),
      );
    });
    await new Promise<void>((resolve) => patroni.listen(0, '127.0.0.1', resolve));
    try {
      await writeFile(join(dir, 'ca.crt'), ca.cert);
      const info = join(dir, 'info.json');
      // pgBackRest stood in by a program that answers `info` from a file and says what else it was asked (the script's logic is under test).
      // Like the real one, it refuses a pg option for `info` (ERROR: [031]).
      await writeFile(
        join(dir, 'pgbackrest'),
        `#!/bin/sh\ncase "$*" in *pg1-path*' info') echo "ERROR: [031]: option 'pg1-path' not valid for command 'info'" >&2; exit 31;; *' info') cat ${info};; *) echo "pgbackrest $*";; esac\n`,
        { mode: 0o755 },
      );
      const script = join(dir, 'replica.py');
      // Rendered for this test's Patroni: its port, a one-hour limit.
      const port = (patroni.address() as AddressInfo).port;
      const rendered = { ...config, postgres: { ...config.postgres, patroniPort: port }, backups: { ...config.backups, replicaFromBackupMaxAgeHours: 1 } };
      await writeFile(script, replicaFromBackupPy(rendered, '/srv/data', join(dir, 'ca.crt')));
      const backup = (label: string, ageSeconds: number, timeline: number) => ({
        label,
        timestamp: { start: Math.floor(Date.now() / 1000) - ageSeconds - 5, stop: Math.floor(Date.now() / 1000) - ageSeconds },
        archive: { start: `${timeline.toString(16).padStart(8, '0').toUpperCase()}0000000000000004`, stop: null },
      });
      const runScript = async (backups: unknown[]) => {
        await writeFile(info, JSON.stringify([{ name: config.postgres.scope, backup: backups }]));
        const env = { PATH: `${dir}:/usr/bin:/bin`, POD_IP: '127.0.0.1' };
        return promisify(execFile)('python3', [script], { env }).then(
          (r) => ({ code: 0, ...r }),
          (e: { code: number; stdout: string; stderr: string }) => e,
        );
      };
      let r = await runScript([]);
      assert.deepEqual([r.code, r.stderr.trim()], [1, 'gardenos: the repository holds no backup: copying from the leader']);
      r = await runScript([backup('F1', 60, 3), backup('F2', 7200, 3)]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /the newest backup, F2, is 720\d s old \(more than 3600\): copying from the leader/);
      // After `db restore --to` the leader is on a timeline no backup is on yet.
      leaderTimeline = 4;
      r = await runScript([backup('F1', 60, 3)]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /the newest backup, F1, is on timeline 3, the leader on 4: copying from the leader/);
      r = await runScript([backup('F1', 600, 3), backup('F3', 60, 4)]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /restoring the newest backup, F3 \(6\d s old, timeline 4\), as a standby/);
      assert.equal(
        r.stdout.trim(),
        `pgbackrest --config=/etc/pgbackrest/pgbackrest.conf --stanza=${config.postgres.scope} --pg1-path=/srv/data --set=F3 --type=standby restore`,
      );
      // A leader whose REST API cannot be reached (or verified): copied, never guessed.
      r = await promisify(execFile)('python3', [script], { env: { PATH: `${dir}:/usr/bin:/bin`, POD_IP: '127.0.0.2' } }).then(
        () => ({ code: 0, stdout: '', stderr: '' }),
        (e: { code: number; stdout: string; stderr: string }) => e,
      );
      assert.equal(r.code, 1);
      assert.match(r.stderr, /the leader's timeline could not be read/);
    } finally {
      patroni.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
