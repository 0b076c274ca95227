// The rendered files, checked by the real tools that will read them.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { createCa } from '../../src/pki/certs.ts';
import { localTopology } from '../../src/local/profile.ts';
import { renderHaproxyConfig } from '../../src/render/haproxy.ts';
import { renderPatroniConfig } from '../../src/render/patroni.ts';
import { productionTopology } from '../../src/render/topology.ts';
import { exampleConfig, haproxyFiles, patroniFiles, SECRETS } from '../helpers/fixtures.ts';

const run = promisify(execFile);

describe('rendered configs pass the real validators', () => {
  let dir = '';
  const config = exampleConfig();
  // Addresses nobody listens on, so Patroni's port checks pass.
  const local = localTopology({ ...config, local: { ...config.local, addressPrefix: '127.0.201' } });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gardenos-validate-'));
    await mkdir(join(dir, 'pki'));
    await mkdir(join(dir, 'haproxy'));
    await writeFile(join(dir, 'pki', 'ca.crt'), (await createCa('validate')).cert);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  for (const [name, topology] of [
    ['production', productionTopology(config)],
    ['local', local],
  ] as const) {
    it(`haproxy -c accepts the ${name} configuration`, async () => {
      const file = join(dir, `haproxy-${name}.cfg`);
      await writeFile(file, renderHaproxyConfig({ config, topology, files: haproxyFiles(dir), secrets: SECRETS }));
      const { stdout } = await run('haproxy', ['-c', '-f', file]);
      assert.match(stdout, /Configuration file is valid/);
    });
  }

  it('patroni --validate-config accepts the local member configuration', async (t) => {
    // The validator only checks that each etcd host:port accepts a TCP connection; listeners stand in for etcd.
    const listeners = await Promise.all(
      local.etcd.map(
        (e) =>
          new Promise<Server>((resolve, reject) => {
            const s = createServer((c) => c.destroy()).once('error', reject);
            s.listen(config.etcd.clientPort, e.address, () => resolve(s));
          }),
      ),
    );
    t.after(() => Promise.all(listeners.map((s) => new Promise((r) => s.close(r)))));
    const m = local.postgres[0]!;
    const file = join(dir, 'patroni.yml');
    await writeFile(file, renderPatroniConfig({ config, topology: local, member: m, files: patroniFiles(dir, m.name), secrets: SECRETS }));
    const res = await run('patroni', ['--validate-config', file]).then(
      (r) => ({ code: 0, out: r.stdout + r.stderr }),
      (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout + e.stderr }),
    );
    assert.equal(res.code, 0, res.out);
  });

  it('patroni --validate-config rejects a broken configuration (the check can fail)', async () => {
    const file = join(dir, 'broken.yml');
    await writeFile(file, 'scope: x\nname: y\nrestapi: {listen: "127.0.201.1:notaport"}\n');
    await assert.rejects(run('patroni', ['--validate-config', file]));
  });
});
