// A sink is where a routing decision takes effect (HAProxy, Kubernetes). It
// observes its current state, changes only the difference, and says what it changed.
import type { Route } from '../decide.ts';

export interface RouteSink {
  readonly name: string;
  /** Makes the sink route as `route` says; returns the changes made (empty when it already did). */
  apply(route: Route): Promise<string[]>;
  close?(): Promise<void>;
}
