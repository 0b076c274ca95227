// The router's own settings file (router.yml), rendered by GardenOS from
// gardenos.yaml and read by `gardenos router --config`. Validated like the main config.
import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import { z } from 'zod';
import { GardenError } from '../errors.ts';
import { PRIMARY_ROUTE, REPLICAS_BACKEND, REPLICAS_SERVICE } from '../names.ts';

const tls = z.strictObject({ ca: z.string(), cert: z.string(), key: z.string() });

const haproxySink = z.strictObject({
  type: z.literal('haproxy'),
  socket: z.string(),
  primaryBackend: z.string().default(PRIMARY_ROUTE),
  replicasBackend: z.string().default(REPLICAS_BACKEND),
});

const kubernetesSink = z.strictObject({
  type: z.literal('kubernetes'),
  namespace: z.string(),
  primaryService: z.string().default(PRIMARY_ROUTE),
  replicasService: z.string().default(REPLICAS_SERVICE),
  /** Label selector of the database pods, whose role label the router keeps current. */
  podSelector: z.string(),
  /** Pods are matched to Patroni members by this label (Patroni's member name is the pod name by default). */
  port: z.number().int().default(5432),
  lease: z.strictObject({ name: z.string(), durationSeconds: z.number().int().min(2).default(15) }).optional(),
  /** A kubeconfig file, for a router that runs outside the cluster; in a pod, its ServiceAccount (the default). */
  kubeconfig: z.string().optional(),
});

export const routerSettingsSchema = z.strictObject({
  scope: z.string(),
  namespace: z.string().default('/service/'),
  etcd: z.strictObject({ endpoints: z.array(z.string()).min(1), tls }),
  patroniCa: z.string(),
  replicaMaxLagBytes: z.number().int().min(0),
  recheckIntervalMs: z.number().int().min(100),
  listen: z.strictObject({ host: z.string(), port: z.number().int() }),
  sinks: z.array(z.discriminatedUnion('type', [haproxySink, kubernetesSink])).min(1),
  /** PEM certificates GardenOS issued whose expiry the router reports (gardenos_certificate_expiry_timestamp_seconds). */
  certificates: z.array(z.string()).default([]),
  /** End a dead leader's lock early (see deadleader.ts); absent or disabled: wait for Patroni's ttl. */
  deadLeader: z
    .strictObject({
      enabled: z.boolean(),
      confirmMs: z.number().int().min(500),
      intervalMs: z.number().int().min(50).default(200),
      probeTimeoutMs: z.number().int().min(100).default(500),
    })
    .optional(),
  /** PgBouncer in front of the primary (pooler.enabled): its admin socket and a stats user whose password is in a file. */
  pooler: z
    .strictObject({ socketDir: z.string(), port: z.number().int(), user: z.string(), passwordFile: z.string(), pauseMarker: z.string().optional() })
    .optional(),
});

export type RouterSettings = z.infer<typeof routerSettingsSchema>;

export async function loadRouterSettings(file: string): Promise<RouterSettings> {
  const text = await readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw new GardenError('CONFIG_NOT_FOUND', `router settings ${file}: ${e.code ?? e.message}`, {
      hint: 'GardenOS renders this file; `gardenos local up` writes it for the local cluster',
    });
  });
  const parsed = routerSettingsSchema.safeParse(parse(text));
  if (!parsed.success) {
    throw new GardenError('CONFIG_INVALID', `router settings ${file} are invalid`, {
      details: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`),
    });
  }
  return parsed.data;
}
