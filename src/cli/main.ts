#!/usr/bin/env node
// The `gardenos` command. Each action returns an exit code: 0 ok, 1 error,
// 2 done but degraded (status, up). Errors print what happened and what to do.
import { Command, Option } from 'commander';
import type { GlobalOptions } from './local.ts';
import type { DashboardFlags } from './dashboard.ts';
import type { PlatformRestoreOptions } from './db.ts';
import { GATEWAY_AUTH_PORT } from '../render/kube/names.ts';
import { formatError } from './output.ts';

// Command modules load on use: `status` must not pay for the schema, YAML and X.509 libraries.
const configCmds = () => import('./config.ts');
const localCmds = () => import('./local.ts');

// grpc-js names etcd members by IP in the TLS handshake, which Node flags as
// deprecated (DEP0123) on every connection; the certificates carry IP SANs, so it is noise.
process.removeAllListeners('warning');
process.on('warning', (w: Error & { code?: string }) => {
  if (w.code !== 'DEP0123') process.stderr.write(`${w.name}: ${w.message}\n`);
});

const program = new Command('gardenos')
  .description('Build and operate a self-hosted HA platform from gardenos.yaml; run its database tier locally.')
  .version('0.1.0')
  .showHelpAfterError();

function run(fn: (...args: never[]) => Promise<number> | number) {
  return async (...args: unknown[]) => {
    try {
      process.exitCode = await fn(...(args as never[]));
    } catch (e) {
      process.stderr.write(`${formatError(e)}\n`);
      process.exitCode = 1;
    }
  };
}

program
  .command('init')
  .description('write a commented example gardenos.yaml')
  .argument('[file]', 'where to write it', 'gardenos.yaml')
  .option('--force', 'overwrite an existing file')
  .action(run(async (file: string, opts: { force?: boolean }) => (await configCmds()).initCommand(file, opts)));

const config = program.command('config').description('check, show and describe gardenos.yaml');
config.option('-c, --config <file>', 'config file', 'gardenos.yaml');
config
  .command('check')
  .description('validate the config; every problem with its line and column')
  .action(run(async (_o: unknown, cmd: Command) => (await configCmds()).checkCommand(cmd.optsWithGlobals().config)));
config
  .command('show')
  .description('print the effective config with defaults applied (secrets masked)')
  .option('--json', 'JSON instead of YAML')
  .action(run(async (_o: unknown, cmd: Command) => (await configCmds()).showCommand(cmd.optsWithGlobals().config, cmd.optsWithGlobals().json)));
config
  .command('schema')
  .description('print the JSON Schema of gardenos.yaml, for editor completion')
  .action(run(async () => (await configCmds()).schemaCommand()));

const local = program.command('local').description('the database tier (etcd, Patroni PostgreSQL, HAProxy) on this machine');
local
  .option('-c, --config <file>', 'gardenos.yaml to take settings from (default: built-in local defaults)')
  .option('--state-dir <dir>', 'where the cluster keeps its data (default: /var/lib/gardenos/<cluster> as root, else ~/.local/state/gardenos/<cluster>)')
  .option('--json', 'machine-readable output; progress as JSON lines on stderr');
const localGlobals = (cmd: Command): GlobalOptions => {
  const o = cmd.optsWithGlobals<{ config?: string; stateDir?: string; json?: boolean }>();
  return { ...(o.config ? { configFile: o.config } : {}), ...(o.stateDir ? { stateDir: o.stateDir } : {}), ...(o.json ? { json: true } : {}) };
};
local
  .command('up')
  .description('start the cluster, or restart what is not running; idempotent')
  .addOption(new Option('--timeout <seconds>', 'deadline for each wait').default('120'))
  .option('--isolated', 'each member in its own network namespace on a bridge, so it can be cut off (root only)')
  .option('--with-monitoring', "Prometheus beside the cluster with GardenOS's alert rules (Debian's prometheus)")
  .option('--with-backups', "WAL archiving and base backups with pgBackRest (Debian's pgbackrest); the first full backup is taken at once")
  .action(
    run(async (opts: { timeout?: string; isolated?: boolean; withMonitoring?: boolean; withBackups?: boolean }, cmd: Command) =>
      (await localCmds()).upCommand(localGlobals(cmd), opts),
    ),
  );
