// `gardenos init` and `gardenos config check|show|schema`.
import { access, copyFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { z } from 'zod';
import { loadConfig } from '../config/load.ts';
import { maskSecrets } from '../config/mask.ts';
import { configSchema } from '../config/schema.ts';
import { GardenError } from '../errors.ts';

export const EXAMPLE_FILE = fileURLToPath(new URL('../../examples/gardenos.yaml', import.meta.url));

export async function initCommand(file: string, opts: { force?: boolean }): Promise<number> {
  const exists = await access(file).then(
    () => true,
    () => false,
  );
  if (exists && !opts.force) {
    throw new GardenError('STATE_CONFLICT', `${file} already exists; nothing was written`, { hint: 'pass --force to overwrite it' });
  }
  await copyFile(EXAMPLE_FILE, file);
  process.stdout.write(`wrote ${file}: the journal's three-node platform; edit the addresses and run \`gardenos config check -c ${file}\`\n`);
  return 0;
}

export async function checkCommand(file: string): Promise<number> {
  const c = await loadConfig(file);
  process.stdout.write(`${file} is valid: cluster ${c.cluster.name}, ${c.nodes.length} nodes, ${c.apps.length} apps\n`);
  return 0;
}

export async function showCommand(file: string, json: boolean | undefined): Promise<number> {
  const c = maskSecrets(await loadConfig(file));
  process.stdout.write(json ? `${JSON.stringify(c, null, 2)}\n` : stringify(c, { lineWidth: 0 }));
  return 0;
}

export function jsonSchema(): unknown {
  return { $id: 'https://gardenos.dev/schema/gardenos.json', title: 'gardenos.yaml', ...z.toJSONSchema(configSchema, { io: 'input' }) };
}

export function schemaCommand(): number {
  process.stdout.write(`${JSON.stringify(jsonSchema(), null, 2)}\n`);
  return 0;
}
