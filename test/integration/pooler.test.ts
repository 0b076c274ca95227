// The pooler (PgBouncer from Debian's packages) in front of the primary route on
// a real local cluster (127.0.220.x): it serves over TLS with SCRAM, status shows
// it, and a planned switchover behind it — ten clients writing through it — costs
// no failed statement and no lost write. Measured waits are benchmarks, not asserted.
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import type { Verdict } from '../../src/chaos/verdict.ts';
import type { DoctorReport } from '../../src/doctor/run.ts';
import type { LocalStatus } from '../../src/local/status.ts';
import { waitFor } from '../../src/util/wait.ts';
import { firstDashboardView, makeTestCluster, withPassword, type TestCluster } from '../helpers/local.ts';

describe('the pooler: clients keep their connections through a planned switchover', { timeout: 600_000 }, () => {
  let c: TestCluster;
  const status = async () => JSON.parse((await c.cli(['local', 'status', '--json'])).stdout) as LocalStatus;

  before(async () => {
    c = await makeTestCluster('it-pool', 220, 'pooler: { enabled: true }');
    const up = await c.cli(['local', 'up', '--json']);
    assert.equal(up.code, 0, up.stderr);
  });
  after(async () => {
    await c?.cleanup();
  });

  it('serves the primary over TLS, and status shows it', async () => {
    const s = await status();
    assert.equal(s.healthy, true, s.problems.join('\n'));
    assert.match(s.endpoints.pooled!, /^postgresql:\/\/postgres@127\.0\.220\.10:6432\/postgres\?sslmode=verify-full/);
    assert.equal(s.pooler?.reachable, true);
    assert.equal(s.pooler?.paused, false);
    const client = new pg.Client({ connectionString: await withPassword(s.endpoints.pooled!, c.stateDir) });
    await client.connect();
    try {
      const r = await client.query('SELECT pg_is_in_recovery() AS standby, host(inet_server_addr()) AS addr');
      assert.equal(r.rows[0].standby, false);
      assert.equal(r.rows[0].addr, s.members.find((m) => m.role === 'leader')!.host);
    } finally {
      await client.end();
    }
  });

  it('a connection through the pooler outlives `db switchover` and then reaches the new leader', async () => {
    const s = await status();
    const client = new pg.Client({ connectionString: await withPassword(s.endpoints.pooled!, c.stateDir) });
    await client.connect();
    try {
      const before = (await client.query('SELECT host(inet_server_addr()) AS addr')).rows[0].addr as string;
      const r = await c.cli(['local', 'db', 'switchover', '--yes', '--json']);
      assert.equal(r.code, 0, r.stderr);
      const op = JSON.parse(r.stdout) as { after: { leader: string }; pausedMs?: number };
      assert.ok(typeof op.pausedMs === 'number', 'the switchover went through the paused pooler');
      const now = (await client.query('SELECT host(inet_server_addr()) AS addr, pg_is_in_recovery() AS standby')).rows[0] as { addr: string; standby: boolean };
      assert.notEqual(now.addr, before, 'the same client connection now reaches another server');
      assert.equal(now.standby, false);
      assert.equal((await status()).pooler?.paused, false, 'resumed');
    } finally {
      await client.end();
    }
  });

  it('a switchover interrupted while the pooler is paused: the router and status report it, and `local up` resumes it', async () => {
    const metric = async (name: string) => {
      const text = await (await fetch(`http://${c.prefix}.10:8405/metrics`)).text();
      return text
        .split('\n')
        .find((l) => l.startsWith(name))
        ?.split(' ')
        .at(-1);
    };
    assert.equal(
      await metric('gardenos_pooler_up'),
      '1',
      (await readFile(`${c.stateDir}/logs/router.log`, 'utf8'))
        .split('\n')
        .filter((l) => l.includes('pooler'))
        .slice(-3)
        .join('\n'),
    );
    assert.equal(await metric('gardenos_pooler_paused{database="postgres"}'), '0');
    const { openLocalCluster } = await import('../../src/local/cluster.ts');
    const { poolerAdmin } = await import('../../src/local/pooler.ts');
    const local = await openLocalCluster({ configFile: c.configFile, stateDir: c.stateDir });
    const serves = async () => {
      const client = new pg.Client({
        connectionString: await withPassword((await status()).endpoints.pooled!, c.stateDir),
        query_timeout: 2000,
        connectionTimeoutMillis: 2000,
      });
      client.on('error', () => {});
      try {
        await client.connect();
        return (await client.query('SELECT 1 AS one')).rows[0].one === 1;
      } catch {
        return false;
      } finally {
        await Promise.race([client.end().catch(() => {}), new Promise((r) => setTimeout(r, 300))]);
      }
    };
    // What `db switchover` leaves when it dies between PAUSE and RESUME: its marker, and PgBouncer paused.
    const admin = await poolerAdmin(local);
    try {
      await writeFile(local.layout.pooler.pauseMarker, '{"by":"a switchover that died"}\n');
      await admin.command('PAUSE');
      assert.equal(await metric('gardenos_pooler_paused{database="postgres"}'), '1', 'the router reports it paused');
      assert.equal((await status()).pooler?.paused, true, 'status reports it paused');
      assert.equal(await serves(), false, 'clients wait');
      // doctor says so with the marker as evidence, and the dashboard's view shows the pooler paused.
      const report = JSON.parse((await c.cli(['local', 'doctor', '--json'])).stdout) as DoctorReport;
      const finding = report.findings.find((f) => f.id === 'pooler')!;
      assert.equal(finding.status, 'warn');
      assert.ok(
        finding.evidence.some((e) => /paused by GardenOS: .*a switchover that died/.test(e)),
        finding.evidence.join('\n'),
      );
      const view = await firstDashboardView(['local', '-c', c.configFile, '--state-dir', c.stateDir]);
      assert.equal(view.pooler?.paused, true, 'the dashboard shows it paused');
    } finally {
      await admin.close();
    }
    const up = await c.cli(['local', 'up']);
    assert.equal(up.code, 0, up.stdout + up.stderr);
    assert.match(up.stdout + up.stderr, /resumed the pooler, which was left paused/);
    assert.equal(await serves(), true, 'clients are served again');
    assert.equal(await metric('gardenos_pooler_paused{database="postgres"}'), '0');
    assert.equal((await status()).pooler?.paused, false);

    // A PAUSE without GardenOS's marker (typed into the console): PgBouncer 1.18's SHOW lists cannot tell, but `up` resumes it all the same.
    const admin2 = await poolerAdmin(local);
    try {
      await admin2.command('PAUSE');
    } finally {
      await admin2.close();
    }
    assert.equal(await serves(), false);
    const again = await c.cli(['local', 'up']);
    assert.equal(again.code, 0, again.stdout + again.stderr);
    assert.match(again.stdout + again.stderr, /resumed the pooler/);
    assert.equal(await serves(), true);
  });

  it('doctor names a pooler that is gone, and up brings it back unpaused (it died paused, mid-switchover)', async () => {
    const { openLocalCluster } = await import('../../src/local/cluster.ts');
    const { poolerAdmin } = await import('../../src/local/pooler.ts');
    const local = await openLocalCluster({ configFile: c.configFile, stateDir: c.stateDir });
    const admin = await poolerAdmin(local);
    try {
      await writeFile(local.layout.pooler.pauseMarker, '{"by":"a switchover that died with the pooler"}\n');
      await admin.command('PAUSE');
    } finally {
      await admin.close();
    }
    const pid = Number((await readFile(`${c.stateDir}/pids/pooler.pid`, 'utf8')).trim());
    process.kill(pid, 'SIGTERM');
    await waitFor(
      'the router to report the pooler down',
      async () => {
        const text = await (await fetch(`http://${c.prefix}.10:8405/metrics`)).text();
        return text.includes('gardenos_pooler_up 0') || undefined;
      },
      { timeoutMs: 30_000, intervalMs: 250 },
    );
    const doctor = await waitFor(
      'doctor to name the pooler',
      async () => {
        const report = JSON.parse((await c.cli(['local', 'doctor', '--json'])).stdout) as DoctorReport;
        const f = report.findings.find((x) => x.id === 'pooler')!;
        return f.status === 'fail' ? f : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 250 },
    );
    assert.match(doctor.summary, /the pooler does not answer/);
    const up = await c.cli(['local', 'up']);
    assert.equal(up.code, 0, up.stdout + up.stderr);
    const s = await status();
    assert.equal(s.pooler?.reachable, true);
    assert.equal(s.pooler?.paused, false, 'the new PgBouncer is not paused, and the old marker is gone');
    assert.equal(s.healthy, true, s.problems.join('\n'));
  });

  it('chaos pooled-switchover: ten clients, no failed statement, nothing lost, one primary at a time', async () => {
    const r = await c.cli(['local', 'chaos', 'pooled-switchover', '--json']);
    const result = JSON.parse(r.stdout) as { runs: { scenario: string; verdict: Verdict }[] };
    const v = result.runs[0]!.verdict;
    assert.equal(v.ok, true, v.failure);
    assert.deepEqual(v.lost, []);
    assert.deepEqual(v.overlaps, []);
    assert.ok(v.intervals.length >= 2, 'writes moved to another node');
    assert.equal(r.code, 0, r.stderr);
  });
});
