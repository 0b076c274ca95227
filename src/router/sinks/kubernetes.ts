// The Kubernetes sink: a selector-less `postgres-primary` Service whose
// Endpoints and EndpointSlice hold only the leader pod's IP (Zalando's and
// Patroni's own pattern: a label-selected Service can keep two pods behind it
// when a frozen node's labels go stale), `postgres-replica` likewise, and role
// labels on the database pods for people and dashboards. Every write carries
// the resourceVersion it was based on and is retried on 409 Conflict.
import {
  ApiException,
  CoordinationV1Api,
  CoreV1Api,
  DiscoveryV1Api,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  V1MicroTime,
  type V1Endpoints,
  type V1EndpointSlice,
  type V1Lease,
} from '@kubernetes/client-node';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { describe, GardenError } from '../../errors.ts';
import { ENDPOINTS_LABELS, ROUTER_NAME } from '../../render/kube/names.ts';
import type { Route, RouteTarget } from '../decide.ts';
import type { RouteSink } from './types.ts';

export const ROLE_LABEL = 'gardenos.dev/role';
const PORT_NAME = 'postgresql';

export interface KubernetesSinkOptions {
  namespace: string;
  primaryService: string;
  replicasService: string;
  podSelector: string;
  port: number;
  /** Whether this router may write now (it holds the Lease); asked again before every write. */
  mayWrite?: () => boolean;
}

/** The router's credentials: a kubeconfig file when given (outside the cluster), else the pod's ServiceAccount. */
export async function routerKubeConfig(file?: string): Promise<KubeConfig> {
  const kc = new KubeConfig();
  if (file) {
    try {
      kc.loadFromFile(file);
    } catch (e) {
      throw new GardenError('CONFIG_NOT_FOUND', `the router's kubeconfig ${file}: ${describe(e)}`, {
        hint: "drop `kubeconfig` from router.yml to use the pod's ServiceAccount",
      });
    }
  } else kc.loadFromCluster();
  return kc;
}

function status(e: unknown): number | undefined {
  return e instanceof ApiException ? e.code : undefined;
}

export interface Upsert<T> {
  what: string;
  read: () => Promise<T>;
  create: (body: T) => Promise<unknown>;
  replace: (body: T) => Promise<unknown>;
  desired: (current: T | undefined) => T;
  same: (a: T, b: T) => boolean;
  /** Asked before every write: a router that lost its Lease while it read (a 409 retry, a long pause) writes nothing. */
  mayWrite?: () => boolean;
}

/** Read, compute, write with the read's resourceVersion; on 409 start over (still holding the Lease). */
export async function upsert<T extends { metadata?: { resourceVersion?: string } }>(u: Upsert<T>): Promise<boolean> {
  for (let attempt = 1; ; attempt++) {
    let current: T | undefined;
    try {
      current = await u.read();
    } catch (e) {
      if (status(e) !== 404) throw e;
    }
    const want = u.desired(current);
    if (current && u.same(current, want)) return false;
    if (u.mayWrite && !u.mayWrite()) throw new GardenError('STATE_CONFLICT', `not writing ${u.what}: this router no longer holds the Lease`);
    try {
      if (current) await u.replace({ ...want, metadata: { ...want.metadata, resourceVersion: current.metadata?.resourceVersion } } as T);
      else await u.create(want);
      return true;
    } catch (e) {
      if ((status(e) === 409 || (status(e) === 404 && current)) && attempt < 5) continue;
      throw new GardenError('BACKEND_UNAVAILABLE', `writing ${u.what} failed: ${describe(e)}`, { cause: e });
    }
  }
}

const ipFamily = (ip: string) => (ip.includes(':') ? 'IPv6' : 'IPv4');

export class KubernetesSink implements RouteSink {
  readonly name = 'kubernetes';
  private readonly core: CoreV1Api;
  private readonly discovery: DiscoveryV1Api;
  private readonly o: KubernetesSinkOptions;

  constructor(kc: KubeConfig, o: KubernetesSinkOptions) {
    this.core = kc.makeApiClient(CoreV1Api);
    this.discovery = kc.makeApiClient(DiscoveryV1Api);
    this.o = o;
  }

