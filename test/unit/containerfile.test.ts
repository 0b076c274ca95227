// The engine-less image build reads the Containerfile subset GardenOS's recipes use, and refuses the rest.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parseContainerfile } from '../helpers/containerfile.ts';

describe('Containerfile subset', () => {
  it('reads the PostgreSQL recipe: base suite, steps in order with ARG values, ENV expanded, runtime config', () => {
    const r = parseContainerfile(readFileSync(new URL('../../images/postgres/Containerfile', import.meta.url), 'utf8'));
    assert.equal(r.suite, 'trixie');
    assert.deepEqual(
      r.steps.map((s) => s.kind),
      ['copy', 'run'],
    );
    const runStep = r.steps[1]!;
    assert.equal(runStep.kind === 'run' && runStep.env.PG_MAJOR, '17');
    assert.match(r.env.PATH!, /^\/usr\/lib\/postgresql\/17\/bin:/);
    assert.equal(r.user, '999:999');
    assert.deepEqual(r.exposed, ['5432/tcp', '8008/tcp']);
    assert.deepEqual([...(r.entrypoint ?? []), ...(r.cmd ?? [])], ['patroni', '/etc/patroni/patroni.yml']);
  });

  it('reads the example API recipe: its code copied after the packages are installed', () => {
    const r = parseContainerfile(readFileSync(new URL('../../examples/apps/api/Containerfile', import.meta.url), 'utf8'));
    assert.deepEqual(
      r.steps.map((s) => (s.kind === 'copy' ? `copy ${s.src}` : 'run')),
      ['copy install.sh', 'run', 'copy app'],
    );
    assert.equal(r.user, '10001:10001');
    assert.equal(r.entrypoint?.[0], 'python3');
  });

  it('refuses what it cannot build faithfully, naming the line', () => {
    assert.throws(() => parseContainerfile('FROM alpine:3\n'), /line 1: FROM must be debian/);
    assert.throws(() => parseContainerfile('FROM debian:trixie-slim\nHEALTHCHECK CMD true\n'), /line 2: HEALTHCHECK is not supported/);
    assert.throws(() => parseContainerfile('FROM debian:trixie\nCMD echo hi\n'), /line 2: only the JSON array form/);
    assert.throws(() => parseContainerfile('RUN true\n'), /no FROM/);
  });
});
