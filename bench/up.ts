// `gardenos up` benchmark over real SSH to three test hosts in network
// namespaces (10.252.224.0/24, root only): the first run (files, a new etcd
// cluster, HAProxy), repeated no-change runs, a dry run, and a one-line edit
// applied (HAProxy restarts on every host). Then the same on three hosts that
// boot systemd (test/helpers/systemd-hosts.ts, 10.252.222.0/24): boot, the first
// run, no-change runs, and one host rebooted until its etcd member and HAProxy
// serve again. Prints a table; asserts nothing.
//   npm run bench:up          (BENCH_UP_NOOP=5)
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { table } from '../src/cli/output.ts';
import { DIST_CLI, runCli } from '../test/helpers/local.ts';
import { startTestHosts } from '../test/helpers/ssh-hosts.ts';
import { startSystemdHosts } from '../test/helpers/systemd-hosts.ts';
import { EtcdClient } from '../src/clients/etcd.ts';
import { waitFor } from '../src/util/wait.ts';
import { formatMs, percentile } from './stats.ts';
import { portOpen } from '../test/helpers/net.ts';

if (process.getuid?.() !== 0) {
  process.stderr.write('bench:up needs root (it makes network namespaces with SSH servers in them)\n');
  process.exit(1);
}
const noops = Number(process.env.BENCH_UP_NOOP ?? 5);
const t = await startTestHosts('bench-up', 224);
const configFile = join(t.dir, 'gardenos.yaml');
const yaml = (extra = '') => `cluster: { name: bench-up }
nodes:
${t.hosts.map((h) => `  - name: ${h.name}\n    address: { public: ${h.address}, private: ${h.address} }\n    ssh: { user: root, keyPath: ${t.keyFile} }`).join('\n')}
haproxy: { address: ${t.hosts[0]!.address}${extra} }
`;
const skip = ['--skip', 'k3s', 'kubeconfig', 'manifests', 'database'];
async function timed(args: string[]): Promise<number> {
  const t0 = performance.now();
  const r = await runCli([...args, '-c', configFile, '--known-hosts', t.knownHosts, ...skip], { cli: DIST_CLI });
  if (r.code !== 0) throw new Error(`${args.join(' ')} failed: ${r.stderr}`);
  return performance.now() - t0;
}
const rows: string[][] = [];
try {
  await writeFile(configFile, yaml());
  await timed(['up', '--dry-run', '--trust-new-host-keys']);
  const first = await timed(['up']);
  const noop: number[] = [];
  for (let i = 0; i < noops; i++) noop.push(await timed(['up']));
  const dry = await timed(['up', '--dry-run']);
  await writeFile(configFile, yaml(', checkIntervalMs: 2000'));
  const edit = await timed(['up']);
  rows.push(['up, first run: 48 files, new 3-member etcd, HAProxy ×3', '1', formatMs(first), '-']);
  rows.push(['up, nothing to change', String(noops), formatMs(percentile(noop, 50)), formatMs(Math.max(...noop))]);
  rows.push(['up --dry-run, nothing to change', '1', formatMs(dry), '-']);
  rows.push(['up, one edit: haproxy.cfg ×3 + restart ×3', '1', formatMs(edit), '-']);
} finally {
  await t.cleanup();
}

// The same on hosts that boot systemd: the rendered units under systemd, etcd as its own user.
const bootStart = performance.now();
const sd = await startSystemdHosts('bench-sd', 222);
const bootMs = performance.now() - bootStart;
const sdConfig = join(sd.dir, 'gardenos.yaml');
async function sdTimed(args: string[]): Promise<number> {
  const t0 = performance.now();
  const r = await runCli([...args, '-c', sdConfig, '--known-hosts', sd.knownHosts], { cli: DIST_CLI });
  if (r.code !== 0) throw new Error(`${args.join(' ')} failed: ${r.stderr}`);
  return performance.now() - t0;
}
try {
  await writeFile(
    sdConfig,
    `cluster: { name: bench-sd }
nodes:
${sd.hosts.map((h) => `  - name: ${h.name}\n    address: { public: ${h.address}, private: ${h.address} }\n    ssh: { user: root, keyPath: ${sd.keyFile} }\n    roles: [etcd, haproxy]`).join('\n')}
haproxy: { address: ${sd.hosts[0]!.address} }
`,
  );
  const first = await sdTimed(['up', '--trust-new-host-keys']);
  const noop: number[] = [];
  for (let i = 0; i < noops; i++) noop.push(await sdTimed(['up']));
  // h3 rebooted: powered off, booted, until its etcd member answers over mutual TLS and HAProxy listens.
  const pki = join(sd.dir, '.gardenos', 'secrets', 'pki');
  const h3 = sd.hosts[2]!;
  const t0 = performance.now();
  await sd.powerOff(h3.name);
  await sd.boot(h3.name);
  await waitFor(
    'h3 to serve again',
    async () => {
      const c = new EtcdClient(
        [`https://${h3.address}:2379`],
        { ca: join(pki, 'ca.crt'), cert: join(pki, 'etcd-client-gardenos.crt'), key: join(pki, 'etcd-client-gardenos.key') },
        { timeoutMs: 1000 },
      );
      try {
        const [s] = await c.statuses();
        return Boolean(s?.ok) && (await portOpen(h3.address, 5000));
      } finally {
        c.close();
      }
    },
    { timeoutMs: 120_000, intervalMs: 100 },
  );
  const rejoin = performance.now() - t0;
  rows.push(['systemd hosts: three containers booted (cached root)', '1', formatMs(bootMs), '-']);
  rows.push(['systemd hosts: up, first run (units, etcd as its user, HAProxy ×3)', '1', formatMs(first), '-']);
  rows.push(['systemd hosts: up, nothing to change', String(noops), formatMs(percentile(noop, 50)), formatMs(Math.max(...noop))]);
  rows.push(['systemd hosts: h3 rebooted → etcd member + HAProxy serving', '1', formatMs(rejoin), '-']);
} finally {
  await sd.cleanup();
}
process.stdout.write(`\n${table(['BENCHMARK (3 hosts over SSH)', 'N', 'P50', 'MAX'], rows)}\n`);
