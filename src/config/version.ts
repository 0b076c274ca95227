// The config format's version, apart from the schema so that readers of
// GardenOS's own state records need not load the schema library.
export const API_VERSION = 'gardenos.dev/v1alpha1';

/** The PostgreSQL majors GardenOS renders for, oldest first (the schema's postgres.version). */
export const SUPPORTED_POSTGRES = [15, 16, 17] as const;

/**
 * The Kubernetes release GardenOS renders K3s for by default and builds its test control plane
 * from (test/kube/go.mod requires k8s.io/kubernetes at this version; a unit test keeps them equal).
 */
export const KUBERNETES_VERSION = '1.34.4';

/** The oldest etcd whose watch progress requests Kubernetes 1.34's API server can use (3.4.31 too, which Debian never shipped). */
export const MIN_ETCD = [3, 5, 13] as const;

export function etcdServesKubernetes(version: string): boolean {
  const v = version.split('.').map(Number);
  for (let i = 0; i < 3; i++) if ((v[i] ?? 0) !== MIN_ETCD[i]) return (v[i] ?? 0) > MIN_ETCD[i]!;
  return true;
}
