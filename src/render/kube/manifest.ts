// The shape every rendered Kubernetes object shares, and the labels GardenOS puts on them.

export type Manifest = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> }; [k: string]: unknown };

export const PART_OF = { 'app.kubernetes.io/part-of': 'gardenos' } as const;
export const labelsFor = (name: string) => ({ 'app.kubernetes.io/name': name, ...PART_OF });
