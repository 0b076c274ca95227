// Images from a Containerfile without a container engine: the recipes in images/ and examples/apps/
// are built here exactly as `docker build` would run them — the Debian base made by mmdebstrap
// (FROM debian:<suite>-slim → mmdebstrap --variant=minbase <suite>), each COPY and RUN in order in a
// chroot, then packed as an OCI archive by umoci with the Containerfile's USER, WORKDIR, ENV, EXPOSE,
// ENTRYPOINT and CMD. Only that subset is understood; anything else is refused with its line.
// Cached per machine under a key of the recipe directory's files; the archive's image is tagged "1".
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { access, mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const SELF = fileURLToPath(import.meta.url);

export type Step = { kind: 'copy'; src: string; dest: string } | { kind: 'run'; command: string; env: Record<string, string> };

export interface Recipe {
  suite: string;
  steps: Step[];
  user?: string;
  workdir?: string;
  env: Record<string, string>;
  exposed: string[];
  entrypoint?: string[];
  cmd?: string[];
}

/** Parses the Containerfile subset GardenOS's recipes use; throws naming the line of anything else. */
export function parseContainerfile(text: string): Recipe {
  const recipe: Recipe = { suite: '', steps: [], env: {}, exposed: [] };
  const args: Record<string, string> = {};
  const expand = (v: string) =>
    v.replace(/\$\{(\w+)\}|\$(\w+)/g, (m, a: string | undefined, b: string | undefined) => recipe.env[(a ?? b)!] ?? args[(a ?? b)!] ?? m);
  const json = (v: string, line: number): string[] => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(v);
    } catch {
      parsed = undefined;
    }
    if (!Array.isArray(parsed) || !parsed.every((x) => typeof x === 'string')) throw new Error(`line ${line}: only the JSON array form is supported`);
    return parsed as string[];
  };
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const at = i + 1;
    let line = lines[i]!.trim();
    while (line.endsWith('\\') && i + 1 < lines.length) line = `${line.slice(0, -1).trim()} ${lines[++i]!.trim()}`;
    if (!line || line.startsWith('#')) continue;
    const m = /^([A-Z]+)\s+(.*)$/.exec(line);
    if (!m) throw new Error(`line ${at}: not an instruction: ${line}`);
    const [, op, rest] = m as unknown as [string, string, string];
    const pairs = () => [...rest.matchAll(/(\w+)=("[^"]*"|\S*)/g)].map((p) => [p[1]!, p[2]!.replace(/^"(.*)"$/, '$1')] as const);
    switch (op) {
      case 'FROM': {
        const f = /^debian:([a-z]+)(-slim)?$/.exec(rest);
        if (!f) throw new Error(`line ${at}: FROM must be debian:<suite>[-slim], not ${rest}`);
        recipe.suite = f[1]!;
        break;
      }
      case 'ARG':
        for (const [k, v] of pairs()) args[k] = v;
        break;
      case 'ENV':
        for (const [k, v] of pairs()) recipe.env[k] = expand(v);
        break;
      case 'COPY': {
        const parts = rest.split(/\s+/);
        if (parts.length !== 2 || parts[0]!.startsWith('--')) throw new Error(`line ${at}: COPY takes one source and one destination`);
        recipe.steps.push({ kind: 'copy', src: parts[0]!, dest: expand(parts[1]!) });
        break;
      }
      case 'RUN':
        recipe.steps.push({ kind: 'run', command: rest, env: { ...args, ...recipe.env } });
        break;
      case 'USER':
        recipe.user = expand(rest);
        break;
      case 'WORKDIR':
        recipe.workdir = expand(rest);
        break;
      case 'EXPOSE':
        recipe.exposed.push(...rest.split(/\s+/).map((p) => (p.includes('/') ? p : `${p}/tcp`)));
        break;
      case 'ENTRYPOINT':
        recipe.entrypoint = json(rest, at);
        break;
      case 'CMD':
        recipe.cmd = json(rest, at);
        break;
      default:
        throw new Error(
          `line ${at}: ${op} is not supported by the engine-less build (FROM debian, ARG, ENV, COPY, RUN, USER, WORKDIR, EXPOSE, ENTRYPOINT, CMD)`,
        );
    }
  }
  if (!recipe.suite) throw new Error('no FROM debian:<suite> line');
  return recipe;
}

const shq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

async function filesOf(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await filesOf(p)));
    else if (e.isFile()) out.push(p);
  }
  return out.sort();
}

