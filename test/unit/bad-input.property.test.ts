// No input reaches "this is a bug in GardenOS": the shipped example config and a secrets file, mutated at
// random (a value replaced by anything, a key deleted, an array item duplicated, bytes of the text garbled),
// go through `config check` and the whole production render. Every case must end in success or a
// GardenError (a clear message, no stack trace) — never another exception. Bounded, and deterministic in
// `npm test` (a fixed seed, so CI is never flaky); FC_SEED=random explores new cases, FC_SEED=<n> replays
// the seed fast-check prints with a counterexample.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { parse, stringify } from 'yaml';
import { parseConfig } from '../../src/config/load.ts';
import { GardenError } from '../../src/errors.ts';
import { renderPlatform } from '../../src/platform/render.ts';
import { ensurePlatformPki, ensurePlatformSecrets, readPlatformSecrets } from '../../src/platform/secrets.ts';

const SEED = process.env.FC_SEED === 'random' ? Date.now() % 2 ** 31 : Number(process.env.FC_SEED ?? 20261130);
const runs = (numRuns: number) => ({ numRuns, seed: SEED });

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Every path to a value in a JSON tree. */
function paths(v: Json, at: (string | number)[] = []): (string | number)[][] {
  const here = [at];
  if (Array.isArray(v)) return [...here, ...v.flatMap((x, i) => paths(x, [...at, i]))];
  if (v && typeof v === 'object') return [...here, ...Object.entries(v).flatMap(([k, x]) => paths(x, [...at, k]))];
  return here;
}

type Mutation = { kind: 'set'; at: number; value: unknown } | { kind: 'delete'; at: number } | { kind: 'duplicate'; at: number };

function mutate(tree: Json, m: Mutation): Json {
  const copy = structuredClone(tree);
  const all = paths(copy).filter((p) => p.length > 0);
  const path = all[m.at % all.length]!;
  let parent: Json = copy;
  for (const k of path.slice(0, -1)) parent = (parent as Record<string | number, Json>)[k]!;
  const key = path[path.length - 1]!;
  const holder = parent as Record<string | number, Json>;
  if (m.kind === 'set') holder[key] = m.value as Json;
  else if (m.kind === 'delete') Array.isArray(holder) ? holder.splice(key as number, 1) : delete holder[key];
  else if (Array.isArray(holder)) holder.push(structuredClone(holder[key as number]!));
  else holder[key] = structuredClone(holder[key]!);
  return copy;
}

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({
    kind: fc.constant('set' as const),
    at: fc.nat(),
    value: fc.oneof(fc.anything({ maxDepth: 2 }), fc.constantFrom('', '300.1.2.3', '10.0.0.1', -1, 0, 65536, 1e9, 'x'.repeat(300), '../..', '/', 'a b')),
  }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('duplicate' as const), at: fc.nat() }),
);

/** Success, or a GardenError; anything else is the bug this test exists to find. */
async function clearOutcome(what: string, fn: () => Promise<unknown>): Promise<void> {
  try {
    await fn();
  } catch (e) {
    if (e instanceof GardenError) return;
    assert.fail(`${what}: not a clear error but ${(e as Error)?.stack ?? String(e)}`);
  }
}

describe('no input reaches a bug message (property-based)', () => {
  let example: Json;
  let dir: string;

  before(async () => {
    example = parse(await readFile(new URL('../../examples/gardenos.yaml', import.meta.url), 'utf8')) as Json;
    dir = await mkdtemp(join(tmpdir(), 'gardenos-property-'));
    const config = parseConfig(stringify(example));
    await ensurePlatformSecrets(dir, config);
    await ensurePlatformPki(dir, config);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('a mutated config: config check and the whole render end in success or a clear error', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 3 }), async (ms) => {
        const tree = ms.reduce(mutate, example);
        await clearOutcome(`mutations ${JSON.stringify(ms)}`, async () => {
          const config = parseConfig(stringify(tree));
          // Certificates for what the mutated config names (new ingress hosts, say) into a copy-on-write scratch.
          const scratch = await mkdtemp(join(tmpdir(), 'gardenos-property-run-'));
          try {
            await writeFile(join(scratch, 'secrets.json'), await readFile(join(dir, 'secrets.json')), { mode: 0o600 });
            await ensurePlatformPki(scratch, config);
            await renderPlatform(config, { secretsDir: scratch, withSecrets: true });
          } finally {
            await rm(scratch, { recursive: true, force: true });
          }
        });
      }),
      runs(150),
    );
  });

  it('garbled bytes of the config text: a clear error or success', async () => {
    const text = stringify(example);
    await fc.assert(
      fc.property(
        fc.array(
          fc.record({ at: fc.nat({ max: text.length - 1 }), char: fc.constantFrom('{', '}', '[', ':', '\t', '"', "'", '\0', '\n', '-', '&', '*', '!', '%') }),
          { minLength: 1, maxLength: 4 },
        ),
        (edits) => {
          let t = text;
          for (const e of edits) t = t.slice(0, e.at) + e.char + t.slice(e.at + 1);
          try {
            parseConfig(t);
          } catch (e) {
            if (!(e instanceof GardenError)) assert.fail(`edits ${JSON.stringify(edits)}: ${(e as Error)?.stack ?? String(e)}`);
          }
        },
      ),
      runs(300),
    );
  });

  it('a mutated secrets file: the render ends in success or a clear error', async () => {
    const secrets = (await readPlatformSecrets(dir)) as unknown as Json;
    const config = parseConfig(stringify(example));
    await fc.assert(
      fc.asyncProperty(mutation, async (m) => {
        const scratch = await mkdtemp(join(tmpdir(), 'gardenos-property-secrets-'));
        try {
          await writeFile(join(scratch, 'secrets.json'), JSON.stringify(mutate(secrets, m)), { mode: 0o600 });
          await clearOutcome(`mutation ${JSON.stringify(m)}`, async () => {
            await ensurePlatformPki(scratch, config);
            await renderPlatform(config, { secretsDir: scratch, withSecrets: true });
          });
        } finally {
          await rm(scratch, { recursive: true, force: true });
        }
      }),
      runs(60),
    );
  });
});
