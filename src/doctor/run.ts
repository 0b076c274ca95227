// `gardenos doctor`: gather the facts (local cluster, this host, and the
// Kubernetes API when a kubeconfig is given), run the catalogue, report.
import { describe } from '../errors.ts';
import type { LocalCluster } from '../local/cluster.ts';
import { runChecks, type Finding } from './checks.ts';
import { gatherHostFacts, gatherLocalFacts, type DoctorFacts, type HostSources } from './facts.ts';
import { gatherKubeFacts, loadKubeConfig } from '../clients/kubernetes.ts';
import type { KubeConfig } from '@kubernetes/client-node';

export interface DoctorOptions {
  kubeconfig?: string | KubeConfig;
  host?: HostSources;
  /** How far back log lines count as evidence (default 10 minutes). */
  logWindowMs?: number;
}

export interface DoctorReport {
  cluster: string;
  healthy: boolean;
  counts: Record<Finding['status'], number>;
  findings: Finding[];
}

export async function gatherFacts(c: LocalCluster, opts: DoctorOptions = {}): Promise<DoctorFacts> {
  const kube = opts.kubeconfig
    ? (typeof opts.kubeconfig === 'string' ? loadKubeConfig(opts.kubeconfig) : Promise.resolve(opts.kubeconfig))
        .then((kc) => gatherKubeFacts(kc, c.config))
        .then(
          (facts) => ({ kube: facts }),
          (e) => ({ kubeError: describe(e) }),
        )
    : Promise.resolve({});
  const [local, host, k] = await Promise.all([gatherLocalFacts(c, opts.logWindowMs), gatherHostFacts(opts.host), kube]);
  return { local, host, ...k };
}

export function report(cluster: string, findings: Finding[]): DoctorReport {
  const counts = { ok: 0, warn: 0, fail: 0, skip: 0 };
  for (const f of findings) counts[f.status]++;
  return { cluster, healthy: counts.fail === 0 && counts.warn === 0, counts, findings };
}

export async function doctor(c: LocalCluster, opts: DoctorOptions = {}): Promise<DoctorReport> {
  return report(c.config.cluster.name, runChecks(await gatherFacts(c, opts)));
}