local
  .command('status')
  .description('etcd, Patroni and HAProxy as their own APIs report them; exit 2 when degraded')
  .addOption(new Option('--timeout <ms>', 'deadline for each probe').default('1500'))
  .option('--kubeconfig <file>', 'also show K3s nodes and workloads through the Kubernetes API')
  .option('-w, --watch', 'refresh until Ctrl-C (in place on a terminal; a JSON document per line with --json)')
  .option('--interval <seconds>', 'refresh interval for --watch', '2')
  .action(
    run(async (opts: { timeout?: string; kubeconfig?: string; watch?: boolean; interval?: string }, cmd: Command) =>
      (await localCmds()).statusCommand(localGlobals(cmd), opts),
    ),
  );
local
  .command('down')
  .description('stop every process gracefully; data is kept')
  .action(run(async (_o: unknown, cmd: Command) => (await localCmds()).downCommand(localGlobals(cmd))));
local
  .command('destroy')
  .description('stop the cluster and delete its state directory (asks first)')
  .option('-y, --yes', 'do not ask for confirmation')
  .action(run(async (opts: { yes?: boolean }, cmd: Command) => (await localCmds()).destroyCommand(localGlobals(cmd), opts)));
local
  .command('chaos')
  .description('inject faults under write load; report the outage, lost writes and split brain (exit 2 on a failed verdict)')
  .argument('[scenario...]', 'scenarios to run (default: all; see --list)')
  .option('--runs <n>', 'runs per scenario', '1')
  .option('--out <dir>', 'where to write report.md, JSON and SVG charts (default: <state>/chaos/<time>)')
  .option('--list', 'list the scenarios')
  .action(
    run(async (names: string[], opts: { runs: string; out?: string; list?: boolean }, cmd: Command) =>
      (await import('./chaos.ts')).chaosCommand(localGlobals(cmd), names, opts),
    ),
  );
const dcs = local.command('dcs').description("the cluster's Patroni keys in etcd: show, clean stale state (backed up first), restore");
dcs
  .command('show')
  .description('list the keys under /service/<scope>/')
  .action(run(async (_o: unknown, cmd: Command) => (await localCmds()).dcsCommand(localGlobals(cmd), 'show', {})));
dcs
  .command('clean')
  .description('delete stale keys of a cluster that is gone; refuses while a member answers or a leader key exists')
  .option('-y, --yes', 'do not ask for confirmation')
  .action(run(async (opts: { yes?: boolean }, cmd: Command) => (await localCmds()).dcsCommand(localGlobals(cmd), 'clean', opts)));
dcs
  .command('restore')
  .description('put keys from a `dcs clean` backup back (keys that exist now are kept)')
  .argument('<file>', 'the backup file `dcs clean` wrote')
  .action(run(async (file: string, _o: unknown, cmd: Command) => (await localCmds()).dcsCommand(localGlobals(cmd), 'restore', { file })));
local
  .command('doctor')
  .description('diagnose the cluster: every failure the journal describes, with evidence and the exact fix (exit 2 on a problem)')
  .option('--kubeconfig <file>', 'also check the Kubernetes side (storage class, taints, postgres-primary endpoints)')
  .option('-v, --verbose', 'show passed and skipped checks with their evidence too')
  .action(run(async (opts: { kubeconfig?: string; verbose?: boolean }, cmd: Command) => (await localCmds()).doctorCommand(localGlobals(cmd), opts)));
const db = local.command('db').description('the PostgreSQL cluster: switchover, failover, restart, reinit (through Patroni), backup, restore, migrate');
const dbCmds = () => import('./db.ts');
/** Patroni's operations, for the local cluster (`local db`) and the production one (`db`); the last field: takes a member. */
const DB_OPERATIONS = [
  ['switchover', 'planned switchover: the leader hands over to a healthy replica (the synchronous standby unless --to)', false],
  ['failover', 'promote the member named by --to, whether or not there is a healthy leader', false],
  ['restart', "restart one member's PostgreSQL through its Patroni", true],
  ['reinit', "wipe a replica's data and build it again: from a recent backup (backups.enabled), else from the leader (never the leader)", true],
] as const;
for (const [name, description, member] of DB_OPERATIONS) {
  const c = db.command(name).description(description);
  if (member) {
    c.argument('<member>', 'member name (node1, node2, …)')
      .option('-y, --yes', 'do not ask for confirmation')
      .option('--timeout <seconds>', 'how long to wait for the member to be running again', '300')
      .action(
        run(async (m: string, opts: { yes?: boolean; timeout: string }, cmd: Command) => (await dbCmds()).dbOperationCommand(localGlobals(cmd), name, m, opts)),
      );
  } else {
    c.option('--to <member>', 'the member to promote')
      .option('-y, --yes', 'do not ask for confirmation')
      .option('--timeout <seconds>', 'how long to wait for the new leader', '120')
      .action(
        run(async (opts: { to?: string; yes?: boolean; timeout: string }, cmd: Command) =>
          (await dbCmds()).dbOperationCommand(localGlobals(cmd), name, undefined, opts),
        ),
      );
  }
}
const backupCmd = db
  .command('backup')
  .description('backups: pgBackRest base backups into the repository (backups.enabled), or a logical dump; list them; verify one by restoring it');
