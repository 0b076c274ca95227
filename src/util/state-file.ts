// GardenOS's own state files (secrets, cluster records) read through a schema: a file that is missing is
// "not there yet"; one that is damaged — not JSON, a field gone or of the wrong type — is named with what
// is wrong and how to recover, never carried on into a render or a crash.
import { readFile } from 'node:fs/promises';
import type { z } from 'zod';
import { GardenError } from '../errors.ts';

export async function readStateFile<S extends z.ZodType>(path: string, schema: S, recover: string): Promise<z.infer<S> | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    throw new GardenError(
      'STATE_CONFLICT',
      `cannot read ${path}: ${code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a directory' : (e as Error).message}`,
      { hint: recover },
    );
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new GardenError('STATE_CONFLICT', `${path} is damaged: not JSON (${(e as Error).message})`, { hint: recover });
  }
  const r = schema.safeParse(data);
  if (!r.success) {
    const problems = r.error.issues.map(
      (i) => `${i.path.join('.') || '(the file)'}: ${i.code === 'invalid_type' && i.input === undefined ? 'missing' : i.message}`,
    );
    throw new GardenError(
      'STATE_CONFLICT',
      `${path} is damaged: ${problems.slice(0, 3).join('; ')}${problems.length > 3 ? ` (and ${problems.length - 3} more)` : ''}`,
      { hint: recover },
    );
  }
  return r.data;
}
