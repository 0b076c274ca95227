// Router benchmark: time from the leader key changing in etcd to HAProxy
// routing the primary port to the new leader, over repeated switchovers on a
// local cluster; and the router's resident memory while steady.
//   npm run bench:router      (BENCH_SWITCHOVERS=20)
import { readFile } from 'node:fs/promises';
import { EtcdClient } from '../src/clients/etcd.ts';
import { HaproxyClient } from '../src/clients/haproxy.ts';
import { memberRunning, PatroniClient } from '../src/clients/patroni.ts';
import { table } from '../src/cli/output.ts';
import { formatMs, percentile } from './stats.ts';
import { waitFor } from '../src/util/wait.ts';
import { DIST_CLI, makeTestCluster } from '../test/helpers/local.ts';

const switchovers = Number(process.env.BENCH_SWITCHOVERS ?? 20);
// The compiled CLI (npm run build first): the router then runs as users run it.
const cluster = await makeTestCluster('bench-router', 222, '', DIST_CLI);
const results: number[] = [];
/** Key change → the new leader's own API confirms (/primary 200): Patroni's promotion, which the router waits for. */
const confirms: number[] = [];
let rssKiB = 0;
try {
  const up = await cluster.cli(['local', 'up', '--json']);
  if (up.code !== 0) throw new Error(`up failed: ${up.stderr}`);
  const s = cluster.stateDir;
  const tls = { ca: `${s}/pki/ca.crt`, cert: `${s}/pki/gardenos-client.crt`, key: `${s}/pki/gardenos-client.key` };
  const secrets = JSON.parse(await readFile(`${s}/secrets/passwords.json`, 'utf8')) as { restApiPassword: string };
  const members = ['node1', 'node2', 'node3'].map((name, i) => ({
    name,
    api: new PatroniClient(`https://${cluster.prefix}.${11 + i}:8008`, {
      caFile: tls.ca,
      timeoutMs: 60_000,
      auth: { username: 'patroni', password: secrets.restApiPassword },
    }),
  }));
  const haproxy = new HaproxyClient(`${s}/haproxy/admin.sock`);
  const etcd = new EtcdClient(
    [1, 2, 3].map((i) => `https://${cluster.prefix}.${10 + i}:2379`),
    tls,
    { resilient: true },
  );

  // Timestamps of leader-key changes, as etcd reports them to a watcher.
  const keyChanges = new Map<string, number>();
  const { revision } = await etcd.readPrefix('/service/bench-router/');
  const watch = await etcd.watchPrefix('/service/bench-router/', String(BigInt(revision) + 1n), {
    onChange: (key, value) => {
      if (key.endsWith('/leader') && value) keyChanges.set(value, keyChanges.get(value) ?? performance.now());
    },
    onInterrupted: () => undefined,
    onConnected: () => undefined,
  });

  const view = async () => {
    const v = await members[0]!.api.cluster().catch(() => members[1]!.api.cluster());
    return v;
  };
  for (let i = 0; i < switchovers; i++) {
    const ready = await waitFor(
      'a leader and a synchronous standby',
      async () => {
        const v = await view();
        const leader = v.members.find((m) => m.role === 'leader' && memberRunning(m));
        const sync = v.members.find((m) => m.role === 'sync_standby' && memberRunning(m));
        return leader && sync && v.members.every(memberRunning) ? { leader: leader.name, sync: sync.name } : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 200 },
    );
    keyChanges.clear();
    const leaderApi = members.find((m) => m.name === ready.leader)!.api;
    // Patroni answers the switchover request only when it is done: watch HAProxy meanwhile.
    const request = leaderApi.call('POST', '/switchover', { leader: ready.leader, candidate: ready.sync });
    const candidateApi = members.find((m) => m.name === ready.sync)!.api;
    const confirmedAt = waitFor(`${ready.sync} to confirm on /primary`, async () => ((await candidateApi.check('/primary')) ? performance.now() : undefined), {
      timeoutMs: 60_000,
      intervalMs: 5,
    });
    const routedAt = await waitFor(
      `HAProxy routing to ${ready.sync}`,
      async () => {
        const st = (await haproxy.stats()).filter((x) => x.proxy === 'postgres-primary');
        const live = st.filter((x) => !x.status.startsWith('MAINT') && x.status.startsWith('UP'));
        return live.length === 1 && live[0]!.server === ready.sync ? performance.now() : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 2 },
    );
    const res = await request;
    if (res.status !== 200) throw new Error(`switchover refused: ${res.status} ${res.body}`);
    const keyAt = keyChanges.get(ready.sync);
    if (keyAt === undefined) throw new Error('the leader key change was not seen');
    results.push(routedAt - keyAt);
    confirms.push((await confirmedAt) - keyAt);
    process.stderr.write(
      `switchover ${i + 1}/${switchovers}: ${ready.leader} → ${ready.sync}: routed after ${(routedAt - keyAt).toFixed(1)} ms (leader confirmed after ${confirms.at(-1)!.toFixed(1)} ms)\n`,
    );
  }
  await watch.close();
  etcd.close();
  const pid = Number(await readFile(`${s}/pids/router.pid`, 'utf8'));
  rssKiB = Number(/VmRSS:\s+(\d+)/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
} finally {
  await cluster.cleanup();
}

process.stdout.write(
  `\n${table(
    ['BENCHMARK', 'N', 'P50', 'P99', 'MAX', 'GOAL'],
    [
      [
        'router: leader key change → HAProxy routes to new leader',
        String(results.length),
        formatMs(percentile(results, 50)),
        formatMs(percentile(results, 99)),
        formatMs(Math.max(...results)),
        'p99 ≤ 200 ms',
      ],
      [
        '  of which: leader key change → new leader answers 200 on /primary',
        String(confirms.length),
        formatMs(percentile(confirms, 50)),
        formatMs(percentile(confirms, 99)),
        formatMs(Math.max(...confirms)),
        '',
      ],
      ['router: resident memory while steady', '1', `${(rssKiB / 1024).toFixed(1)} MiB`, '', '', '≤ 80 MiB'],
    ],
  )}\n`,
);
