// A real S3-compatible object store for the tests: SeaweedFS's `weed mini` (master, volume, filer and S3 gateway in
// one process), built from its Go module by scripts/build-seaweedfs.sh, serving S3 over TLS with a certificate from
// a CA made here, one access key, and the bucket made at start. pgBackRest verifies the endpoint's certificate by
// DNS name only, so it answers on localhost (127.0.0.1) on ports of the caller's choosing — or on another address
// of this machine with a name of the caller's in its certificate (the platform's pods reach it by a cluster DNS
// name). `stop` kills it and removes its files, also after a failed start.
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createCa, issue } from '../../src/pki/certs.ts';
import { waitFor } from '../../src/util/wait.ts';

const run = promisify(execFile);
const BUILD = new URL('../../scripts/build-seaweedfs.sh', import.meta.url).pathname;

export interface S3Server {
  /** host:port of the S3 API. */
  endpoint: string;
  bucket: string;
  /** The CA of the endpoint's certificate, and the access key file (mode 0600), as backups.repository.s3 names them. */
  caFile: string;
  credentialsFile: string;
  /** The filer's HTTP API, to look at what is stored without S3 (GET <filer>/buckets/<bucket>/<path>). */
  filer: string;
  stop(): Promise<void>;
}

/**
 * Starts SeaweedFS in `dir` with its ports from `portBase` up (ten of them), and waits until the bucket takes requests.
 * `address` (default 127.0.0.1) is where it listens; `name` (default localhost) the endpoint's name, in its certificate.
 */
export async function startS3(o: { dir: string; portBase: number; bucket: string; address?: string; name?: string }): Promise<S3Server> {
  const address = o.address ?? '127.0.0.1';
  const name = o.name ?? 'localhost';
  const weed = (await run('bash', [BUILD], { maxBuffer: 1 << 20 })).stdout.trim();
  await mkdir(join(o.dir, 'data'), { recursive: true });
  const ca = await createCa('gardenos test S3 CA', 2);
  const leaf = await issue(ca, { commonName: name, ips: [], dnsNames: [name], usage: 'server' });
  const file = (name: string) => join(o.dir, name);
  await writeFile(file('ca.crt'), ca.cert);
  await writeFile(file('s3.crt'), leaf.cert);
  await writeFile(file('s3.key'), leaf.key, { mode: 0o600 });
  const key = { accessKeyId: `GARDENOS${randomBytes(6).toString('hex').toUpperCase()}`, secretAccessKey: randomBytes(24).toString('base64url') };
  await writeFile(file('credentials.json'), JSON.stringify(key), { mode: 0o600 });
  await writeFile(
    file('s3.json'),
    JSON.stringify({
      identities: [
        {
          name: 'gardenos',
          credentials: [{ accessKey: key.accessKeyId, secretKey: key.secretAccessKey }],
          actions: ['Admin', 'Read', 'Write', 'List', 'Tagging'],
        },
      ],
    }),
    { mode: 0o600 },
  );
  const p = (i: number) => String(o.portBase + i);
  const args = [
    'mini',
    `-dir=${file('data')}`,
    `-ip=${address}`,
    `-ip.bind=${address}`,
    `-master.port=${p(0)}`,
    `-master.port.grpc=${p(1)}`,
    `-volume.port=${p(2)}`,
    `-volume.port.grpc=${p(3)}`,
    `-filer.port=${p(4)}`,
    `-filer.port.grpc=${p(5)}`,
    `-s3.port=${p(6)}`,
    `-s3.port.grpc=${p(7)}`,
    `-admin.port=${p(8)}`,
    `-admin.port.grpc=${p(9)}`,
    '-admin.port.legacy=0',
    '-s3.port.iceberg=0',
    '-s3.port.lance=0',
    '-webdav=false',
    `-s3.config=${file('s3.json')}`,
    `-s3.cert.file=${file('s3.crt')}`,
    `-s3.key.file=${file('s3.key')}`,
    `-bucket=${o.bucket}`,
  ];
  const { openSync } = await import('node:fs');
  const log = openSync(file('weed.log'), 'a');
  const child = spawn(weed, args, { detached: true, stdio: ['ignore', log, log] });
  child.unref();
  const stop = async () => {
    try {
      if (child.pid) process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
    await rm(o.dir, { recursive: true, force: true });
  };
  const endpoint = `${name}:${p(6)}`;
  const filer = `http://${address}:${p(4)}`;
  try {
    // Ready when the bucket made at start lists (pgBackRest itself, as GardenOS will use it): the S3 port answers a little before it exists.
    const probe = file('probe.conf');
    await writeFile(
      probe,
      [
        '[global]',
        'repo1-type=s3',
        'repo1-path=/',
        `repo1-s3-endpoint=${name}`,
        // Readiness only, at its address (the name may be one only the platform's pods resolve; pgBackRest checks the
        // certificate against the host it connects to): the certificate is checked by every real use, not here.
        `repo1-storage-host=${address}`,
        'repo1-storage-verify-tls=n',
        `repo1-storage-port=${p(6)}`,
        `repo1-s3-bucket=${o.bucket}`,
        'repo1-s3-region=us-east-1',
        'repo1-s3-uri-style=path',
        `repo1-s3-key=${key.accessKeyId}`,
        `repo1-s3-key-secret=${key.secretAccessKey}`,
        `lock-path=${file('lock')}`,
        'log-level-file=off',
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    await waitFor(
      `SeaweedFS's S3 gateway on ${endpoint} with bucket ${o.bucket}`,
      async () => {
        if (child.exitCode !== null) throw new Error(`weed exited ${child.exitCode}; see ${file('weed.log')}`);
        await run('pgbackrest', [`--config=${probe}`, '--io-timeout=5', 'repo-ls'], { timeout: 10_000 });
        return true;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    await rm(probe);
  } catch (e) {
    const { readFile } = await import('node:fs/promises');
    const tail = (await readFile(file('weed.log'), 'utf8').catch(() => '')).split('\n').slice(-15).join('\n');
    await stop();
    throw new Error(`${(e as Error).message} ${((e as { details?: string[] }).details ?? []).join('; ')}\n${tail}`);
  }
  return { endpoint, bucket: o.bucket, caFile: file('ca.crt'), credentialsFile: file('credentials.json'), filer, stop };
}
