// The config format's version, apart from the schema so that readers of
// GardenOS's own state records need not load the schema library.
export const API_VERSION = 'gardenos.dev/v1alpha1';

/** The PostgreSQL majors GardenOS renders for, oldest first (the schema's postgres.version). */
export const SUPPORTED_POSTGRES = [15, 16, 17] as const;

/** Spilo's images per PostgreSQL major (postgres.flavor: spilo). */
const SPILO_IMAGES: Record<(typeof SUPPORTED_POSTGRES)[number], string> = {
  15: 'ghcr.io/zalando/spilo-15:3.0-p1',
  16: 'ghcr.io/zalando/spilo-16:3.3-p3',
  17: 'ghcr.io/zalando/spilo-17:4.0-p2',
};

/** The image postgres.image defaults to: GardenOS's own (images/postgres, tagged by major) or Spilo's. */
export function defaultPostgresImage(flavor: 'gardenos' | 'spilo', version: (typeof SUPPORTED_POSTGRES)[number]): string {
  return flavor === 'spilo' ? SPILO_IMAGES[version] : `ghcr.io/gardenos/postgres:${version}`;
}

/**
 * The Kubernetes release GardenOS renders K3s for by default and builds its test control plane
 * from (test/kube/go.mod requires k8s.io/kubernetes at this version; a unit test keeps them equal).
 */
export const KUBERNETES_VERSION = '1.34.4';

/**
 * Rancher's local-path provisioner, rendered when K3s's own local-storage is disabled (the release K3s
 * ships); scripts/build-kube.sh builds the same release from its Go module for the tests' node.
 */
export const LOCAL_PATH_PROVISIONER_VERSION = 'v0.0.30';

/**
 * Traefik, the ingress controller GardenOS installs (the one K3s ships, but version-pinned and configured from
 * gardenos.yaml); scripts/build-kube.sh builds the same release from its Go module for the tests' node.
 */
export const TRAEFIK_VERSION = 'v3.6.12';

/**
 * cert-manager, which hosts with tls: acme need (GardenOS renders its ClusterIssuer and Certificates, and does
 * not install it); the tests check those objects against this release's CRDs, from its Go module.
 */
export const CERT_MANAGER_VERSION = 'v1.19.1';

/** The oldest etcd whose watch progress requests Kubernetes 1.34's API server can use (3.4.31 too, which Debian never shipped). */
export const MIN_ETCD = [3, 5, 13] as const;

export function etcdServesKubernetes(version: string): boolean {
  const v = version.split('.').map(Number);
  for (let i = 0; i < 3; i++) if ((v[i] ?? 0) !== MIN_ETCD[i]) return (v[i] ?? 0) > MIN_ETCD[i]!;
  return true;
}
