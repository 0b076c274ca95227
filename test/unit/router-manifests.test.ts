// biome-ignore-all lint/suspicious/noExplicitAny: rendered YAML read back, asserted on at any depth
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { ROUTER_NAME } from '../../src/render/kube/names.ts';
import { renderRouterManifests, routerManifests } from '../../src/render/kube/router.ts';
import { routerSettingsSchema } from '../../src/router/settings.ts';
import { exampleConfig } from '../helpers/fixtures.ts';

const config = exampleConfig();
const all = routerManifests(config) as any[];
const byKind = (kind: string) => all.filter((m) => m.kind === kind);

describe('router manifests', () => {
  it('one Deployment with 2 replicas, probes on /readyz and /healthz, non-root', () => {
    const [d] = byKind('Deployment');
    assert.equal(d.spec.replicas, 2);
    const c = d.spec.template.spec.containers[0];
    assert.equal(c.readinessProbe.httpGet.path, '/readyz');
    assert.equal(c.livenessProbe.httpGet.path, '/healthz');
    assert.equal(d.spec.template.spec.securityContext.runAsNonRoot, true);
    assert.equal(c.securityContext.readOnlyRootFilesystem, true);
    assert.deepEqual(c.args, ['router', '--config', '/etc/gardenos/router.yml']);
  });

  it('selector-less primary and replica Services, with their Endpoints, EndpointSlices and the Lease pre-created', () => {
    const services = byKind('Service');
    assert.deepEqual(
      services.map((s) => s.metadata.name),
      ['postgres-primary', 'postgres-replica'],
    );
    for (const s of services) assert.equal(s.spec.selector, undefined, `${s.metadata.name} has no selector`);
    assert.deepEqual(
      byKind('Endpoints').map((e) => e.subsets),
      [[], []],
    );
    assert.deepEqual(
      byKind('EndpointSlice').map((e) => e.metadata.labels['kubernetes.io/service-name']),
      ['postgres-primary', 'postgres-replica'],
    );
    assert.equal(byKind('Lease')[0].metadata.name, ROUTER_NAME);
    for (const m of all) assert.equal(m.metadata.namespace, config.namespaces.database);
  });

  it('least-privilege RBAC: named objects only, no create or delete, nothing cluster-wide', () => {
    assert.equal(byKind('ClusterRole').length, 0);
    const [role] = byKind('Role');
    for (const rule of role.rules) {
      assert.ok(!rule.verbs.includes('create') && !rule.verbs.includes('delete') && !rule.verbs.includes('*'), JSON.stringify(rule));
      if (!(rule.resources[0] === 'pods' && rule.verbs[0] === 'list')) assert.ok(rule.resourceNames?.length, `${rule.resources} is limited to named objects`);
    }
    assert.deepEqual(byKind('RoleBinding')[0].subjects, [{ kind: 'ServiceAccount', name: ROUTER_NAME, namespace: config.namespaces.database }]);
  });

  it('carries valid router settings driving the Kubernetes sink with a Lease', () => {
    const settings = routerSettingsSchema.parse(parse(byKind('ConfigMap')[0].data['router.yml']));
    assert.equal(settings.scope, config.postgres.scope);
    assert.deepEqual(settings.etcd.endpoints, ['https://198.51.100.11:2379', 'https://198.51.100.12:2379', 'https://198.51.100.13:2379']);
    assert.equal(settings.sinks[0]!.type, 'kubernetes');
  });

  it('renders as deterministic multi-document YAML', () => {
    const a = renderRouterManifests(config);
    assert.equal(a, renderRouterManifests(config));
    assert.equal(a.split('\n---\n').length, all.length);
  });
});
