// Runs the local cluster's daemons as detached processes that outlive the
// command, each with a pid file and a log file. A pid counts as ours only if
// /proc shows it alive and running our command line, so a reused pid is never
// mistaken for a member.
import { spawn } from 'node:child_process';
import { closeSync, openSync, writeSync } from 'node:fs';
import { open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { START_MARKER } from '../doctor/causes.ts';
import type { Owner } from '../util/files.ts';
import { writeFileAtomic } from '../util/files.ts';

export interface ProcessSpec {
  /** Stable id: etcd-node1, patroni-node2, haproxy. */
  id: string;
  command: string;
  args: string[];
  cwd: string;
  env?: NodeJS.ProcessEnv;
  owner?: Owner;
  logFile: string;
  /** A string that appears in the process's command line (its config file path). */
  match: string;
  /** Where it serves HTTP, and the path that answers 200 once it is ready (the monitoring processes). */
  listen?: { host: string; port: number; readyPath: string };
}

export interface Supervisor {
  start(spec: ProcessSpec): Promise<number>;
  pid(spec: Pick<ProcessSpec, 'id' | 'match'>): Promise<number | undefined>;
  stop(spec: Pick<ProcessSpec, 'id' | 'match'>, opts?: { signal?: NodeJS.Signals; graceMs?: number }): Promise<boolean>;
}

async function procAlive(pid: number, match: string): Promise<boolean> {
  // A process in the middle of an exec (`ip netns exec` becoming the daemon, just after start) shows an
  // empty command line for an instant: look again before calling it gone.
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
      // Field 3, after the parenthesised command name, is the state; Z is a zombie.
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      if (state === 'Z' || state === 'X') return false;
      const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').join(' ');
      if (cmdline.trim()) return cmdline.includes(match);
    } catch {
      return false;
    }
    await sleep(20);
  }
  return false;
}

export function createSupervisor(pidsDir: string): Supervisor {
  const pidFile = (id: string) => join(pidsDir, `${id}.pid`);

  async function pid(spec: Pick<ProcessSpec, 'id' | 'match'>): Promise<number | undefined> {
    const text = await readFile(pidFile(spec.id), 'utf8').catch(() => undefined);
    const n = Number(text?.trim());
    if (!Number.isInteger(n) || n <= 0) return undefined;
    return (await procAlive(n, spec.match)) ? n : undefined;
  }

  return {
    pid,
    async start(spec) {
      const fd = openSync(spec.logFile, 'a', 0o640);
      try {
        // "Since the last start" for `up`'s and doctor's reading of the log.
        writeSync(fd, `${START_MARKER}${spec.id} at ${new Date().toISOString()} ---\n`);
        const child = spawn(spec.command, spec.args, {
          cwd: spec.cwd,
          env: spec.env ?? process.env,
          detached: true, // its own process group: it survives the CLI and a Ctrl-C in its terminal
          stdio: ['ignore', fd, fd],
          ...(spec.owner ? { uid: spec.owner.uid, gid: spec.owner.gid } : {}),
        });
        const started = await new Promise<number>((resolve, reject) => {
          child.once('error', reject);
          child.once('spawn', () => resolve(child.pid!));
        });
        child.unref();
        await writeFileAtomic(pidFile(spec.id), `${started}\n`, 0o644);
        return started;
      } finally {
        closeSync(fd);
      }
    },
    async stop(spec, opts = {}) {
      const n = await pid(spec);
      if (n === undefined) {
        await rm(pidFile(spec.id), { force: true });
        return false;
      }
      const grace = opts.graceMs ?? 30_000;
      process.kill(n, opts.signal ?? 'SIGTERM');
      const deadline = Date.now() + grace;
      while (Date.now() < deadline && (await procAlive(n, spec.match))) await sleep(50);
      if (await procAlive(n, spec.match)) {
        process.kill(n, 'SIGKILL');
        while (await procAlive(n, spec.match)) await sleep(20);
      }
      await rm(pidFile(spec.id), { force: true });
      return true;
    },
  };
}

/** The last `n` lines of a log file (read from its last `maxBytes` only: logs grow), for messages about a member. */
export async function tail(file: string, n = 20, maxBytes = 256 * 1024): Promise<string[]> {
  const fh = await open(file, 'r').catch(() => undefined);
  if (!fh) return [];
  try {
    const { size } = await fh.stat();
    const len = Math.min(size, maxBytes);
    const buf = Buffer.alloc(len);
    await fh.read(buf, 0, len, size - len);
    const lines = buf.toString('utf8').trimEnd().split('\n');
    if (len < size) lines.shift(); // a partial first line
    return lines.slice(-n).filter(Boolean);
  } finally {
    await fh.close();
  }
}
