// The README's first command on brand-new Debian roots, timed: base tarball,
// set-up (install-deps + npm ci, from the registries), `npx gardenos local up`
// in a network namespace, and a write through the primary endpoint. Root only.
//   npm run bench:fresh          (BENCH_SUITES=bookworm,trixie; default both)
import { table } from '../src/cli/output.ts';
import { access } from 'node:fs/promises';
import { baseTarball, CACHE_DIR, makeFreshRoot, makeNetns, readmeSetupCommand } from '../test/helpers/fresh-root.ts';
import { formatMs as fmt } from './stats.ts';

const suites = (process.env.BENCH_SUITES ?? 'bookworm,trixie').split(',').filter(Boolean);
const rows: string[][] = [];
let failed = false;
const steps = (await readmeSetupCommand()).split(' && ');
for (const suite of suites) {
  const cached = await access(`${CACHE_DIR}/debian-${suite}-minbase.tar`).then(
    () => true,
    () => false,
  );
  let t = performance.now();
  await baseTarball(suite);
  const base = performance.now() - t;
  const root = await makeFreshRoot(suite);
  const netns = `gardenos-bench-${suite}`;
  const removeNetns = await makeNetns(netns);
  const row = [suite, `${fmt(base)}${cached ? ' (cached)' : ''}`];
  try {
    t = performance.now();
    const setup = await root.sh(steps.slice(0, 2).join(' && '));
    const setupMs = performance.now() - t;
    const check = /install-deps: self-check passed \(([^)]+)\)/.exec(setup.stdout)?.[1] ?? 'self-check did not pass';
    if (setup.code !== 0) throw new Error(`set-up failed: ${setup.stderr.trim().split('\n').slice(-5).join(' | ')}`);
    t = performance.now();
    const up = await root.sh(steps[2]!, { netns, timeoutMs: 300_000 });
    const upMs = performance.now() - t;
    if (up.code !== 0) throw new Error(`local up failed: ${up.stderr.trim().split('\n').slice(-5).join(' | ')}`);
    const st = JSON.parse((await root.sh('npx gardenos local status --json', { netns })).stdout) as { endpoints: { primary: string; passwordFile: string } };
    const w = await root.sh(
      `PGPASSFILE=${st.endpoints.passwordFile} psql '${st.endpoints.primary}' -qAtc 'create table b(x int); insert into b values (1); select count(*) from b'`,
      { netns },
    );
    const patroni = (await root.sh('patroni --version')).stdout.trim();
    rows.push([...row, fmt(setupMs), fmt(upMs), fmt(setupMs + upMs), w.stdout.trim() === '1' ? 'ok' : `failed: ${w.stderr.trim()}`, `${check}; ${patroni}`]);
  } catch (e) {
    failed = true;
    rows.push([...row, '-', '-', '-', 'failed', (e as Error).message]);
  } finally {
    await root.sh('npx gardenos local destroy --yes', { netns, timeoutMs: 120_000 }).catch(() => undefined);
    await root.cleanup();
    await removeNetns();
  }
  process.stderr.write(`${suite}: ${rows.at(-1)!.join(' | ')}\n`);
}
process.stdout.write(`\n${table(['DEBIAN', 'BASE', 'SET-UP (deps + npm ci)', 'LOCAL UP', 'BASE → CLUSTER READY', 'WRITE', 'WHAT RAN'], rows)}\n`);
if (failed) process.exitCode = 1;
