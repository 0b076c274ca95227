// Backups into S3 for real: SeaweedFS (built from its Go module, scripts/build-seaweedfs.sh) serving S3 over TLS on
// localhost, with its own CA and access key; a local cluster (127.0.238.x) with backups.repository.s3 pointing at it.
// `local up --with-backups` archives WAL into the bucket and takes the first full backup there; what the bucket holds
// is read through SeaweedFS's filer (not through pgBackRest) and is encrypted; an incremental backup and a restore
// test read it back; a credentials file others can read is refused before anything is written.
import assert from 'node:assert/strict';
import { chmod, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import type { LocalStatus } from '../../src/local/status.ts';
import type { RepositoryInfo, VerifyResult } from '../../src/ops/pgbackrest.ts';
import { makeTestCluster, withPassword, type TestCluster } from '../helpers/local.ts';
import { startS3, type S3Server } from '../helpers/seaweedfs.ts';

const BUCKET = 'gardenos-it';

describe('backups into S3: SeaweedFS as the repository, over TLS with its own CA and access key', { timeout: 600_000 }, () => {
  let s3: S3Server;
  let c: TestCluster;
  const json = <T>(s: string) => JSON.parse(s) as T;
  /** A path under the bucket, read through SeaweedFS's filer: what is really stored. */
  const stored = async (path: string) => {
    const r = await fetch(`${s3.filer}/buckets/${BUCKET}/${path}`, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(10_000) });
    assert.equal(r.status, 200, `${path}: HTTP ${r.status}`);
    return Buffer.from(await r.arrayBuffer());
  };
  const entries = async (dir: string) =>
    ((JSON.parse((await stored(`${dir}/`)).toString('utf8')) as { Entries: { FullPath: string }[] | null }).Entries ?? []).map(
      (e) => e.FullPath.split('/').pop()!,
    );

  before(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gardenos-it-s3-store-'));
    await chmod(dir, 0o755); // the CA file is read by PostgreSQL's user (pgBackRest runs as it)
    s3 = await startS3({ dir, portBase: 23810, bucket: BUCKET });
    c = await makeTestCluster(
      'it-s3',
      238,
      [
        'backups:',
        // The default schedule moved out of the test's way: once a year.
        '  schedule: { full: "0 0 1 1 *", diff: "0 0 1 1 *" }',
        `  repository: { path: /it-s3, s3: { endpoint: "${s3.endpoint}", bucket: ${BUCKET}, uriStyle: path, caFile: ${s3.caFile}, credentialsFile: ${s3.credentialsFile} } }`,
      ].join('\n'),
    );
  });
  after(async () => {
    await c?.cleanup();
    await s3?.stop();
  });

  it('refuses a credentials file others can read, naming it and the fix, before anything is written', async () => {
    await chmod(s3.credentialsFile, 0o644);
    try {
      const r = await c.cli(['local', 'up', '--with-backups']);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, new RegExp(`credentialsFile ${s3.credentialsFile} can be read by others`));
      assert.match(r.stderr, /chmod 600/);
      assert.equal((await c.processes()).length, 0, 'nothing was started');
    } finally {
      await chmod(s3.credentialsFile, 0o600);
    }
  });

  it('archives WAL into the bucket and takes the first full backup there at `up`, encrypted; an incremental backup and a restore test read it back', async () => {
    const up = await c.cli(['local', 'up', '--with-backups', '--json']);
    assert.equal(up.code, 0, up.stderr);
    const list = async () => {
      const r = await c.cli(['local', 'db', 'backup', 'list', '--json']);
      assert.equal(r.code, 0, r.stderr);
      return json<RepositoryInfo & { lastVerified: VerifyResult | null }>(r.stdout);
    };
    const first = await list();
    assert.deepEqual(
      first.backups.map((b) => b.type),
      ['full'],
    );
    // In the bucket, under the repository path: the stanza's backup and its archived WAL — encrypted (OpenSSL's
    // "Salted__" header), so the store never sees PostgreSQL's pages.
    assert.ok((await entries('it-s3/backup/it-s3')).includes(first.backups[0]!.label), 'the full backup is in the bucket');
    const info = await stored('it-s3/backup/it-s3/backup.info');
    assert.equal(info.subarray(0, 8).toString('latin1'), 'Salted__');
    const archiveIds = await entries('it-s3/archive/it-s3');
    assert.ok(
      archiveIds.some((d) => /^\d+-\d+$/.test(d)),
      `archive ids in the bucket: ${archiveIds.join(', ')}`,
    );

    // Rows, then an incremental backup into the bucket, then a restore test from it (row counts against a standby's).
    const status = json<LocalStatus>((await c.cli(['local', 'status', '--json'])).stdout);
    const client = new pg.Client({ connectionString: await withPassword(status.endpoints.primary, c.stateDir) });
    await client.connect();
    try {
      await client.query('CREATE TABLE s3_rows AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 5000) g');
    } finally {
      await client.end();
    }
    const incr = await c.cli(['local', 'db', 'backup', '--type', 'incr', '--json']);
    assert.equal(incr.code, 0, incr.stderr);
    const verify = await c.cli(['local', 'db', 'backup', 'verify', '--json']);
    assert.equal(verify.code, 0, verify.stderr);
    const v = json<VerifyResult>(verify.stdout);
    const rows = v.databases.find((d) => d.name === 'postgres');
    assert.ok(rows && rows.rows >= 5000, `the restored copy holds the rows: ${JSON.stringify(v.databases)}`);
    const after = await list();
    assert.deepEqual(
      after.backups.map((b) => b.type),
      ['full', 'incr'],
    );
    assert.ok((await entries('it-s3/backup/it-s3')).includes(after.backups[1]!.label), 'the incremental backup is in the bucket');
    assert.equal(after.lastVerified?.label, after.backups[1]!.label);
  });
});
