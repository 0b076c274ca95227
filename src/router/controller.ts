// The router's control loop, in Patroni's run_cycle() style: each cycle reads
// the DCS, decides, applies the decision to every sink and returns what it did
// as a sentence. One error policy: DCS unreachable ► route nowhere (fail closed);
// a sink that fails ► retried next cycle; anything unexpected ► logged as a bug,
// last safe state kept. Watch events wake the loop at once; a periodic re-check
// catches anything a lost watch missed.
import { describe } from '../errors.ts';
import type { DcsSnapshot, PatroniDcs } from './dcs.ts';
import type { DeadLeaderWatch } from './deadleader.ts';
import { decidePrimary, decideReplicas, NOWHERE, replicaNote, sameRoute, sameTarget, type MemberProbe, type Route } from './decide.ts';
import type { RouterMetrics } from './metrics.ts';
import type { RouteSink } from './sinks/types.ts';

export interface RoutingLog {
  ts: string;
  decision: string;
  primary: string | null;
  replicas: string[];
  changes: string[];
  error?: string;
}

export interface RouterOptions {
  dcs: PatroniDcs;
  probe: MemberProbe;
  sinks: readonly RouteSink[];
  metrics: RouterMetrics;
  maxLagBytes: number;
  recheckIntervalMs: number;
  /** How soon to look again while the primary route is empty for a reason that may clear (a promotion in progress). */
  fastRecheckMs?: number;
  /** Ends a dead leader's lock early (router.deadLeader); absent when switched off. */
  deadLeader?: DeadLeaderWatch;
  /** Whether this instance may write (holds the Lease); a standby router only observes. */
  mayWrite?: () => boolean;
  log: (entry: RoutingLog) => void;
  now?: () => number;
}

export interface RouterState {
  route: Route;
  lastDecision: string;
  lastChangeAt: string | null;
  lastCycleAt: number;
  lastCycleOk: boolean;
  watching: boolean;
}

export class Router {
  readonly state: RouterState = { route: NOWHERE, lastDecision: 'starting', lastChangeAt: null, lastCycleAt: 0, lastCycleOk: false, watching: false };
  private readonly o: RouterOptions;
  private readonly now: () => number;
  private stopped = false;
  private wake: (() => void) | undefined;
  private pending = false;
  private leaderChangedAt: number | undefined;
  private applied = new Map<string, Route>();
  private loop: Promise<void> | undefined;
  private needResync = true;
  private replicasProbedAt = -Infinity;

  constructor(o: RouterOptions) {
    this.o = o;
    this.now = o.now ?? (() => performance.now());
  }

  /** Asks for a cycle as soon as the current one ends (coalesced). */
  trigger(): void {
    this.pending = true;
    this.wake?.();
  }

