// The Grafana dashboard `gardenos render` writes: typed by Grafana's own schema package at compile time
// (@grafana/schema's Dashboard), and here: every query parses as PromQL (promtool), the panels tile the
// 24-column grid without overlapping, ids and refIds are unique, and every query uses the datasource
// variable. The queries are run against a real Prometheus in test/integration/monitoring.test.ts.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { parseConfig } from '../../src/config/load.ts';
import { grafanaQueries, renderGrafanaDashboard } from '../../src/render/grafana.ts';

const run = promisify(execFile);
const config = parseConfig(await readFile(new URL('../../examples/gardenos.yaml', import.meta.url), 'utf8'));

describe('the Grafana dashboard', () => {
  it('every query parses as PromQL (promtool check rules, each as a recording rule)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gardenos-grafana-'));
    try {
      const exprs = Object.values(grafanaQueries(config))
        .flat()
        .map((q) => q.expr);
      await writeFile(
        join(dir, 'q.yml'),
        stringify({ groups: [{ name: 'grafana', rules: exprs.map((expr, i) => ({ record: `gardenos:grafana_query:${i}`, expr })) }] }),
      );
      const { stdout } = await run('promtool', ['check', 'rules', join(dir, 'q.yml')]);
      assert.match(stdout, new RegExp(`SUCCESS: ${exprs.length} rules found`));
      // The check can fail: a broken expression is refused.
      await writeFile(join(dir, 'bad.yml'), stringify({ groups: [{ name: 'g', rules: [{ record: 'x:y', expr: `${exprs[0]} ==` }] }] }));
      await assert.rejects(run('promtool', ['check', 'rules', join(dir, 'bad.yml')]), /parse error/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('panels tile the grid without overlapping; ids, refIds unique; every query on the datasource variable', () => {
    const d = renderGrafanaDashboard(config);
    const panels = d.panels as unknown as {
      id: number;
      gridPos: { x: number; y: number; w: number; h: number };
      targets: { refId: string; datasource: { uid: string } }[];
    }[];
    assert.equal(panels.length, Object.keys(grafanaQueries(config)).length);
    assert.equal(new Set(panels.map((p) => p.id)).size, panels.length);
    const cells = new Set<string>();
    for (const p of panels) {
      const g = p.gridPos;
      assert.ok(g.x >= 0 && g.x + g.w <= 24, `panel ${p.id} within 24 columns`);
      for (let x = g.x; x < g.x + g.w; x++) {
        for (let y = g.y; y < g.y + g.h; y++) {
          assert.ok(!cells.has(`${x},${y}`), `panel ${p.id} overlaps at ${x},${y}`);
          cells.add(`${x},${y}`);
        }
      }
      assert.equal(new Set(p.targets.map((t) => t.refId)).size, p.targets.length);
      // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax
      for (const t of p.targets) assert.equal(t.datasource.uid, '${datasource}');
    }
    assert.deepEqual(
      d.templating?.list?.map((v) => [v.name, v.type, v.query]),
      [['datasource', 'datasource', 'prometheus']],
    );
    assert.ok(d.uid!.length <= 40, 'Grafana uids are at most 40 characters');
    assert.equal(typeof d.schemaVersion, 'number');
  });
});