backupCmd
  .command('run', { isDefault: true })
  .description(
    'take a backup: pgBackRest (full, diff or incr, from a standby) when backups are enabled, else a logical dump (pg_dumpall --globals-only + pg_dump -Fc per database, with row counts and SHA-256)',
  )
  .addOption(new Option('--type <type>', 'pgBackRest backup type (default: incr; the first is always full)').choices(['full', 'diff', 'incr']))
  .option('--logical', 'a logical dump even when backups are enabled')
  .option('--out <dir>', 'logical dump: where to write it (default: <state>/backups/<time>)')
  .option('-d, --database <name...>', 'logical dump: only these databases (default: all)')
  .action(
    run(async (opts: { type?: 'full' | 'diff' | 'incr'; logical?: boolean; out?: string; database?: string[] }, cmd: Command) =>
      (await dbCmds()).backupCommand(localGlobals(cmd), opts),
    ),
  );
backupCmd
  .command('list')
  .description("the repository's backups (pgbackrest info), its archived WAL range and the last restore test")
  .action(run(async (_o: unknown, cmd: Command) => (await dbCmds()).backupListCommand(localGlobals(cmd))));
backupCmd
  .command('verify')
  .description(
    "restore a backup (the newest by default) into a throwaway instance, run pg_amcheck, and compare every table's row count with a standby's at the same point",
  )
  .option('--set <label>', 'the backup to test (see `db backup list`)')
  .action(run(async (opts: { set?: string }, cmd: Command) => (await dbCmds()).backupVerifyCommand(localGlobals(cmd), opts)));
db.command('restore')
  .description(
    "point in time: `--to <time|LSN|latest>` rebuilds the cluster from the repository (a safety backup first); or a logical dump's directory, checksums first, every table's row count verified",
  )
  .argument('[dir]', 'a directory a logical `db backup` wrote')
  .option('--to <target>', 'point-in-time recovery of the whole cluster: latest, a time with its offset (2026-11-30T09:15:00Z) or an LSN')
  .option('--from <label>', 'with --to: the backup to start from (default: the newest one consistent before the target)')
  .option(
    '--beside',
    'with --to: restore into a standalone instance beside the running cluster (its own socket, no TCP) and leave it running to read from; the cluster is not touched',
  )
  .option('--stop-beside', 'stop and remove the instance a `--beside` restore left running')
  .option('--timeout <seconds>', 'with --to: how long to wait for the restored leader and its replicas', '600')
  .option('-d, --database <name...>', 'only these databases (default: all in the backup)')
  .option('-y, --yes', 'do not ask for confirmation')
  .action(
    run(
      async (
        dir: string | undefined,
        opts: { to?: string; from?: string; beside?: boolean; stopBeside?: boolean; timeout: string; database?: string[]; yes?: boolean },
        cmd: Command,
      ) => (await dbCmds()).restoreCommand(localGlobals(cmd), dir, opts),
    ),
  );
db.command('migrate')
  .description("copy databases from another PostgreSQL (such as an old Docker Compose one) into the cluster and verify every table's row count; safe to re-run")
  .requiredOption('--from <url>', 'postgresql://USER:PASSWORD@HOST:PORT/?sslmode=… of the source')
  .option('-d, --database <name...>', 'only these databases (default: all the source has)')
  .option('-y, --yes', 'do not ask before overwriting databases that have tables')
  .action(run(async (opts: { from: string; database?: string[]; yes?: boolean }, cmd: Command) => (await dbCmds()).migrateCommand(localGlobals(cmd), opts)));