  start(): void {
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.loop;
    await this.o.deadLeader?.settled();
    await this.o.dcs.stopWatch();
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      let unsettled = false;
      try {
        unsettled = await this.runCycle();
      } catch (e) {
        // runCycle handles every expected failure; reaching here is a bug. Keep the last safe state.
        this.o.metrics.errors.inc({ kind: 'bug' });
        this.emit(`BUG: unexpected error, keeping the last routing state: ${describe(e)}`, [], describe(e));
      }
      if (this.stopped) break;
      if (!this.pending) {
        const wait = unsettled ? (this.o.fastRecheckMs ?? 25) : this.o.recheckIntervalMs;
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, wait);
          this.wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
        this.wake = undefined;
      }
      this.pending = false;
    }
  }

  private async ensureWatch(snapshot: DcsSnapshot): Promise<void> {
    if (!this.needResync) return;
    this.needResync = false;
    try {
      await this.o.dcs.startWatch(snapshot.revision, {
        onChange: (leaderChanged) => {
          if (leaderChanged) this.leaderChangedAt ??= this.now();
          this.trigger();
        },
        onInterrupted: (reason) => {
          this.state.watching = false;
          this.o.metrics.errors.inc({ kind: 'dcs' });
          this.emit(`etcd watch interrupted (${reason}); re-reading etcd and re-watching`, [], reason);
          this.needResync = true;
          this.trigger();
        },
        onConnected: () => {
          this.state.watching = true;
          this.trigger();
        },
      });
      this.state.watching = true;
    } catch (e) {
      this.needResync = true;
      throw e;
    }
  }

  /** One cycle; returns whether to look again soon. */
  async runCycle(): Promise<boolean> {
    this.o.metrics.cycles.inc({ outcome: 'run' });
    let snapshot: DcsSnapshot;
    try {
      snapshot = await this.o.dcs.read();
      await this.ensureWatch(snapshot);
    } catch (e) {
      if (!(e instanceof Error)) throw e; // DcsUnavailable, or the watch could not start
      this.o.metrics.errors.inc({ kind: 'dcs' });
      this.needResync = true;
      await this.applyAll(NOWHERE, `etcd unreachable (${describe(e)}): routing nowhere (fail closed)`);
      return true;
    }
    const p = await decidePrimary(snapshot, this.o.probe);
    if (this.o.deadLeader) {
      // A leader key whose holder does not confirm: is it dead (then end its lock now) or only unreachable (wait)?
      if (p.primary || snapshot.leader === null || (this.o.mayWrite && !this.o.mayWrite())) this.o.deadLeader.clear();
      else this.o.deadLeader.consider(snapshot);
    }
    if (!sameTarget(p.primary, this.state.route.primary)) {
      // Writes move first: a new (or vanished) primary does not wait for the replica probes.
      const keep = this.state.route.replicas.filter((r) => r.name !== p.primary?.name && r.name !== snapshot.leader);
      await this.applyAll({ primary: p.primary, replicas: keep }, p.reason);
    }
    // While the primary is unsettled (a promotion in progress) cycles come every few milliseconds
    // and ask only the leader; the replicas are asked at the normal pace.
    if (p.unsettled && this.now() - this.replicasProbedAt < this.o.recheckIntervalMs) return true;
    this.replicasProbedAt = this.now();
    const replicas = await decideReplicas(snapshot, this.o.probe, this.o.maxLagBytes);
    await this.applyAll({ primary: p.primary, replicas }, `${p.reason}; ${replicaNote(replicas, this.o.maxLagBytes)}`);
    return p.unsettled;
  }

  private async applyAll(route: Route, reason: string): Promise<void> {
    if (this.o.mayWrite && !this.o.mayWrite()) {
      this.state.lastCycleAt = Date.now();
      this.state.lastCycleOk = true;
      if (this.state.lastDecision !== `standby: ${reason}`) this.state.lastDecision = `standby: ${reason}`;
      return;
    }
    const changes: string[] = [];
    let failed: string | undefined;
    for (const sink of this.o.sinks) {
      try {
        const c = await sink.apply(route);
        if (c.length) this.o.metrics.routingChanges.inc({ sink: sink.name }, c.length);
        changes.push(...c.map((x) => `${sink.name}: ${x}`));
        this.applied.set(sink.name, route);
      } catch (e) {
        this.o.metrics.errors.inc({ kind: 'sink' });
        failed = `${sink.name}: ${describe(e)}`;
        this.applied.delete(sink.name);
      }
    }
    const converged = this.o.sinks.every((s) => this.applied.get(s.name) && sameRoute(this.applied.get(s.name)!, route));
    if (converged && route.primary && this.leaderChangedAt !== undefined) {
      this.o.metrics.convergence.observe((this.now() - this.leaderChangedAt) / 1000);
      this.leaderChangedAt = undefined;
    }
    const routeChanged = !sameRoute(route, this.state.route);
    if (routeChanged) {
      this.o.metrics.leader.reset();
      if (route.primary) this.o.metrics.leader.set({ member: route.primary.name }, 1);
      this.state.lastChangeAt = new Date().toISOString();
    }
    this.state.route = route;
    this.state.lastCycleAt = Date.now();
    this.state.lastCycleOk = failed === undefined;
    // One log line per routing decision that changed something, or failed; quiet while nothing moves.
    if (routeChanged || changes.length || failed || reason !== this.state.lastDecision) {
      this.emit(failed ? `${reason}; sink failed, retrying next cycle` : reason, changes, failed);
    }
    this.state.lastDecision = reason;
  }

  /** A log line for something the router did beside routing (the dead-leader watch ending a lock). */
  note(decision: string, changes: string[] = []): void {
    this.emit(decision, changes);
  }

  private emit(decision: string, changes: string[], error?: string): void {
    this.o.log({
      ts: new Date().toISOString(),
      decision,
      primary: this.state.route.primary?.name ?? null,
      replicas: this.state.route.replicas.map((r) => r.name),
      changes,
      ...(error ? { error } : {}),
    });
  }
}
