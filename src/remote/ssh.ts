// One SSH connection per host (ssh2): host keys verified against known_hosts
// (never accepted blindly; `trustNew` records a first-seen key), key or agent
// authentication, sudo when the user is not root, a deadline per command, and
// atomic uploads (temporary file, mode, rename). Every failure names the host.
import { createHash, createHmac } from 'node:crypto';
import { appendFile, mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { homedir } from 'node:os';
import type { Client, ConnectConfig } from 'ssh2';
import { describe, GardenError } from '../errors.ts';

export interface SshTarget {
  /** The node's name, for messages. */
  name: string;
  host: string;
  port: number;
  user: string;
  keyPath?: string;
  /** Reach the node through this host (a TCP forward over an SSH connection to it), as ProxyJump does. */
  bastion?: { host: string; port: number; user: string; keyPath?: string };
}

/** SSH target of a node in gardenos.yaml. */
export function nodeTarget(node: {
  name: string;
  address: { private: string };
  ssh: {
    port: number;
    user: string;
    keyPath?: string | undefined;
    bastion?: { host: string; port: number; user: string; keyPath?: string | undefined } | undefined;
  };
}): SshTarget {
  const b = node.ssh.bastion;
  return {
    name: node.name,
    host: node.address.private,
    port: node.ssh.port,
    user: node.ssh.user,
    ...(node.ssh.keyPath ? { keyPath: node.ssh.keyPath } : {}),
    ...(b ? { bastion: { host: b.host, port: b.port, user: b.user, ...(b.keyPath ? { keyPath: b.keyPath } : {}) } } : {}),
  };
}

export interface SshOptions {
  knownHostsFile?: string;
  /** Record the key of a host that known_hosts does not list yet (first use); a changed key is always refused. */
  trustNew?: boolean;
  connectTimeoutMs?: number;
  commandTimeoutMs?: number;
  /** Connection attempts before giving up (a host that is still booting). */
  retries?: number;
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

const expand = (p: string) => (p.startsWith('~/') ? `${homedir()}/${p.slice(2)}` : p);

/** The known_hosts key for a host: `host` on port 22, `[host]:port` otherwise. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** The keys known_hosts lists for a name (plain entries; hashed `|1|` entries are matched too). */
export function knownKeys(text: string, name: string): { type: string; key: Buffer }[] {
  const out: { type: string; key: Buffer }[] = [];
  for (const line of text.split('\n')) {
    const parts = line.trim().split(/\s+/);
    if (parts.length < 3 || parts[0]!.startsWith('#') || parts[0]!.startsWith('@')) continue;
    const [hosts, type, b64] = parts as [string, string, string];
    // Plain names, or OpenSSH's hashed form |1|salt|HMAC-SHA1(salt, name).
    const matches = hosts.split(',').some((h) => {
      if (!h.startsWith('|1|')) return h === name;
      const [, , salt, hash] = h.split('|');
      return createHmac('sha1', Buffer.from(salt!, 'base64')).update(name).digest('base64') === hash;
    });
    if (matches) out.push({ type, key: Buffer.from(b64, 'base64') });
  }
  return out;
}

export interface UploadFile {
  path: string;
  content: string;
  mode: number;
  owner?: string;
  /** A file the host had before GardenOS (a package's configuration): kept beside it once, as originalOf(path). */
  keepOriginal?: boolean;
}

/** The directories holding `path` below the top level (/etc/gardenos/pki for /etc/gardenos/pki/ca.crt: /etc/gardenos, /etc/gardenos/pki). */
export function directoriesBelowTop(path: string): string[] {
  const parts = path.split('/').filter(Boolean).slice(0, -1);
  return parts.slice(1).map((_, i) => `/${parts.slice(0, i + 2).join('/')}`);
}

/** Where upload keeps a file's original (keepOriginal), for `reset` to restore. */
export const originalOf = (path: string) => `${path}.gardenos-orig`;

export class SshHost {
  readonly target: SshTarget;
  private client: Client | undefined;
  private jump: SshHost | undefined;
  private readonly opts: Required<Pick<SshOptions, 'connectTimeoutMs' | 'commandTimeoutMs' | 'retries'>> & SshOptions;

  constructor(target: SshTarget, opts: SshOptions = {}) {
    this.target = target;
    this.opts = { connectTimeoutMs: 10_000, commandTimeoutMs: 120_000, retries: 2, ...opts };
  }

  private get knownHosts(): string {
    return expand(this.opts.knownHostsFile ?? '~/.ssh/known_hosts');
  }

  async connect(): Promise<void> {
    let last: unknown;
    for (let attempt = 0; attempt <= this.opts.retries; attempt++) {
      try {
        await this.connectOnce();
        return;
      } catch (e) {
        last = e;
        // A refused host key is not a transient failure.
        if (e instanceof GardenError && e.code === 'STATE_CONFLICT') throw e;
        if (attempt < this.opts.retries) await new Promise((r) => setTimeout(r, 500 * (attempt + 1)));
      }
    }
    throw last;
  }

  private async connectOnce(): Promise<void> {
    const { Client } = (await import('ssh2')).default as unknown as { Client: new () => Client };
    const t = this.target;
    // Through a bastion: its host key is checked like any other, then a TCP forward carries this connection.
    let sock: import('node:stream').Duplex | undefined;
    if (t.bastion) {
      const b = t.bastion;
      this.jump?.close();
      this.jump = new SshHost(
        {
          name: `${t.name}'s bastion ${b.host}`,
          host: b.host,
          port: b.port,
          user: b.user,
          ...(b.keyPath ? { keyPath: b.keyPath } : t.keyPath ? { keyPath: t.keyPath } : {}),
        },
        { ...this.opts, retries: 0 },
      );
      await this.jump.connect();
      sock = await this.jump.forward(t.host, t.port);
    }
    const name = knownHostsName(t.host, t.port);
    const known = knownKeys(await readFile(this.knownHosts, 'utf8').catch(() => ''), name);
    let refused: GardenError | undefined;
    let toRecord: string | undefined;
    const config: ConnectConfig = {
      host: t.host,
      port: t.port,
      username: t.user,
      readyTimeout: this.opts.connectTimeoutMs,
      ...(sock ? { sock } : {}),
      ...(t.keyPath
        ? {
            privateKey: await readFile(expand(t.keyPath)).catch((e) => {
              throw new GardenError('CONFIG_NOT_FOUND', `${t.name}: cannot read the SSH key ${t.keyPath}: ${describe(e)}`, {
                hint: `set nodes[].ssh.keyPath for ${t.name}, or load the key into ssh-agent`,
              });
            }),
          }
        : {}),
      ...(process.env.SSH_AUTH_SOCK ? { agent: process.env.SSH_AUTH_SOCK } : {}),
      hostVerifier: (key: Buffer) => {
        if (known.some((k) => k.key.equals(key))) return true;
        const fingerprint = `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
        if (known.length > 0) {
          refused = new GardenError('STATE_CONFLICT', `${t.name} (${name}) presented host key ${fingerprint}, which is not the one in ${this.knownHosts}`, {
            hint: 'if the host was reinstalled, remove its old line (ssh-keygen -R) and connect again with --trust-new-host-keys; otherwise someone may be in between',
          });
          return false;
        }
        if (!this.opts.trustNew) {
          refused = new GardenError('STATE_CONFLICT', `${t.name} (${name}) is not in ${this.knownHosts}; its host key is ${fingerprint}`, {
            hint: 'check the fingerprint on the host (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), then run again with --trust-new-host-keys to record it',
          });
          return false;
        }
        toRecord = `${name} ${keyType(key)} ${key.toString('base64')}\n`;
        return true;
      },
    };
    if (!config.privateKey && !config.agent)
      throw new GardenError('CONFIG_NOT_FOUND', `${t.name}: no SSH key to log in with`, {
        hint: `set nodes[].ssh.keyPath for ${t.name}, or start ssh-agent (SSH_AUTH_SOCK)`,
      });
    const client = new Client();
    await new Promise<void>((resolve, reject) => {
      client.once('ready', () => resolve());
      client.once('error', (e: Error) =>
        reject(
          refused ??
            new GardenError('BACKEND_UNAVAILABLE', `${t.name} (${t.user}@${name}): ${describe(e)}`, {
              cause: e,
              hint: 'is the host up and its SSH server reachable from here?',
            }),
        ),
      );
      client.connect(config);
    });
    if (toRecord) {
      await mkdir(dirname(this.knownHosts), { recursive: true, mode: 0o700 });
      await appendFile(this.knownHosts, toRecord, { mode: 0o600 });
    }
    this.client = client;
  }

  /** Runs a shell command (through sudo when the user is not root); stdin when given. */
  exec(command: string, opts: { stdin?: string | Buffer; timeoutMs?: number } = {}): Promise<ExecResult> {
    const client = this.client;
    if (!client) return Promise.reject(new GardenError('NOT_RUNNING', `${this.target.name}: not connected`));
    const wrapped = this.target.user === 'root' ? command : `sudo -n sh -c ${shellQuote(command)}`;
    const timeoutMs = opts.timeoutMs ?? this.opts.commandTimeoutMs;
    return new Promise((resolve, reject) => {
      client.exec(wrapped, (err, stream) => {
        if (err) return reject(new GardenError('BACKEND_UNAVAILABLE', `${this.target.name}: ${describe(err)}`, { cause: err }));
        const out: Buffer[] = [];
        const errOut: Buffer[] = [];
        const timer = setTimeout(() => {
          stream.close();
          reject(new GardenError('TIMEOUT', `${this.target.name}: \`${command.slice(0, 80)}\` did not finish within ${Math.round(timeoutMs / 1000)}s`));
        }, timeoutMs);
        stream.on('data', (c: Buffer) => out.push(c));
        stream.stderr.on('data', (c: Buffer) => errOut.push(c));
        stream.on('close', (code: number | null) => {
          clearTimeout(timer);
          resolve({ code: code ?? 1, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(errOut).toString('utf8') });
        });
        if (opts.stdin !== undefined) stream.end(opts.stdin);
        else stream.end();
      });
    });
  }

  /** exec that must succeed; the error names the host, the step and the command's own words. */
  async must(step: string, command: string, opts: { stdin?: string | Buffer; timeoutMs?: number } = {}): Promise<string> {
    const r = await this.exec(command, opts);
    if (r.code !== 0) {
      throw new GardenError('MEMBER_FAILED', `${this.target.name}: ${step} failed (exit ${r.code})`, {
        details: [`$ ${command.slice(0, 200)}`, ...(r.stderr || r.stdout).trim().split('\n').slice(-6)],
      });
    }
    return r.stdout;
  }

  /**
   * Writes files atomically, each as a temporary file beside it with its mode and owner, then
   * renamed into place — all in one command (each command costs a round of the SSH server's
   * process start-up). Stops at the first failure; files written before it stay written. The
   * directories are 0755 (below the top level, made so if an earlier version left them 0700): the
   * services that read these files run as their own users (etcd as etcd), and each file's own
   * mode keeps what is secret (keys 0600) to its owner.
   */
  async upload(files: UploadFile[]): Promise<void> {
    if (files.length === 0) return;
    const script = ['set -e', 'umask 077'];
    for (const f of files) {
      const dir = f.path.slice(0, f.path.lastIndexOf('/')) || '/';
      const tmp = shellQuote(`${f.path}.gardenos-tmp`);
      const below = directoriesBelowTop(f.path);
      script.push(
        `echo ${shellQuote(`writing ${f.path}`)} >&2`,
        `(umask 022 && mkdir -p ${shellQuote(dir)})${below.length ? ` && chmod 755 ${below.map(shellQuote).join(' ')}` : ''}`,
        // The file as the host had it before GardenOS first wrote it, for `reset` to put back.
        ...(f.keepOriginal
          ? [`[ ! -e ${shellQuote(f.path)} ] || [ -e ${shellQuote(originalOf(f.path))} ] || cp -p ${shellQuote(f.path)} ${shellQuote(originalOf(f.path))}`]
          : []),
        `printf '%s' ${shellQuote(Buffer.from(f.content).toString('base64'))} | base64 -d > ${tmp}`,
        `chmod ${f.mode.toString(8)} ${tmp} && chown ${f.owner ?? 'root:root'} ${tmp} && mv -f ${tmp} ${shellQuote(f.path)}`,
      );
    }
    const r = await this.exec('sh -s', { stdin: `${script.join('\n')}\n` });
    if (r.code !== 0) {
      const step =
        r.stderr
          .trim()
          .split('\n')
          .filter((l) => l.startsWith('writing '))
          .pop() ?? 'writing files';
      throw new GardenError('MEMBER_FAILED', `${this.target.name}: ${step} failed (exit ${r.code})`, {
        details: r.stderr
          .trim()
          .split('\n')
          .filter((l) => !l.startsWith('writing '))
          .slice(-6),
      });
    }
  }

  /** A TCP connection from this host to another (for a node behind this bastion). */
  forward(host: string, port: number): Promise<import('node:stream').Duplex> {
    const client = this.client;
    if (!client) return Promise.reject(new GardenError('NOT_RUNNING', `${this.target.name}: not connected`));
    return new Promise((resolve, reject) =>
      client.forwardOut('127.0.0.1', 0, host, port, (err, stream) =>
        err
          ? reject(new GardenError('BACKEND_UNAVAILABLE', `${this.target.name} cannot reach ${host}:${port}: ${describe(err)}`, { cause: err }))
          : resolve(stream),
      ),
    );
  }

  close(): void {
    this.client?.end();
    this.client = undefined;
    this.jump?.close();
    this.jump = undefined;
  }
}

export function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

function keyType(key: Buffer): string {
  // An SSH public key blob starts with its type as a length-prefixed string.
  const len = key.readUInt32BE(0);
  return key.subarray(4, 4 + len).toString('ascii');
}