local
  .command('dashboard')
  .description("a live web page of the cluster: members, routing, the router's decisions, alerts and charts (until Ctrl-C)")
  .option('--address <ip>', 'where to listen; beyond loopback a token is required', '127.0.0.1')
  .option('--port <port>', 'where to listen', '7700')
  .option('--token-file <file>', 'require the token in this file (made and kept in the state directory when --address is not loopback)')
  .option('--interval <ms>', 'how often routing and roles are looked at', '250')
  .action(run(async (opts: DashboardFlags, cmd: Command) => (await import('./dashboard.ts')).dashboardCommand(localGlobals(cmd), opts)));
local
  .command('backup-scheduler', { hidden: true })
  .description('the backup scheduler process that `local up --with-backups` starts')
  .action(run(async (_o: unknown, cmd: Command) => (await localCmds()).backupSchedulerCommand(localGlobals(cmd))));
local
  .command('logs')
  .description('the last lines of a process log (etcd-node1, patroni-node2, haproxy) or of every process')
  .argument('[process]', 'process id or member name')
  .option('-n, --lines <n>', 'how many lines', '50')
  .action(run(async (member: string | undefined, opts: { lines: string }, cmd: Command) => (await localCmds()).logsCommand(localGlobals(cmd), member, opts)));

const platformCmds = () => import('./platform.ts');
type RenderFlags = { config: string; secretsDir?: string; out: string; withSecrets?: boolean; hostRoot?: string; json?: boolean };
const renderFlags = (cmd: Command) =>
  cmd
    .option('-c, --config <file>', 'config file', 'gardenos.yaml')
    .option('--secrets-dir <dir>', 'generated secrets and PKI (default: .gardenos/secrets beside the config file)')
    .option('--out <dir>', 'the render directory', 'rendered')
    .option('--with-secrets', 'also write certificates, keys, the K3s token and the Kubernetes Secrets (0600)')
    .option('--host-root <dir>', 'render host paths under this root ({node} is the node name); for staging and tests')
    .option('--json', 'machine-readable output');

const remoteCmds = () => import('./remote.ts');
const sshFlags = (cmd: Command) =>
  cmd
    .option('-c, --config <file>', 'config file', 'gardenos.yaml')
    .option('--known-hosts <file>', 'SSH known_hosts to verify host keys against', '~/.ssh/known_hosts')
    .option('--trust-new-host-keys', 'record the key of a host known_hosts does not list yet (a changed key is always refused)')
    .option('--json', 'machine-readable result; progress as JSON lines on stderr');
sshFlags(program.command('up').description('provision the hosts over SSH and apply the platform: phased, idempotent, one host at a time where quorum matters'))
  .option('--secrets-dir <dir>', 'generated secrets and PKI (default: .gardenos/secrets beside the config file)')
  .option('--dry-run', 'print the exact per-host plan and change nothing')
  .option('--skip <phases...>', 'leave phases out (etcd, k3s, haproxy, kubeconfig, manifests, database, backups, verify)')
  .option('--concurrency <n>', 'hosts worked on at once', '3')
  .option('--timeout <seconds>', 'deadline for each wait (etcd healthy, a node Ready)', '120')
  .option('--kubeconfig <file>', 'where to write the kubeconfig (default: kubeconfig beside the config file)')
  .option('--no-wait', 'apply the manifests without waiting for the Deployments and StatefulSets to roll out')
  .action(run(async (opts: Parameters<Awaited<ReturnType<typeof remoteCmds>>['upCommand']>[0]) => (await remoteCmds()).upCommand(opts)));
sshFlags(program.command('kubeconfig').description("write a kubeconfig for the platform whose server is the HAProxy address (from the first K3s server's)"))
  .option('--out <file>', 'where to write it (default: kubeconfig beside the config file)')
  .action(run(async (opts: Parameters<Awaited<ReturnType<typeof remoteCmds>>['kubeconfigCommand']>[0]) => (await remoteCmds()).kubeconfigCommand(opts)));
sshFlags(
  program.command('reset').description('tear hosts down (asks first): etcd snapshot and PostgreSQL dump copied here, then services stopped and files removed'),
)
  .option('--host <name...>', 'only these nodes (default: all)')
  .option('--backup-dir <dir>', 'where the backups go (default: .gardenos/backups beside the config file)')
  .option('-y, --yes', 'do not ask for confirmation')
  .action(run(async (opts: Parameters<Awaited<ReturnType<typeof remoteCmds>>['resetCommand']>[0]) => (await remoteCmds()).resetCommand(opts)));

