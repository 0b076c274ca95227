// Uploads the files whose content differs from the render (and the runner on
// hosts without systemd), remembering on the host first which restarts the
// change owes, so a run that stops halfway leaves them for the next run.

import { RUNNER_COMMANDS, RUNNER_DIR, RUNNER_PATH, RUNNER_SCRIPT } from '../services.ts';
import { shellQuote, type UploadFile } from '../ssh.ts';
import { known, PENDING_DIR, pool, serviceFiles, sha, type UpPhase } from '../context.ts';

export const files: UpPhase = {
  name: 'files',
  async run({ hosts, concurrency, changes, config, paths }) {
    await pool(hosts, concurrency, async (h) => {
      const { facts: f } = known(h);
      const desired = [...h.files];
      if (!f.systemd) {
        desired.push({ path: RUNNER_PATH, content: RUNNER_SCRIPT, mode: 0o755 });
        for (const [name, cmd] of Object.entries(RUNNER_COMMANDS)) desired.push({ path: `${RUNNER_DIR}/${name}.cmd`, content: cmd, mode: 0o644 });
      }
      const upload: UploadFile[] = desired
        .filter((file) => f.hashes[file.path] !== sha(file.content))
        // Under systemd etcd runs as the etcd user, which must read its own key.
        .map((file) => ({
          ...file,
          owner: f.systemd && file.path.startsWith(`${paths.pki}/etcd-${h.node.name}.`) ? 'etcd:etcd' : 'root:root',
          // HAProxy's configuration replaces the package's: the original is kept for `reset`.
          keepOriginal: file.path === paths.haproxyConfig,
        }));
      for (const file of upload) h.changed.add(file.path);
      // The restart each change owes is written first, so a run that stops halfway leaves it for the next run.
      const owed = (['etcd', 'haproxy', 'k3s'] as const).filter(
        (svc) => h.node.roles.includes(svc === 'k3s' ? 'k3s-server' : svc) && serviceFiles(svc, h.node.name).some((p) => h.changed.has(p)) && f.active[svc],
      );
      upload.unshift(...owed.map((svc) => ({ path: `${PENDING_DIR}/${svc}`, content: 'restart\n', mode: 0o644, owner: 'root:root' })));
      await changes.doAll(
        h.node.name,
        'files',
        upload
          .filter((file) => !file.path.startsWith(PENDING_DIR))
          .map((file) => `${f.hashes[file.path] ? 'update' : 'create'} ${file.path} (${file.mode.toString(8)})`),
        () => h.ssh.upload(upload),
      );
      // GardenOS's directories as upload makes them, where an earlier version left them 0700 (etcd, as its own user, could not read its files).
      const closed = Object.entries(f.dirModes)
        .filter(([, mode]) => mode !== '755')
        .map(([dir]) => dir);
      if (closed.length)
        await changes.do(h.node.name, 'files', `make ${closed.join(', ')} 0755 (services read their files as their own users)`, () =>
          h.ssh.must('opening GardenOS directories', `chmod 755 ${closed.map(shellQuote).join(' ')}`),
        );
      if (h.node.roles.includes('etcd') && h.changed.size && !f.active.etcd) {
        const owner = f.systemd ? 'chown etcd:etcd' : 'true';
        await changes.do(h.node.name, 'files', `prepare ${config.etcd.dataDir} (0700)`, () =>
          h.ssh.must(
            'preparing the etcd data directory',
            `mkdir -p ${shellQuote(config.etcd.dataDir)} && chmod 700 ${shellQuote(config.etcd.dataDir)} && ${owner} ${shellQuote(config.etcd.dataDir)}`,
          ),
        );
      }
    });
    return `${changes.list.filter((c) => c.phase === 'files').length} file changes`;
  },
};
