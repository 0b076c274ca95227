// The README's first command on a brand-new Debian 12 and Debian 13: a minimal
// root built from Debian's packages, with only the machine's Node.js and npm copied in.
// Set-up (install-deps, npm ci) reaches the registries from the host's network;
// the cluster (`npx gardenos local up`) runs in a network namespace the test
// makes, so it meets nothing on the host. Then a write through the primary
// endpoint and a read through the replicas endpoint, with psql from that root.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { LocalStatus } from '../../src/local/status.ts';
import { waitFor } from '../../src/util/wait.ts';
import { makeFreshRoot, makeNetns, readmeSetupCommand, type FreshRoot } from '../helpers/fresh-root.ts';

const asRoot = process.getuid?.() === 0;
const SUITES: Record<string, { name: string; postgres: number }> = {
  bookworm: { name: 'Debian 12 bookworm', postgres: 15 },
  trixie: { name: 'Debian 13 trixie', postgres: 17 },
};
const tailOf = (s: string, n = 40) => s.trimEnd().split('\n').slice(-n).join('\n');

for (const [suite, debian] of Object.entries(SUITES))
  describe(`the README on a brand-new ${debian.name} root`, {
    timeout: 1_500_000,
    skip: asRoot ? false : 'needs root to build a Debian root and a network namespace (see README)',
  }, () => {
    let root: FreshRoot | undefined;
    let removeNetns: (() => Promise<void>) | undefined;
    const netns = `gardenos-fresh-${suite}-${process.pid}`;

    after(async () => {
      if (root && removeNetns) await root.sh('npx gardenos local destroy --yes', { netns, timeoutMs: 120_000 }).catch(() => undefined);
      await root?.cleanup();
      await removeNetns?.();
    });

    it('sets up from nothing, starts the cluster, writes through the primary and reads through the replicas', async () => {
      const command = await readmeSetupCommand();
      const steps = command.split(' && ');
      assert.deepEqual(steps, ['scripts/install-deps.sh', 'npm ci', 'npx gardenos local up'], `the README's first command changed: ${command}`);

      root = await makeFreshRoot(suite);
      assert.equal((await root.sh('command -v patroni etcd haproxy psql || true')).stdout.trim(), '', 'the base root has none of the packages');

      const setup = await root.sh(steps.slice(0, 2).join(' && '));
      assert.equal(setup.code, 0, tailOf(setup.stdout + setup.stderr));
      assert.match(setup.stdout, /install-deps: ok {3}patroni >= 4: patroni 4\./);
      assert.ok(setup.stdout.includes(`install-deps: self-check passed (${debian.name}, PostgreSQL ${debian.postgres})`), tailOf(setup.stdout, 5));

      removeNetns = await makeNetns(netns);
      const up = await root.sh(steps[2]!, { netns, timeoutMs: 300_000 });
      assert.equal(up.code, 0, tailOf(up.stdout + up.stderr));
      assert.match(up.stdout, /primary \(read-write\): +postgresql:\/\/postgres@127\.0\.0\.10:5000\//);

      const st = await root.sh('npx gardenos local status --json', { netns });
      assert.equal(st.code, 0, tailOf(st.stdout + st.stderr));
      const status = JSON.parse(st.stdout) as LocalStatus;
      assert.equal(status.healthy, true, status.problems.join('\n'));
      const psql = (uri: string, sql: string) =>
        root!.sh(`PGPASSFILE=${status.endpoints.passwordFile} psql '${uri}' -v ON_ERROR_STOP=1 -qAtc "${sql}"`, { netns, timeoutMs: 60_000 });

      const write = await psql(
        status.endpoints.primary,
        "create table fresh_root(v text); insert into fresh_root values ('from a new machine'); select pg_is_in_recovery()",
      );
      assert.equal(write.code, 0, write.stderr);
      assert.equal(write.stdout.trim(), 'f', 'the primary endpoint reached the primary');
      const read = await waitFor(
        'the row on a replica',
        async () => {
          const r = await psql(status.endpoints.replicas, 'select pg_is_in_recovery(), v from fresh_root');
          return r.code === 0 && r.stdout.trim() === 't|from a new machine' ? r.stdout.trim() : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 500 },
      );
      assert.equal(read, 't|from a new machine');
    });
  });