program
  .command('status')
  .description(
    'the production platform: etcd, Patroni, HAProxy on every node, and K3s through the kubeconfig; exit 2 when degraded (`local status` for the local cluster)',
  )
  .option('-c, --config <file>', 'config file', 'gardenos.yaml')
  .option('--secrets-dir <dir>', 'generated secrets and PKI (default: .gardenos/secrets beside the config file)')
  .option('--kubeconfig <file>', 'K3s nodes, workloads and postgres-primary (default: the kubeconfig `up` wrote beside the config file)')
  .option('--timeout <ms>', 'deadline for each probe', '2000')
  .option('--json', 'machine-readable output')
  .action(
    run(async (opts: { config: string; secretsDir?: string; kubeconfig?: string; timeout?: string; json?: boolean }) =>
      (await platformCmds()).statusCommand(opts),
    ),
  );

program
  .command('dashboard')
  .description(
    'a live web page of the platform: members, routing, alerts and charts from its Prometheus (until Ctrl-C; `local dashboard` for the local cluster)',
  )
  .option('-c, --config <file>', 'config file', 'gardenos.yaml')
  .option('--secrets-dir <dir>', 'generated secrets and PKI (default: .gardenos/secrets beside the config file)')
  .option('--kubeconfig <file>', 'where postgres-primary points (default: the kubeconfig `up` wrote beside the config file)')
  .option('--prometheus <url>', "the platform's Prometheus, for alerts and charts (http://HOST:PORT)")
  .option('--address <ip>', 'where to listen; beyond loopback a token is required', '127.0.0.1')
  .option('--port <port>', 'where to listen', '7700')
  .option('--token-file <file>', 'require the token in this file (made and kept in the secrets directory when --address is not loopback)')
  .option('--interval <ms>', 'how often the platform is looked at', '1000')
  .option('--json', 'print the address as JSON')
  .action(
    run(async (opts: DashboardFlags & { config: string; secretsDir?: string; kubeconfig?: string; prometheus?: string; json?: boolean }) =>
      (await import('./dashboard.ts')).platformDashboardCommand(opts),
    ),
  );

// `gardenos db …`: the production cluster's Patroni operations (`local db` for the local cluster).
const platformDb = program
  .command('db')
  .description(
    "the production PostgreSQL cluster: switchover, failover, restart, reinit (Patroni's REST API on the postgres nodes); backup and point-in-time restore (pgBackRest, through Kubernetes)",
  );
for (const [name, description, member] of DB_OPERATIONS) {
  const c = platformDb.command(name).description(description);
  if (member) c.argument('<member>', 'the Patroni member (on Kubernetes, the pod: <scope>-0, …)');
  else c.option('--to <member>', 'the member to promote');
  if (name === 'switchover')
    c.option(
      '--kubeconfig <file>',
      "with pooler.enabled: where the pooler's pods are paused (default: the kubeconfig `up` wrote beside the config file)",
    ).option('--no-pause', 'with pooler.enabled: switch over without pausing the pooler (its clients see errors, as without one)');
  c.option('-c, --config <file>', 'config file', 'gardenos.yaml')
    .option('--secrets-dir <dir>', 'generated secrets and PKI (default: .gardenos/secrets beside the config file)')
    .option('-y, --yes', 'do not ask for confirmation')
    .option('--timeout <seconds>', 'how long to wait for the outcome', member ? '300' : '120')
    .option('--json', 'machine-readable output')
    .action(
      run(async (...args: unknown[]) => {
        type Opts = { config: string; secretsDir?: string; to?: string; yes?: boolean; timeout: string; json?: boolean; kubeconfig?: string; pause?: boolean };
        const opts = (member ? args[1] : args[0]) as Opts;
        return (await dbCmds()).platformDbCommand(opts, name, member ? (args[0] as string) : undefined);
      }),
    );
}

const platformBackupCmd = platformDb
  .command('backup')
  .description("the platform's backups (backups.enabled): pgBackRest into the repository pod, on the schedules' CronJobs; take one now, list them");
const platformOpts = (c: Command) =>
  c
    .option('-c, --config <file>', 'config file', 'gardenos.yaml')
    .option('--secrets-dir <dir>', 'generated secrets and PKI (default: .gardenos/secrets beside the config file)')
    .option('--kubeconfig <file>', 'the platform (default: the kubeconfig `up` wrote beside the config file)')
    .option('--json', 'machine-readable output');
