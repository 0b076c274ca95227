// `gardenos local up --isolated`: members in network namespaces the test's own
// cluster creates (10.251.215.0/24 on a bridge of its own), a member really cut
// off and reconnected, and nothing left behind. Needs root (CI runs as root).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import type { Verdict } from '../../src/chaos/verdict.ts';
import { PatroniClient } from '../../src/clients/patroni.ts';
import { openLocalCluster } from '../../src/local/cluster.ts';
import { ensureNetwork } from '../../src/local/netns.ts';
import { waitFor } from '../../src/util/wait.ts';
import { makeTestCluster, type TestCluster } from '../helpers/local.ts';

const run = promisify(execFile);
const netnsList = async () => (await run('ip', ['netns', 'list'])).stdout;
const asRoot = process.getuid?.() === 0;

describe('gardenos local --isolated: members in their own network namespaces', {
  timeout: 600_000,
  skip: asRoot ? false : 'needs root to create network namespaces (see README)',
}, () => {
  let c: TestCluster;
  let hash = '';
  const routerStatus = async () =>
    JSON.parse(await (await fetch('http://10.251.215.1:8405/status')).text()) as { primary: { name: string } | null; replicas: { name: string }[] };

  before(async () => {
    c = await makeTestCluster('it-iso', 215);
  });
  after(async () => {
    await c?.cleanup();
  });

  it('comes up with each member in its own namespace, reachable only through the bridge', async () => {
    const r = await c.cli(['local', 'up', '--isolated', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const { status } = JSON.parse(r.stdout) as { status: { healthy: boolean; members: { host: string }[]; endpoints: { primary: string } } };
    assert.equal(status.healthy, true);
    assert.deepEqual(
      status.members.map((m) => m.host),
      ['10.251.215.11', '10.251.215.12', '10.251.215.13'],
    );
    assert.match(status.endpoints.primary, /@10\.251\.215\.1:5000\//);
    const namespaces = (await netnsList()).split('\n').filter((l) => /^gos-[0-9a-f]{6}-node\d/.test(l));
    assert.equal(namespaces.length, 3, await netnsList());
    hash = /^gos-([0-9a-f]{6})-/.exec(namespaces[0]!)![1]!;
    // etcd and Patroni really run inside the namespaces: their sockets are not in the root namespace.
    const { stdout } = await run('ss', ['-ltn']);
    assert.doesNotMatch(stdout, /10\.251\.215\.1[1-3]:(2379|5432|8008)/);
  });

  it('cuts a replica off and takes it out of the read route, then brings it back', async () => {
    const secrets = JSON.parse(await readFile(`${c.stateDir}/secrets/passwords.json`, 'utf8')) as { restApiPassword: string };
    const view = await new PatroniClient('https://10.251.215.11:8008', {
      caFile: `${c.stateDir}/pki/ca.crt`,
      auth: { username: 'patroni', password: secrets.restApiPassword },
    })
      .cluster()
      .catch(() => new PatroniClient('https://10.251.215.12:8008', { caFile: `${c.stateDir}/pki/ca.crt` }).cluster());
    // The asynchronous replica: cutting it off does not stall synchronous commits.
    const victim = view.members.find((m) => m.role === 'replica')!.name;
    const link = `gos${hash}v${Number(victim.replace('node', '')) - 1}`;
    await waitFor(`the router to route reads to ${victim}`, async () => (await routerStatus()).replicas.some((r) => r.name === victim), {
      timeoutMs: 30_000,
      intervalMs: 200,
    });
    await run('ip', ['link', 'set', link, 'down']);
    try {
      await waitFor(`${victim} to leave the read route`, async () => !(await routerStatus()).replicas.some((r) => r.name === victim), {
        timeoutMs: 30_000,
        intervalMs: 100,
      });
      assert.notEqual((await routerStatus()).primary, null, 'writes still have a primary');
    } finally {
      await run('ip', ['link', 'set', link, 'up']);
    }
    await waitFor(`${victim} to rejoin the read route`, async () => (await routerStatus()).replicas.some((r) => r.name === victim), {
      timeoutMs: 60_000,
      intervalMs: 200,
    });
  });

  it('a partitioned primary under write load: a new leader, nothing lost, never two primaries (Patroni >= 4)', async () => {
    const r = await c.cli(['local', 'chaos', 'primary-partition', '--json']);
    const result = JSON.parse(r.stdout) as { runs: { scenario: string; verdict: Verdict }[] };
    const v = result.runs[0]!.verdict;
    // A cut-off leader does not answer at all: ambiguous, so the router's dead-leader watch must leave it to Patroni's ttl.
    const routerLog = await readFile(join(c.stateDir, 'logs', 'router.log'), 'utf8');
    assert.doesNotMatch(routerLog, /ended its leader lock/, "the router ended a partitioned leader's lock");
    assert.equal(v.verified, true, v.failure);
    assert.deepEqual(v.lost, [], 'acknowledged writes lost');
    assert.deepEqual(v.overlaps, [], 'two primaries');
    assert.ok(v.intervals.length >= 2, 'writes moved to another node');
    assert.equal(r.code, 0, r.stderr);
  });

  it('destroy removes every namespace, link and the bridge it made', async () => {
    const r = await c.cli(['local', 'destroy', '--yes']);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(await netnsList(), new RegExp(`gos-${hash}-`));
    const { stdout } = await run('ip', ['-o', 'link', 'show']);
    assert.doesNotMatch(stdout, new RegExp(`gos${hash}`));
    assert.deepEqual(await c.processes(), []);
  });

  it('destroy also removes the network of an `up --isolated` that failed before it recorded the cluster', async () => {
    // What a failed up leaves: the namespaces, links and bridge named after the state directory, and no cluster.json.
    const net = (await openLocalCluster({ configFile: c.configFile, stateDir: c.stateDir, isolated: true })).network!;
    await ensureNetwork(net);
    assert.match(await netnsList(), new RegExp(net.members[0]!.namespace));
    const r = await c.cli(['local', 'destroy', '--yes']);
    assert.equal(r.code, 0, r.stderr);
    const left = await netnsList();
    for (const m of net.members) assert.doesNotMatch(left, new RegExp(m.namespace));
    assert.doesNotMatch((await run('ip', ['-o', 'link', 'show'])).stdout, new RegExp(net.bridge));
  });
});
