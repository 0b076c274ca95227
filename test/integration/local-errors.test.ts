// Bad input and bad situations: one clear message, and nothing lost or started.
import assert from 'node:assert/strict';
import { access, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { makeTestCluster, runCli, type TestCluster } from '../helpers/local.ts';

describe('gardenos local refuses clearly', { timeout: 120_000 }, () => {
  let c: TestCluster;
  before(async () => {
    c = await makeTestCluster('it-errors', 212);
  });
  after(async () => {
    await c?.cleanup();
  });

  it('names a port that is already in use and starts nothing', async (t) => {
    const squatter: Server = await new Promise((resolve) => {
      const s = createServer();
      s.listen(2380, `${c.prefix}.12`, () => resolve(s));
    });
    t.after(() => new Promise((r) => squatter.close(r)));
    const r = await c.cli(['local', 'up']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`error: ${c.prefix.replaceAll('.', '\\.')}\\.12:2380 \\(node2 etcd peer\\) is already in use`));
    assert.match(r.stderr, /hint: stop what listens there/);
    assert.deepEqual(await c.processes(), []);
  });

  it('names the missing Debian packages and how to install them', async () => {
    const emptyPath = await mkdtemp(join(tmpdir(), 'gardenos-nopath-'));
    try {
      const r = await c.cli(['local', 'up'], { env: { ...process.env, PATH: emptyPath } });
      assert.equal(r.code, 1);
      assert.match(
        r.stderr,
        /error: missing etcd \(Debian package etcd-server\), etcdctl \(Debian package etcd-client\), patroni \(Debian package patroni\), haproxy \(Debian package haproxy\)/,
      );
      assert.match(r.stderr, /hint: install with: sudo apt-get install -y etcd-server etcd-client patroni haproxy/);
      assert.deepEqual(await c.processes(), []);
    } finally {
      await rm(emptyPath, { recursive: true, force: true });
    }
  });

  it('rejects a malformed config with the line, column and field', async () => {
    const file = join(c.dir, 'bad.yaml');
    await writeFile(file, 'cluster:\n  name: ok\npostgres:\n  ttl: 20\n  loopWait: 10\n  retryTimeout: 6\n');
    const r = await runCli(['local', '-c', file, '--state-dir', join(c.dir, 'bad-state'), 'up']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /error: .*bad\.yaml has 1 problem/);
    assert.match(r.stderr, /bad\.yaml:4:8: postgres\.ttl: Patroni needs loopWait \+ 2\*retryTimeout <= ttl, but 10 \+ 2\*6 = 22 > 20/);
    await assert.rejects(access(join(c.dir, 'bad-state')), 'no state was created');
  });

  it('says so when a config file does not exist', async () => {
    const r = await runCli(['config', 'check', '-c', join(c.dir, 'nope.yaml')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /config file .*nope\.yaml does not exist/);
    assert.match(r.stderr, /gardenos init/);
  });

  it('refuses a Patroni older than 4 and says what to install, starting nothing', async () => {
    // What `patroni --version` prints on Debian 12 without Debian 13's package.
    const bin = await mkdtemp(join(tmpdir(), 'gardenos-oldpatroni-'));
    try {
      await writeFile(join(bin, 'patroni'), '#!/bin/sh\necho "patroni 3.0.2"\n', { mode: 0o755 });
      const r = await c.cli(['local', 'up'], { env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } });
      assert.equal(r.code, 1, r.stdout);
      assert.match(r.stderr, /error: Patroni 3\.0\.2 is too old: GardenOS needs Patroni >= 4\.0/);
      assert.match(r.stderr, /hint: run scripts\/install-deps\.sh/);
      assert.deepEqual(await c.processes(), []);
    } finally {
      await rm(bin, { recursive: true, force: true });
    }
  });

  it('shows the last lines of the log of a member that fails to start', async () => {
    // etcd cannot use a data directory that is a file, and exits.
    await mkdir(join(c.stateDir, 'etcd', 'node2'), { recursive: true });
    await writeFile(join(c.stateDir, 'etcd', 'node2', 'data'), 'not a directory');
    try {
      const r = await c.cli(['local', 'up', '--timeout', '60']);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /error: etcd-node2 exited while waiting for etcd quorum/);
      assert.match(r.stderr, /last lines of .*etcd-node2\.log:\n {2}.+/);
      assert.match(r.stderr, /hint: see the whole log with `gardenos local logs etcd-node2`/);
    } finally {
      await c.cli(['local', 'destroy', '--yes']);
    }
  });

  it('reports a cluster that is not running as degraded (exit 2), not as a crash', async () => {
    const r = await c.cli(['local', 'status', '--json', '--timeout', '300']);
    assert.equal(r.code, 2, r.stderr);
    const s = JSON.parse(r.stdout) as { healthy: boolean; problems: string[] };
    assert.equal(s.healthy, false);
    assert.ok(s.problems.includes('etcd has no leader'), s.problems.join('; '));
    assert.ok(s.problems.includes('PostgreSQL has no leader'), s.problems.join('; '));
  });
});

describe('gardenos init and config', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gardenos-init-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('init writes a valid commented example and will not overwrite it', async () => {
    const file = join(dir, 'gardenos.yaml');
    assert.equal((await runCli(['init', file])).code, 0);
    const check = await runCli(['config', 'check', '-c', file]);
    assert.equal(check.code, 0, check.stderr);
    assert.match(check.stdout, /is valid: cluster gardenos, 3 nodes, 2 apps/);
    const again = await runCli(['init', file]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already exists; nothing was written/);
  });

  it('config show --json prints the effective config with defaults', async () => {
    const file = join(dir, 'min.yaml');
    await writeFile(file, 'cluster: { name: mini }\n');
    const r = await runCli(['config', 'show', '--json', '-c', file]);
    assert.equal(r.code, 0, r.stderr);
    const c = JSON.parse(r.stdout);
    assert.equal(c.postgres.synchronousMode, true);
    assert.equal(c.etcd.clientPort, 2379);
  });

  it('config schema prints a JSON Schema', async () => {
    const r = await runCli(['config', 'schema']);
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout);
    assert.equal(s.title, 'gardenos.yaml');
    assert.ok(s.properties.postgres.properties.ttl);
  });
});
