// File writes that never leave a half-written file behind (temporary file and
// rename) and that set mode and owner before the file becomes visible.
import { randomBytes } from 'node:crypto';
import { chmod, chown, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

export interface Owner {
  uid: number;
  gid: number;
}

/** Creates `path` with `mode` and `owner`; missing parents are created open (0755) so other users can pass through. */
export async function ensureDir(path: string, mode: number, owner?: Owner): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o755 });
  await mkdir(path, { recursive: true, mode });
  await chmod(path, mode);
  if (owner) await chown(path, owner.uid, owner.gid);
}

/** Writes `content` atomically; returns whether the file's content changed. */
export async function writeFileAtomic(path: string, content: string, mode = 0o644, owner?: Owner): Promise<boolean> {
  const before = await readFile(path, 'utf8').catch(() => undefined);
  if (before === content) {
    await chmod(path, mode);
    if (owner) await chown(path, owner.uid, owner.gid);
    return false;
  }
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, content, { mode });
    await chmod(tmp, mode); // the umask may have narrowed it
    if (owner) await chown(tmp, owner.uid, owner.gid);
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  return true;
}

export async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}
