// Reads gardenos.yaml: YAML with positions, then schema (defaults + types),
// then cross-field rules. Every problem names the field path, the line and
// column, and what is allowed; all problems are reported at once.
import { readFile } from 'node:fs/promises';
import { isMap, isSeq, LineCounter, parseDocument, visit, type Document, type Node as YamlNode } from 'yaml';
import type { z } from 'zod';
import { GardenError } from '../errors.ts';
import { checkRules } from './rules.ts';
import { configSchema, type Config } from './schema.ts';

export interface ConfigProblem {
  path: string;
  line?: number;
  column?: number;
  message: string;
}

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out ? `.${String(p)}` : String(p);
  }
  return out || '(top level)';
}

function locate(doc: Document, lines: LineCounter, path: readonly PropertyKey[], key?: string): { line: number; column: number } | undefined {
  // Walk as deep as the document goes; a missing field is reported at its parent.
  let node: unknown = doc.contents;
  let pos: number | undefined = (doc.contents as YamlNode | null)?.range?.[0];
  const steps = key === undefined ? path : [...path, key];
  for (const step of steps) {
    if (isMap(node)) {
      const pair = node.items.find((it) => (it.key as { value?: unknown } | null)?.value === step);
      if (!pair) break;
      const target = key !== undefined && step === key ? pair.key : pair.value;
      pos = (target as YamlNode | null)?.range?.[0] ?? (pair.key as YamlNode | null)?.range?.[0] ?? pos;
      node = pair.value;
    } else if (isSeq(node) && typeof step === 'number') {
      const item = node.items[step] as YamlNode | undefined;
      if (!item) break;
      pos = item.range?.[0] ?? pos;
      node = item;
    } else break;
  }
  if (pos === undefined) return undefined;
  const { line, col } = lines.linePos(pos);
  return { line, column: col };
}

function describeValue(doc: Document, path: readonly PropertyKey[]): string {
  const v = doc.getIn(path as unknown[]);
  if (v === undefined || v === null || typeof v === 'object') return '';
  return ` (got ${JSON.stringify(v)})`;
}

function issueMessage(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_value':
      return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'invalid_type':
      return issue.input === undefined
        ? `is required (${issue.expected})`
        : `must be ${issue.expected === 'array' ? 'a list' : issue.expected === 'object' ? 'a mapping' : `a ${issue.expected}`}`;
    default:
      return issue.message;
  }
}

/** Validates already-parsed data; `doc` gives positions when the data came from YAML. */
export function validateConfig(data: unknown, source?: { doc: Document; lines: LineCounter }): { config?: Config; problems: ConfigProblem[] } {
  const parsed = configSchema.safeParse(data ?? {}, { reportInput: true });
  const at = (path: readonly PropertyKey[], key?: string) => (source ? locate(source.doc, source.lines, path, key) : undefined);
  if (!parsed.success) {
    const problems: ConfigProblem[] = [];
    for (const issue of parsed.error.issues) {
      if (issue.code === 'unrecognized_keys') {
        for (const key of issue.keys) {
          const path = [...issue.path, key];
          problems.push({ path: formatPath(path), ...at(issue.path, key), message: `unknown key; allowed here: ${allowedKeys(issue.path).join(', ')}` });
        }
        continue;
      }
      const got = source ? describeValue(source.doc, issue.path) : '';
      problems.push({ path: formatPath(issue.path), ...at(issue.path), message: issueMessage(issue) + got });
    }
    return { problems };
  }
  const problems = checkRules(parsed.data).map((r) => ({ path: formatPath(r.path), ...at(r.path), message: r.message }));
  return problems.length ? { problems } : { config: parsed.data, problems };
}

function allowedKeys(path: readonly PropertyKey[]): string[] {
  // Walk the schema alongside the path to list the keys a mapping accepts.
  let s: z.ZodType = configSchema;
  for (const step of path) {
    s = unwrap(s);
    const def = (s as unknown as { _zod: { def: { type: string; shape?: Record<string, z.ZodType>; element?: z.ZodType; valueType?: z.ZodType } } })._zod.def;
    if (def.type === 'object' && typeof step === 'string' && def.shape?.[step]) s = def.shape[step];
    else if (def.type === 'array' && typeof step === 'number' && def.element) s = def.element;
    else return [];
  }
  const def = (unwrap(s) as unknown as { _zod: { def: { type: string; shape?: Record<string, unknown> } } })._zod.def;
  return def.type === 'object' && def.shape ? Object.keys(def.shape) : [];
}

function unwrap(s: z.ZodType): z.ZodType {
  let cur = s as unknown as { _zod: { def: { type: string; innerType?: unknown; in?: unknown } } };
  for (;;) {
    const def = cur._zod.def;
    if (['default', 'prefault', 'optional', 'nullable'].includes(def.type) && def.innerType) cur = def.innerType as typeof cur;
    // A section with a transform (postgres: its image from flavor and version) is a pipe from the object.
    else if (def.type === 'pipe' && def.in) cur = def.in as typeof cur;
    else break;
  }
  return cur as unknown as z.ZodType;
}

export function formatProblems(file: string, problems: readonly ConfigProblem[]): string[] {
  return problems.map((p) => `${file}${p.line ? `:${p.line}:${p.column}` : ''}: ${p.path}: ${p.message}`);
}

/** Parses YAML text into a valid Config or throws a GardenError listing every problem. */
export function parseConfig(text: string, file = 'gardenos.yaml'): Config {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length) {
    const problems = doc.errors.map((e) => {
      const { line, col } = lines.linePos(e.pos[0]);
      return `${file}:${line}:${col}: YAML syntax: ${e.message.split('\n')[0]}`;
    });
    throw new GardenError('CONFIG_INVALID', `${file} is not valid YAML`, { details: problems, hint: 'fix the syntax at the positions shown' });
  }
  let data: unknown;
  try {
    // Anchors and aliases are YAML's own; a bounded count keeps an alias bomb from expanding.
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    // An alias with no anchor before it, or too many aliases: yaml knows where the first alias is.
    let at = '';
    visit(doc, {
      Alias(_, node) {
        if (at || !node.range) return;
        const { line, col } = lines.linePos(node.range[0]);
        at = `${file}:${line}:${col}: `;
      },
    });
    throw new GardenError('CONFIG_INVALID', `${file} is not valid YAML`, {
      details: [`${at}YAML: ${(e as Error).message}`],
      hint: 'define an anchor (&name) before its alias (*name), or write the value out',
    });
  }
  const { config, problems } = validateConfig(data, { doc, lines });
  if (!config) {
    throw new GardenError('CONFIG_INVALID', `${file} has ${problems.length} problem${problems.length === 1 ? '' : 's'}`, {
      details: formatProblems(file, problems),
      hint: 'run `gardenos config schema` for every field and its allowed values',
    });
  }
  return config;
}

export async function loadConfig(file: string): Promise<Config> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new GardenError('CONFIG_NOT_FOUND', `config file ${file} does not exist`, {
        hint: 'create one with `gardenos init`, or leave out -c to use the built-in defaults',
      });
    }
    if (code === 'EISDIR')
      throw new GardenError('CONFIG_INVALID', `config file ${file} is a directory`, {
        hint: `name the file in it, such as -c ${file.replace(/\/$/, '')}/gardenos.yaml`,
      });
    if (code === 'EACCES')
      throw new GardenError('CONFIG_INVALID', `config file ${file} cannot be read (permission denied)`, {
        hint: 'run as a user who can read it, or fix its mode',
      });
    throw e;
  }
  return parseConfig(text, file);
}
