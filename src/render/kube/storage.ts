// Rancher's local-path provisioner as the default StorageClass, when K3s's own local-storage is disabled.
import type { Config } from '../../config/schema.ts';
import { clusterServiceAccount, labelsFor, type Manifest } from './manifest.ts';

/** Rancher's local-path provisioner as the default StorageClass (the journal's "no storage class": PVCs stuck Pending). */
export function localPathStorage(config: Config): Manifest[] {
  const ns = config.namespaces.platform;
  const name = 'local-path-provisioner';
  const labels = labelsFor(name);
  const helperPod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'helper-pod' },
    spec: {
      priorityClassName: 'system-node-critical',
      tolerations: [{ key: 'node.kubernetes.io/disk-pressure', operator: 'Exists', effect: 'NoSchedule' }],
      // It makes and removes directories under storage.path on the node, whatever user the image declares.
      securityContext: { runAsUser: 0, runAsGroup: 0 },
      containers: [{ name: 'helper-pod', image: config.storage.helperImage, imagePullPolicy: 'IfNotPresent' }],
    },
  };
  return [
    ...clusterServiceAccount(name, ns, labels, [
      { apiGroups: [''], resources: ['nodes', 'persistentvolumeclaims', 'configmaps', 'pods', 'pods/log'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: [''], resources: ['persistentvolumes', 'pods'], verbs: ['get', 'list', 'watch', 'create', 'patch', 'update', 'delete'] },
      { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
      { apiGroups: ['storage.k8s.io'], resources: ['storageclasses'], verbs: ['get', 'list', 'watch'] },
    ]),
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'local-path-config', namespace: ns, labels },
      data: {
        'config.json': JSON.stringify({ nodePathMap: [{ node: 'DEFAULT_PATH_FOR_NON_LISTED_NODES', paths: [config.storage.path] }] }, null, 2),
        setup: '#!/bin/sh\nset -eu\nmkdir -m 0777 -p "$VOL_DIR"\n',
        teardown: '#!/bin/sh\nset -eu\nrm -rf "$VOL_DIR"\n',
        'helperPod.yaml': JSON.stringify(helperPod, null, 2),
      },
    },
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name, namespace: ns, labels },
      spec: {
        replicas: 1,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            serviceAccountName: name,
            containers: [
              {
                name: 'provisioner',
                image: config.storage.provisionerImage,
                command: [
                  'local-path-provisioner',
                  '--debug',
                  'start',
                  '--config',
                  '/etc/config/config.json',
                  '--service-account-name',
                  name,
                  '--configmap-name',
                  'local-path-config',
                ],
                env: [{ name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } }],
                resources: { requests: { cpu: '10m', memory: '32Mi' }, limits: { memory: '128Mi' } },
                volumeMounts: [{ name: 'config', mountPath: '/etc/config/' }],
              },
            ],
            volumes: [{ name: 'config', configMap: { name: 'local-path-config' } }],
          },
        },
      },
    },
    {
      apiVersion: 'storage.k8s.io/v1',
      kind: 'StorageClass',
      metadata: { name: 'local-path', labels, annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' } },
      provisioner: 'rancher.io/local-path',
      volumeBindingMode: 'WaitForFirstConsumer',
      reclaimPolicy: 'Retain',
    },
  ];
}