platformOpts(
  platformBackupCmd
    .command('run', { isDefault: true })
    .description(
      "take a backup now, as the schedule does: a Job from the full backup CronJob's template (from a standby; a full one followed by its restore test with verifyAfterFull)",
    )
    .addOption(new Option('--type <type>', 'pgBackRest backup type (default: incr; the first is always full)').choices(['full', 'diff', 'incr']))
    .option('--timeout <seconds>', 'how long to wait for the Job', '3600'),
).action(
  run(async (opts: { config: string; secretsDir?: string; kubeconfig?: string; type?: 'full' | 'diff' | 'incr'; timeout: string; json?: boolean }) =>
    (await dbCmds()).platformBackupCommand(opts),
  ),
);
platformOpts(
  platformBackupCmd.command('list').description("the repository's backups (pgbackrest info in its pod), its archived WAL range and the last restore test"),
).action(run(async (opts: { config: string; secretsDir?: string; kubeconfig?: string; json?: boolean }) => (await dbCmds()).platformBackupListCommand(opts)));

platformOpts(
  platformDb
    .command('restore')
    .description(
      "point-in-time recovery: rebuild the platform's PostgreSQL from the repository at a time, an LSN or the latest archived WAL (a safety backup first; asks first), or restore it beside the cluster",
    )
    .option('--to <target>', 'latest, a time with its offset (2026-11-30T09:15:00Z) or an LSN (0/3000060)')
    .option('--from <backup>', 'the backup to start from (default: the newest one before the target)')
    .option(
      '--beside',
      'restore into a pod of its own beside the cluster (Unix socket only; read it with kubectl exec) and leave it running; the cluster is not touched',
    )
    .option('--stop-beside', 'delete the pod a `--beside` restore left running')
    .option('-y, --yes', 'do not ask for confirmation')
    .option('--timeout <seconds>', 'how long to wait for each step (the backups, the restored leader, its replicas)', '900'),
).action(run(async (opts: PlatformRestoreOptions) => (await dbCmds()).platformRestoreCommand(opts)));

program
  .command('doctor')
  .description(
    "diagnose the production platform: the journal's failures (etcd, Patroni, replication, volume permissions, pg_hba, postgres-primary, storage class, taints) with evidence and the exact fix; exit 2 on a problem",
  )
  .option('-c, --config <file>', 'config file', 'gardenos.yaml')
  .option('--secrets-dir <dir>', 'generated secrets and PKI (default: .gardenos/secrets beside the config file)')
  .option('--kubeconfig <file>', 'the Kubernetes side (default: the kubeconfig `up` wrote beside the config file)')
  .option('--timeout <ms>', 'deadline for each probe', '2000')
  .option('--known-hosts <file>', "SSH known_hosts to verify host keys against (systemd's view of each host's services)", '~/.ssh/known_hosts')
  .option('--no-ssh', "do not log in to the hosts (skips systemd's view of their services)")
  .option('-v, --verbose', 'show passed and skipped checks with their evidence too')
  .option('--json', 'machine-readable output')
  .action(
    run(
      async (opts: {
        config: string;
        secretsDir?: string;
        kubeconfig?: string;
        timeout?: string;
        verbose?: boolean;
        json?: boolean;
        knownHosts?: string;
        ssh?: boolean;
      }) => (await platformCmds()).doctorCommand(opts),
    ),
  );

program
  .command('pki')
  .description('create the cluster CA and every certificate (etcd members and clients, PostgreSQL) and the generated secrets; keep them 0600')
  .option('-c, --config <file>', 'config file', 'gardenos.yaml')
  .option('--secrets-dir <dir>', 'where they live (default: .gardenos/secrets beside the config file)')
  .option(
    '--rotate <name...>',
    're-issue these certificates (all: every leaf; ca: a new CA and every leaf); supabase: new JWT secret and keys, the previous still accepted',
  )
  .option('--retire <name>', 'supabase: stop accepting the previous JWT secret and keys (ends a rotation; secrets.json is copied first)')
  .option('--yes', 'do not ask for confirmation (--retire)')
  .option('--json', 'machine-readable output')
  .action(
    run(async (opts: { config: string; secretsDir?: string; rotate?: string[]; retire?: string; yes?: boolean; json?: boolean }) =>
      (await platformCmds()).pkiCommand(opts),
    ),
  );

