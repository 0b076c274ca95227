// known_hosts matching, against files OpenSSH's own ssh-keygen writes and hashes.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { knownHostsName, knownKeys } from '../../src/remote/ssh.ts';

const run = promisify(execFile);

describe('known_hosts', () => {
  let dir: string;
  let key: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gardenos-known-'));
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'k')]);
    key = (await readFile(join(dir, 'k.pub'), 'utf8')).split(' ').slice(0, 2).join(' ');
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('names a host as OpenSSH does: bare on port 22, [host]:port otherwise', () => {
    assert.equal(knownHostsName('10.0.0.1', 22), '10.0.0.1');
    assert.equal(knownHostsName('10.0.0.2', 2222), '[10.0.0.2]:2222');
  });

  it('finds plain and hashed entries, and nothing for other names', async () => {
    const file = join(dir, 'known_hosts');
    await writeFile(file, `# a comment\n10.0.0.1,garden-1 ${key}\n[10.0.0.2]:2222 ${key}\n`);
    const blob = Buffer.from(key.split(' ')[1]!, 'base64');
    const plain = await readFile(file, 'utf8');
    assert.ok(knownKeys(plain, 'garden-1')[0]!.key.equals(blob));
    assert.equal(knownKeys(plain, '10.0.0.3').length, 0);
    // ssh-keygen -H rewrites every name as |1|salt|hmac, as HashKnownHosts does.
    await run('ssh-keygen', ['-H', '-f', file]);
    const hashed = await readFile(file, 'utf8');
    assert.doesNotMatch(hashed, /10\.0\.0\.1/);
    assert.equal(knownKeys(hashed, '10.0.0.1')[0]!.type, 'ssh-ed25519');
    assert.equal(knownKeys(hashed, '[10.0.0.2]:2222').length, 1);
    assert.equal(knownKeys(hashed, '10.0.0.2').length, 0, 'another port is another host');
  });
});