/**
 * Builds (or finds in the cache) the image of `<dir>/Containerfile`, with `<dir>` as the build context.
 * Needs root (mmdebstrap --mode=root keeps the owners the recipe sets), mmdebstrap and umoci.
 */
export async function buildImage(dir: string, name: string, opts: { cache?: string; log?: (line: string) => void } = {}): Promise<string> {
  const cache = opts.cache ?? process.env.GARDENOS_IMAGE_CACHE ?? '/var/cache/gardenos-test/debian-images';
  const hash = createHash('sha256');
  for (const f of [...(await filesOf(dir)), SELF]) hash.update(f === SELF ? 'builder' : f.slice(dir.length)).update(await readFile(f));
  const out = join(cache, `${name}-${hash.digest('hex').slice(0, 12)}`);
  const archive = join(out, `${name}.tar`);
  if (
    await access(join(out, '.complete')).then(
      () => true,
      () => false,
    )
  )
    return archive;

  const recipe = parseContainerfile(await readFile(join(dir, 'Containerfile'), 'utf8'));
  const work = await mkdtemp(join(tmpdir(), `gardenos-image-${name}-`));
  try {
    // The steps as one script mmdebstrap runs on the new root ("$1"), in the Containerfile's order.
    const script = ['set -eu', 'root="$1"'];
    for (const s of recipe.steps) {
      if (s.kind === 'copy') {
        const src = join(dir, s.src);
        const dest = s.dest.endsWith('/') ? posix.join(s.dest, basename(s.src)) : s.dest;
        script.push(
          `if [ -d ${shq(src)} ]; then mkdir -p "$root"${shq(dest)} && cp -a ${shq(src)}/. "$root"${shq(dest)}/; else mkdir -p "$root"${shq(dirname(dest))} && cp -a ${shq(src)} "$root"${shq(dest)}; fi`,
        );
      } else {
        const env = Object.entries({ PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', ...s.env }).map(([k, v]) => shq(`${k}=${v}`));
        script.push(`chroot "$root" env -i ${env.join(' ')} sh -c ${shq(s.command)}`);
      }
    }
    await writeFile(join(work, 'steps.sh'), `${script.join('\n')}\n`);
    opts.log?.(`${name}: Debian ${recipe.suite} (mmdebstrap), ${recipe.steps.length} steps`);
    await run(
      'mmdebstrap',
      [
        '--variant=minbase',
        '--mode=root',
        '--format=directory',
        '--quiet',
        `--customize-hook=sh ${shq(join(work, 'steps.sh'))} "$1"`,
        recipe.suite,
        join(work, 'rootfs'),
        'http://deb.debian.org/debian',
      ],
      { maxBuffer: 64 << 20, timeout: 1_200_000 },
    );
    const layout = join(work, 'layout');
    const image = `${layout}:1`;
    await run('umoci', ['init', '--layout', layout]);
    await run('umoci', ['new', '--image', image]);
    await run('umoci', ['unpack', '--image', image, join(work, 'bundle')], { maxBuffer: 16 << 20 });
    await rm(join(work, 'bundle', 'rootfs'), { recursive: true });
    await rename(join(work, 'rootfs'), join(work, 'bundle', 'rootfs'));
    await run('umoci', ['repack', '--image', image, join(work, 'bundle')], { maxBuffer: 16 << 20, timeout: 600_000 });
    const config = ['--author', 'gardenos'];
    if (recipe.user) config.push('--config.user', recipe.user);
    if (recipe.workdir) config.push('--config.workingdir', recipe.workdir);
    for (const [k, v] of Object.entries(recipe.env)) config.push('--config.env', `${k}=${v}`);
    for (const p of recipe.exposed) config.push('--config.exposedports', p);
    for (const e of recipe.entrypoint ?? []) config.push('--config.entrypoint', e);
    for (const c of recipe.cmd ?? []) config.push('--config.cmd', c);
    await run('umoci', ['config', '--image', image, ...config]);
    await run('umoci', ['gc', '--layout', layout]);
    await mkdir(out, { recursive: true });
    await run('tar', ['-C', layout, '-cf', archive, '.']);
    await writeFile(join(out, '.complete'), '');
    // Older builds of this image are of no further use.
    for (const old of await readdir(cache))
      if (old.startsWith(`${name}-`) && join(cache, old) !== out) await rm(join(cache, old), { recursive: true, force: true });
    return archive;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