renderFlags(program.command('plan').description('what `render` would change in the render directory: files added, removed and changed, with a diff')).action(
  run(async (opts: RenderFlags) => (await platformCmds()).planCommand(opts)),
);

const render = renderFlags(
  program
    .command('render')
    .description(
      'render the platform from gardenos.yaml: per-host etcd, K3s and HAProxy files, Kubernetes manifests (kubectl apply -k), Supabase bootstrap SQL',
    ),
).action(run(async (opts: RenderFlags) => (await platformCmds()).renderCommand(opts)));
render
  .command('router')
  .description('Kubernetes manifests for the primary router (Deployment, RBAC, Services, Lease, settings) on stdout')
  .option('-c, --config <file>', 'config file', 'gardenos.yaml')
  .action(
    run(async (opts: { config: string }) => {
      const { loadConfig } = await import('../config/load.ts');
      const { renderRouterManifests } = await import('../render/kube/router.ts');
      process.stdout.write(renderRouterManifests(await loadConfig(opts.config)));
      return 0;
    }),
  );

program
  .command('router')
  .description('follow the Patroni leader through etcd and point HAProxy and/or Kubernetes at it (runs until stopped)')
  .requiredOption('--config <file>', 'router settings rendered by GardenOS (router.yml)')
  .action(
    run(async (opts: { config: string }) => {
      const { loadRouterSettings } = await import('../router/settings.ts');
      const { startRouter } = await import('../router/main.ts');
      const settings = await loadRouterSettings(opts.config);
      const running = await startRouter(settings, (line) => process.stdout.write(`${line}\n`));
      await new Promise<void>((resolve) => {
        process.once('SIGTERM', resolve);
        process.once('SIGINT', resolve);
      });
      await running.stop();
      return 0;
    }),
  );

program
  .command('gateway-auth')
  .description("Supabase's apikey check for Traefik's forwardAuth (runs beside Traefik in its pod; keys from SUPABASE_ANON_KEY and SUPABASE_SERVICE_ROLE_KEY)")
  .option('--listen <host:port>', 'where to answer', `127.0.0.1:${GATEWAY_AUTH_PORT}`)
  .action(
    run(async (opts: { listen: string }) => {
      const { GardenError } = await import('../errors.ts');
      const { serveApikeyCheck } = await import('../gateway/apikey.ts');
      const anonKey = process.env.SUPABASE_ANON_KEY;
      const serviceRoleKey = process.env.SUPABASE_SERVICE_ROLE_KEY;
      if (!anonKey || !serviceRoleKey) {
        throw new GardenError('CONFIG_INVALID', 'gateway-auth needs SUPABASE_ANON_KEY and SUPABASE_SERVICE_ROLE_KEY in its environment', {
          hint: 'the rendered Traefik DaemonSet sets them from the supabase-gateway Secret',
        });
      }
      const at = opts.listen.lastIndexOf(':');
      const listen = { host: opts.listen.slice(0, at), port: Number(opts.listen.slice(at + 1)) };
      if (at <= 0 || !Number.isInteger(listen.port) || listen.port < 1 || listen.port > 65535)
        throw new GardenError('CONFIG_INVALID', `--listen ${opts.listen}: expected host:port, such as 127.0.0.1:${GATEWAY_AUTH_PORT}`);
      const [previousAnon, previousService] = [process.env.SUPABASE_PREVIOUS_ANON_KEY, process.env.SUPABASE_PREVIOUS_SERVICE_ROLE_KEY];
      const previous = previousAnon && previousService ? { anonKey: previousAnon, serviceRoleKey: previousService } : undefined;
      const server = await serveApikeyCheck({ anonKey, serviceRoleKey, ...(previous ? { previous } : {}) }, listen).catch((e: NodeJS.ErrnoException) => {
        throw e.code === 'EADDRINUSE'
          ? new GardenError('PORT_IN_USE', `${opts.listen} is in use`, { hint: 'stop what listens there, or choose another --listen' })
          : e;
      });
      process.stdout.write(`${JSON.stringify({ ts: new Date().toISOString(), msg: 'gateway-auth listening', listen: opts.listen })}\n`);
      await new Promise<void>((resolve) => {
        process.once('SIGTERM', resolve);
        process.once('SIGINT', resolve);
      });
      server.close();
      return 0;
    }),
  );

await program.parseAsync(process.argv);