  private endpoints(service: string, targets: readonly RouteTarget[]): V1Endpoints {
    return {
      apiVersion: 'v1',
      kind: 'Endpoints',
      metadata: { name: service, namespace: this.o.namespace, labels: { ...ENDPOINTS_LABELS } },
      // No subsets: the Service has no endpoint and clients are refused, never sent to a demoted node.
      subsets: targets.length
        ? [
            {
              addresses: targets.map((t) => ({ ip: t.host, targetRef: { kind: 'Pod', name: t.name, namespace: this.o.namespace } })),
              ports: [{ name: PORT_NAME, port: this.o.port, protocol: 'TCP' }],
            },
          ]
        : [],
    };
  }

  private slice(service: string, targets: readonly RouteTarget[]): V1EndpointSlice {
    return {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: {
        name: `${service}-gardenos`,
        namespace: this.o.namespace,
        labels: { 'kubernetes.io/service-name': service, 'endpointslice.kubernetes.io/managed-by': ROUTER_NAME },
      },
      addressType: ipFamily(targets[0]?.host ?? '0.0.0.0'),
      endpoints: targets.map((t) => ({
        addresses: [t.host],
        conditions: { ready: true },
        targetRef: { kind: 'Pod', name: t.name, namespace: this.o.namespace },
      })),
      ports: [{ name: PORT_NAME, port: this.o.port, protocol: 'TCP' }],
    };
  }

  private async writeService(service: string, targets: readonly RouteTarget[]): Promise<string[]> {
    const ns = this.o.namespace;
    const ips = (xs: readonly { ip?: string }[] | undefined) =>
      (xs ?? [])
        .map((a) => a.ip)
        .sort()
        .join(',');
    const changes: string[] = [];
    const fence = this.o.mayWrite ? { mayWrite: this.o.mayWrite } : {};
    const wroteEndpoints = await upsert<V1Endpoints>({
      what: `Endpoints ${ns}/${service}`,
      read: () => this.core.readNamespacedEndpoints({ name: service, namespace: ns }),
      create: (body) => this.core.createNamespacedEndpoints({ namespace: ns, body }),
      replace: (body) => this.core.replaceNamespacedEndpoints({ name: service, namespace: ns, body }),
      desired: () => this.endpoints(service, targets),
      same: (a, b) =>
        ips(a.subsets?.flatMap((s) => s.addresses ?? [])) === ips(b.subsets?.flatMap((s) => s.addresses ?? [])) &&
        (a.subsets?.length ?? 0) === (b.subsets?.length ?? 0) &&
        Object.entries(ENDPOINTS_LABELS).every(([k, v]) => a.metadata?.labels?.[k] === v),
      ...fence,
    });
    if (wroteEndpoints) changes.push(`Endpoints ${service} → [${targets.map((t) => `${t.name} ${t.host}`).join(', ')}]`);
    const name = `${service}-gardenos`;
    const slicesAddresses = (s: V1EndpointSlice) =>
      (s.endpoints ?? [])
        .map((e) => e.addresses.join('+'))
        .sort()
        .join(',');
    const wroteSlice = await upsert<V1EndpointSlice>({
      what: `EndpointSlice ${ns}/${name}`,
      read: () => this.discovery.readNamespacedEndpointSlice({ name, namespace: ns }),
      create: (body) => this.discovery.createNamespacedEndpointSlice({ namespace: ns, body }),
      replace: (body) => this.discovery.replaceNamespacedEndpointSlice({ name, namespace: ns, body }),
      desired: () => this.slice(service, targets),
      same: (a, b) => slicesAddresses(a) === slicesAddresses(b),
      ...fence,
    });
    if (wroteSlice) changes.push(`EndpointSlice ${name} → [${targets.map((t) => t.host).join(', ')}]`);
    return changes;
  }

