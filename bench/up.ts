// `gardenos up` benchmark over real SSH to three test hosts in network
// namespaces (10.252.224.0/24, root only): the first run (files, a new etcd
// cluster, HAProxy), repeated no-change runs, a dry run, and a one-line edit
// applied (HAProxy restarts on every host). Prints a table; asserts nothing.
//   npm run bench:up          (BENCH_UP_NOOP=5)
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { table } from '../src/cli/output.ts';
import { DIST_CLI, runCli } from '../test/helpers/local.ts';
import { startTestHosts } from '../test/helpers/ssh-hosts.ts';
import { formatMs, percentile } from './stats.ts';

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
process.stdout.write(`\n${table(['BENCHMARK (3 hosts over SSH)', 'N', 'P50', 'MAX'], rows)}\n`);
