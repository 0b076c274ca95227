// `gardenos local up --isolated`: each member in its own network namespace,
// joined to the others by a bridge whose address is the load balancer's, so a
// member can be cut off for real (`local chaos partition`). Everything made
// here is named after the state directory and removed by `destroy`.
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { GardenError } from '../errors.ts';
import type { Topology } from '../render/topology.ts';
import type { Owner } from '../util/files.ts';
import type { ProcessSpec } from './supervisor.ts';

const run = promisify(execFile);

export interface IsolatedNetwork {
  bridge: string;
  members: { member: string; address: string; namespace: string; hostLink: string }[];
  loadBalancer: string;
}

export function isolatedNetwork(stateDir: string, topology: Topology): IsolatedNetwork {
  // Interface names have at most 15 characters: a short hash of the state directory keeps them unique.
  const h = createHash('sha256').update(stateDir).digest('hex').slice(0, 6);
  return {
    bridge: `gos${h}br`,
    members: topology.postgres.map((m, i) => ({ member: m.name, address: m.address, namespace: `gos-${h}-${m.name}`, hostLink: `gos${h}v${i}` })),
    loadBalancer: topology.loadBalancer,
  };
}

async function ip(...args: string[]): Promise<string> {
  try {
    return (await run('ip', args)).stdout;
  } catch (e) {
    const err = e as { stderr?: string; code?: string | number };
    if (err.code === 'ENOENT')
      throw new GardenError('MISSING_PACKAGE', 'the `ip` command is missing', { hint: 'install it with: sudo apt-get install -y iproute2' });
    throw new GardenError('STATE_CONFLICT', `ip ${args.join(' ')} failed: ${(err.stderr ?? '').trim()}`, { cause: e });
  }
}

const exists = (args: string[]) =>
  ip(...args).then(
    () => true,
    () => false,
  );

export function requireRoot(): void {
  if (process.getuid?.() !== 0) {
    throw new GardenError('STATE_CONFLICT', 'isolated mode creates network namespaces and a bridge, which needs root', {
      hint: 'run it as root (sudo), or without --isolated',
    });
  }
}

/** Creates whatever part of the network is missing; returns what it created. */
export async function ensureNetwork(net: IsolatedNetwork): Promise<string[]> {
  requireRoot();
  const made: string[] = [];
  if (!(await exists(['link', 'show', 'dev', net.bridge]))) {
    await ip('link', 'add', net.bridge, 'type', 'bridge');
    await ip('addr', 'add', `${net.loadBalancer}/24`, 'dev', net.bridge);
    made.push(`bridge ${net.bridge} (${net.loadBalancer}/24)`);
  }
  await ip('link', 'set', net.bridge, 'up');
  const namespaces = (await ip('netns', 'list')).split('\n').map((l) => l.split(' ')[0]);
  for (const m of net.members) {
    if (!namespaces.includes(m.namespace)) {
      await ip('netns', 'add', m.namespace);
      await ip('-n', m.namespace, 'link', 'set', 'lo', 'up');
      made.push(`network namespace ${m.namespace}`);
    }
    if (!(await exists(['link', 'show', 'dev', m.hostLink]))) {
      await ip('link', 'add', m.hostLink, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', m.namespace);
      await ip('link', 'set', m.hostLink, 'master', net.bridge);
      await ip('-n', m.namespace, 'addr', 'add', `${m.address}/24`, 'dev', 'eth0');
      await ip('-n', m.namespace, 'link', 'set', 'eth0', 'up');
      made.push(`link ${m.hostLink} ⇄ ${m.namespace} (${m.address})`);
    }
    await ip('link', 'set', m.hostLink, 'up');
  }
  return made;
}

export async function removeNetwork(net: IsolatedNetwork): Promise<string[]> {
  const removed: string[] = [];
  const namespaces = (await ip('netns', 'list').catch(() => '')).split('\n').map((l) => l.split(' ')[0]);
  for (const m of net.members) {
    // Deleting the namespace deletes its end of the veth, and with it the host end.
    if (namespaces.includes(m.namespace)) {
      await ip('netns', 'del', m.namespace);
      removed.push(m.namespace);
    }
    await deleteLink(m.hostLink);
  }
  if (await deleteLink(net.bridge)) removed.push(net.bridge);
  return removed;
}

/**
 * Deletes a link if it is there. The kernel tears a deleted namespace's veth pair down
 * asynchronously, so a link seen a moment ago may be gone by the time it is deleted: that is success.
 */
async function deleteLink(name: string): Promise<boolean> {
  try {
    await ip('link', 'del', name);
    return true;
  } catch (e) {
    if (!(await exists(['link', 'show', 'dev', name]))) return false;
    throw e;
  }
}

/** Cuts a member off from every other (down) or connects it again (up). */
export async function setMemberLink(net: IsolatedNetwork, member: string, up: boolean): Promise<void> {
  const m = net.members.find((x) => x.member === member);
  if (!m) throw new GardenError('STATE_CONFLICT', `no member ${member} in the isolated network`);
  await ip('link', 'set', m.hostLink, up ? 'up' : 'down');
}

/**
 * Runs a process inside a member's namespace: `ip netns exec` (which needs root)
 * and then, for PostgreSQL, `setpriv` down to its user. Both exec, so the pid
 * and command line stay the daemon's own.
 */
export function inNamespace(spec: ProcessSpec, namespace: string, owner?: Owner): ProcessSpec {
  const drop = owner ? ['setpriv', `--reuid=${owner.uid}`, `--regid=${owner.gid}`, '--init-groups'] : [];
  const { owner: _dropped, ...rest } = spec;
  return { ...rest, command: 'ip', args: ['netns', 'exec', namespace, ...drop, spec.command, ...spec.args] };
}