  private async labelPods(route: Route): Promise<string[]> {
    const pods = await this.core.listNamespacedPod({ namespace: this.o.namespace, labelSelector: this.o.podSelector });
    const replicas = new Set(route.replicas.map((r) => r.name));
    const changes: string[] = [];
    for (const pod of pods.items) {
      const name = pod.metadata?.name ?? '';
      const want = route.primary?.name === name ? 'primary' : replicas.has(name) ? 'replica' : 'unavailable';
      if (pod.metadata?.labels?.[ROLE_LABEL] === want) continue;
      if (this.o.mayWrite && !this.o.mayWrite()) throw new GardenError('STATE_CONFLICT', `not labelling pod ${name}: this router no longer holds the Lease`);
      await this.core.patchNamespacedPod(
        { name, namespace: this.o.namespace, body: { metadata: { labels: { [ROLE_LABEL]: want } } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      changes.push(`pod ${name} ${ROLE_LABEL}=${want}`);
    }
    return changes;
  }

  async apply(route: Route): Promise<string[]> {
    // The primary first: removing a demoted leader matters more than anything else here.
    const primary = await this.writeService(this.o.primaryService, route.primary ? [route.primary] : []);
    const replicas = await this.writeService(this.o.replicasService, route.replicas);
    const labels = await this.labelPods(route);
    return [...primary, ...replicas, ...labels];
  }
}

/**
 * Holds a coordination.k8s.io Lease so that of the router's replicas only one
 * writes at a time. Acquires an absent or expired Lease, renews it every third
 * of its duration, and stops counting itself holder once a renewal is overdue.
 */
export class LeaseHolder {
  readonly identity: string;
  private readonly api: CoordinationV1Api;
  private readonly namespace: string;
  private readonly name: string;
  private readonly durationSeconds: number;
  private renewedAt = 0;
  private holder = false;
  /** Why the last attempt could not read or write the Lease (the API server unreachable, refused); cleared by success. */
  lastError: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(kc: KubeConfig, namespace: string, name: string, durationSeconds: number, identity?: string) {
    this.api = kc.makeApiClient(CoordinationV1Api);
    this.namespace = namespace;
    this.name = name;
    this.durationSeconds = durationSeconds;
    this.identity = identity ?? `${process.env.POD_NAME ?? hostname()}-${randomBytes(3).toString('hex')}`;
  }

  isHolder(): boolean {
    return this.holder && Date.now() - this.renewedAt < this.durationSeconds * 1000;
  }

  /** One attempt to acquire or renew; returns whether this instance holds the Lease afterwards. */
  async tryAcquireOrRenew(): Promise<boolean> {
    // Lease times are MicroTime: the API server refuses anything but six fractional digits (Date's JSON has three).
    const now = new V1MicroTime();
    let lease: V1Lease | undefined;
    try {
      lease = await this.api.readNamespacedLease({ name: this.name, namespace: this.namespace });
    } catch (e) {
      if (status(e) !== 404) {
        this.lastError = `reading Lease ${this.namespace}/${this.name}: ${describe(e)}`;
        return this.hold(false);
      }
    }
    this.lastError = undefined;
    const spec = lease?.spec;
    const renew = spec?.renewTime ? new Date(spec.renewTime).getTime() : 0;
    const expired = !spec?.holderIdentity || renew + (spec.leaseDurationSeconds ?? this.durationSeconds) * 1000 < now.getTime();
    const mine = spec?.holderIdentity === this.identity;
    if (!mine && !expired) return this.hold(false);
    const body: V1Lease = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: {
        name: this.name,
        namespace: this.namespace,
        ...(lease?.metadata?.resourceVersion ? { resourceVersion: lease.metadata.resourceVersion } : {}),
      },
      spec: {
        holderIdentity: this.identity,
        leaseDurationSeconds: this.durationSeconds,
        acquireTime: mine && spec?.acquireTime ? new V1MicroTime(spec.acquireTime) : now,
        renewTime: now,
        leaseTransitions: (spec?.leaseTransitions ?? 0) + (mine ? 0 : 1),
      },
    };
    try {
      if (lease) await this.api.replaceNamespacedLease({ name: this.name, namespace: this.namespace, body });
      else await this.api.createNamespacedLease({ namespace: this.namespace, body });
      this.renewedAt = now.getTime();
      return this.hold(true);
    } catch (e) {
      // 409: someone else renewed or took it first; anything else is a problem to report.
      if (status(e) !== 409) this.lastError = `writing Lease ${this.namespace}/${this.name}: ${describe(e)}`;
      return this.hold(false);
    }
  }

  /** Records whether this router holds the Lease now, and says so. */
  private hold(holder: boolean): boolean {
    this.holder = holder;
    return holder;
  }

  start(onChange: (event: { lease: 'held' | 'standby' | 'error'; detail?: string }) => void = () => undefined): void {
    let last = '';
    const tick = async () => {
      await this.tryAcquireOrRenew();
      const now = this.lastError ? `error ${this.lastError}` : this.holder ? 'held' : 'standby';
      if (now !== last)
        onChange(this.lastError ? { lease: 'error', detail: this.lastError } : { lease: this.holder ? 'held' : 'standby', detail: this.identity });
      last = now;
      if (!this.stopped) this.timer = setTimeout(() => (this.running = tick()), (this.durationSeconds * 1000) / 3);
    };
    this.running = tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
    this.holder = false;
  }
}
