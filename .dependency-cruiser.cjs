// The import rules `npm run lint:deps` checks (dependency-cruiser): no cycles, and the layers of
// docs/architecture.md — renderers and config never import the commands, operations or services above them.
module.exports = {
  forbidden: [
    { name: 'no-cycles', severity: 'error', comment: 'modules that import each other cannot be read or changed one at a time', from: {}, to: { circular: true } },
    {
      name: 'config-is-the-bottom',
      severity: 'error',
      comment: 'the gardenos.yaml model depends on nothing of GardenOS but errors',
      from: { path: '^src/config/' },
      to: { path: '^src/', pathNot: ['^src/config/', '^src/errors\\.ts$'] },
    },
    {
      name: 'render-stays-pure',
      severity: 'error',
      comment: 'renderers turn config into files and objects; they never reach the CLI, the operations or running services',
      from: { path: '^src/render/' },
      to: { path: '^src/(cli|remote|local|ops|doctor|chaos|router/(controller|main|server))' },
    },
    {
      name: 'clients-are-edges',
      severity: 'error',
      comment: 'clients speak to one service (etcd, Patroni, HAProxy, PgBouncer, Kubernetes); they never reach the commands, operations or the local cluster above them',
      from: { path: '^src/clients/' },
      to: { path: '^src/(cli|remote|local|ops|doctor|chaos|platform|dashboard|health|router|gateway)/' },
    },
    {
      name: 'nothing-imports-the-cli',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/cli/' },
      to: { path: '^src/cli/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    parser: 'swc',
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
