// The shape every rendered Kubernetes object shares, and the labels GardenOS puts on them.

export type Manifest = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [k: string]: unknown;
};

export const PART_OF = { 'app.kubernetes.io/part-of': 'gardenos' } as const;
export const labelsFor = (name: string) => ({ 'app.kubernetes.io/name': name, ...PART_OF });

export type PolicyRule = { apiGroups: string[]; resources: string[]; verbs: string[] };

/** A ServiceAccount and the ClusterRole (gardenos-<name>) bound to it: a component's cluster-wide permissions. */
export function clusterServiceAccount(name: string, namespace: string, labels: Record<string, string>, rules: PolicyRule[]): Manifest[] {
  const role = `gardenos-${name}`;
  return [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace, labels } },
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: role, labels }, rules },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: role, labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
      subjects: [{ kind: 'ServiceAccount', name, namespace }],
    },
  ];
}
