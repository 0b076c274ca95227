// The platform's Kubernetes manifests, file by file, in the order they must be applied:
// namespaces; a default StorageClass when K3s's own is disabled; PostgreSQL as a Patroni StatefulSet; its backup
// repository and schedules (pgBackRest, backups.enabled); the pooler (PgBouncer, pooler.enabled); the primary router; Supabase (auth, REST, storage; its gateway is the ingress); the user's apps;
// the ingress controller, routes and ACME issuer; monitoring (Prometheus, Alertmanager, node-exporter). Secrets are referenced by name; their contents are
// rendered only on request (secrets.ts). Every Kubernetes object GardenOS renders is built in this folder.
import type { Config } from '../../config/schema.ts';
import { backupManifests } from './backups.ts';
import { acmeIssuer, ingressControllerManifests, ingressManifests } from './ingress.ts';
import { PART_OF, type Manifest } from './manifest.ts';
import { monitoringManifests } from './monitoring.ts';
import { poolerManifests } from './pooler.ts';
import { postgresManifests } from './postgres.ts';
import { routerManifests } from './router.ts';
import { localPathStorage } from './storage.ts';
import { appManifests, supabaseManifests } from './workloads.ts';

export type { Manifest };

/** A file of the kustomization: a name and its manifests. */
export interface ManifestFile {
  file: string;
  manifests: Manifest[];
}

function namespaces(config: Config): Manifest[] {
  return [...new Set(Object.values(config.namespaces))].map((name) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: { ...PART_OF } } }));
}

/** The manifests of the platform, file by file, in the order `kubectl apply -k` should see them. */
/** keysRevision: the revision of Supabase's JWT secrets (render.ts, from secrets.json), so a rotation rolls the pods that read them. */
export function platformManifests(config: Config, opts: { keysRevision?: string } = {}): ManifestFile[] {
  const files: ManifestFile[] = [{ file: '00-namespaces.yaml', manifests: namespaces(config) }];
  if (config.k3s.disable.includes('local-storage')) files.push({ file: '10-storage.yaml', manifests: localPathStorage(config) });
  files.push({ file: '20-postgres.yaml', manifests: postgresManifests(config) });
  // The backup repository (backups.enabled; GardenOS's image, as the members' sidecars run the same pgBackRest).
  if (config.backups.enabled) files.push({ file: '22-backups.yaml', manifests: backupManifests(config, config.postgres.image) });
  if (config.pooler.enabled) files.push({ file: '25-pooler.yaml', manifests: poolerManifests(config) });
  files.push({ file: '30-router.yaml', manifests: routerManifests(config) });
  if (config.supabase.enabled) files.push({ file: '40-supabase.yaml', manifests: supabaseManifests(config, opts.keysRevision) });
  if (config.apps.length) files.push({ file: '50-apps.yaml', manifests: config.apps.flatMap((a) => appManifests(config, a)) });
  const controller = ingressControllerManifests(config, opts.keysRevision);
  if (controller.length) files.push({ file: '55-ingress-controller.yaml', manifests: controller });
  const ing = ingressManifests(config);
  if (ing.length) files.push({ file: '60-ingress.yaml', manifests: ing });
  const issuer = acmeIssuer(config);
  if (issuer.length) files.push({ file: '65-acme-issuer.yaml', manifests: issuer });
  const monitoring = monitoringManifests(config);
  if (monitoring.length) files.push({ file: '70-monitoring.yaml', manifests: monitoring });
  return files;
}
