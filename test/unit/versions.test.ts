// The versions GardenOS pins in two places agree: the Kubernetes the test control plane is built
// from (test/kube/go.mod) is the one K3s is rendered for; and the etcd floor Kubernetes needs.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config/load.ts';
import { etcdServesKubernetes, KUBERNETES_VERSION, LOCAL_PATH_PROVISIONER_VERSION } from '../../src/config/version.ts';

describe('pinned versions', () => {
  it('test/kube/go.mod builds the Kubernetes release K3s is rendered for, its staging modules at the matching v0 release', () => {
    const mod = readFileSync(new URL('../../test/kube/go.mod', import.meta.url), 'utf8');
    assert.match(mod, new RegExp(`^require k8s\\.io/kubernetes v${KUBERNETES_VERSION.replaceAll('.', '\\.')}$`, 'm'));
    const staging = [...mod.matchAll(/^\s*k8s\.io\/([\w-]+) => k8s\.io\/[\w-]+ (v[\d.]+)$/gm)];
    assert.ok(staging.length >= 30, `${staging.length} staging modules replaced`);
    assert.deepEqual([...new Set(staging.map((m) => m[2]))], [`v0.${KUBERNETES_VERSION.split('.').slice(1).join('.')}`]);
    assert.equal(parseConfig('apiVersion: gardenos.dev/v1alpha1\ncluster: { name: x }\n').k3s.version, `v${KUBERNETES_VERSION}+k3s1`);
  });

  it('the local-path provisioner the tests build is the release the render names', () => {
    const script = readFileSync(new URL('../../scripts/build-kube.sh', import.meta.url), 'utf8');
    assert.match(script, /LOCAL_PATH_PROVISIONER_VERSION/, 'build-kube.sh reads the version from src/config/version.ts');
    assert.equal(parseConfig('cluster: { name: x }\n').storage.provisionerImage, `rancher/local-path-provisioner:${LOCAL_PATH_PROVISIONER_VERSION}`);
  });

  it('etcd: 3.5.13 and later hold Kubernetes 1.34, Debian 12 3.4.23 does not', () => {
    assert.equal(etcdServesKubernetes('3.4.23'), false);
    assert.equal(etcdServesKubernetes('3.5.12'), false);
    assert.equal(etcdServesKubernetes('3.5.13'), true);
    assert.equal(etcdServesKubernetes('3.5.16'), true);
    assert.equal(etcdServesKubernetes('3.6.0'), true);
  });
});
