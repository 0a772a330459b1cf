/**
 * RabbitMQ for tests: Debian's `rabbitmq-server`, installed with apt where it is missing, run
 * as this run's own node on 127.0.0.1 — its own node name, AMQP, distribution and epmd ports,
 * data and log folders under `.cache/amqp/` — under `timeout`, ready once an AMQP connection
 * opens, stopped at the end (the node's process group, then epmd by its own PID).
 *
 * `CLOUDMOM_AMQP_URL` from the environment replaces it (then `ctl` is undefined and the tests
 * that restart the node or import definitions are skipped).
 *
 * Used by the `amqp` test project's global setup and by `bench/amqp.bench.ts`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { cacheDir, freePort, log, PEER_LIFETIME_S, portOpen, run } from '../harness.ts';

const SERVER = '/usr/lib/rabbitmq/bin/rabbitmq-server';
const CTL = '/usr/lib/rabbitmq/bin/rabbitmqctl';
const POLICY = '/usr/sbin/policy-rc.d';
const ENV_VAR = 'CLOUDMOM_AMQP_URL';

/** How tests reach the started node's CLI (`rabbitmqctl`): its environment and node name. */
export interface RabbitCtl {
  readonly node: string;
  readonly env: Readonly<Record<string, string>>;
}

export interface RunningRabbit {
  /** `amqp://guest:guest@127.0.0.1:<port>` */
  readonly url: string;
  /** Undefined when the node came from `CLOUDMOM_AMQP_URL`. */
  readonly ctl?: RabbitCtl;
  /** Milliseconds from spawn to the first AMQP connection (0 when from the environment). */
  readonly startMs: number;
  /** Stops the node and epmd; resolves with how long it took (ms). */
  stop(): Promise<number>;
}

/**
 * Installs Debian's `rabbitmq-server` when it is missing: `apt-get update` once, then
 * `apt-get install -y rabbitmq-server`, with a `policy-rc.d` that exits 101 during the
 * install so that its postinstall does not start a default node on 0.0.0.0:5672 (the guard is
 * removed afterwards only if this function created it). Serialized by a lock file, so
 * parallel runs install once.
 */
export function ensureRabbitmq(): void {
  if (existsSync(SERVER)) return;
  const hint = `the amqp tests need Debian's rabbitmq-server (apt-get install rabbitmq-server, as root), or ${ENV_VAR}=amqp://user:pass@host:port of a running RabbitMQ`;
  if (process.getuid?.() !== 0 || !existsSync('/usr/bin/apt-get'))
    throw new Error(
      `rabbitmq-server is not installed and cannot be installed here (needs root and apt-get): ${hint}`,
    );
  const created = !existsSync(POLICY);
  if (created)
    writeFileSync(
      POLICY,
      '#!/bin/sh\n# cloudmom test harness: no service starts during install\nexit 101\n',
      { mode: 0o755 },
    );
  try {
    log('rabbitmq', 'installing rabbitmq-server with apt-get (once)');
    const t0 = Date.now();
    const apt = '-o DPkg::Lock::Timeout=300';
    const script = `test -x '${SERVER}' || { apt-get ${apt} update -qq && apt-get ${apt} install -y -qq --no-install-recommends rabbitmq-server; }`;
    run('flock', ['/tmp/cloudmom-apt.lock', 'sh', '-c', script], hint, {
      env: { DEBIAN_FRONTEND: 'noninteractive' },
    });
    log('rabbitmq', `installed in ${Date.now() - t0} ms`);
  } finally {
    if (created) unlinkSync(POLICY);
  }
  if (!existsSync(SERVER)) throw new Error(`apt-get ran but ${SERVER} is missing: ${hint}`);
}

/** The epmd binary of the installed Erlang. */
function epmdPath(): string {
  for (const p of ['/usr/bin/epmd', '/usr/lib/erlang/bin/epmd']) if (existsSync(p)) return p;
  const erts = existsSync('/usr/lib/erlang')
    ? readdirSync('/usr/lib/erlang').filter((d) => d.startsWith('erts-'))
    : [];
  for (const d of erts) {
    const p = join('/usr/lib/erlang', d, 'bin/epmd');
    if (existsSync(p)) return p;
  }
  throw new Error(
    'epmd (Erlang) not found; it comes with rabbitmq-server (apt-get install rabbitmq-server)',
  );
}

/** True once an AMQP 0-9-1 connection to `url` opens (a real handshake, not just the port). */
export async function amqpAnswers(url: string, timeoutMs = 2000): Promise<boolean> {
  const { Connection } = createRequire(import.meta.url)(
    'rabbitmq-client',
  ) as typeof import('rabbitmq-client');
  const conn = new Connection({ url, retryLow: 50, retryHigh: 200, connectionTimeout: timeoutMs });
  conn.on('error', () => {});
  try {
    await conn.onConnect(timeoutMs);
    return true;
  } catch {
    return false;
  } finally {
    conn.unsafeDestroy();
  }
}

/** Starts this run's node (or uses `CLOUDMOM_AMQP_URL`). */
export async function startRabbitmq(): Promise<RunningRabbit> {
  const fromEnv = process.env[ENV_VAR];
  if (fromEnv) {
    log('rabbitmq', `using ${ENV_VAR} from the environment`);
    if (!(await amqpAnswers(fromEnv, 5000)))
      throw new Error(`rabbitmq: ${ENV_VAR} does not answer an AMQP connection`);
    return { url: fromEnv, startMs: 0, stop: async () => 0 };
  }
  ensureRabbitmq();
  const [amqpPort, distPort, epmdPort] = [await freePort(), await freePort(), await freePort()];
  const name = `cloudmom-${amqpPort}`;
  const base = join(cacheDir('amqp'), name);
  rmSync(base, { recursive: true, force: true });
  const home = join(base, 'home');
  for (const d of ['home', 'mnesia', 'log']) mkdirSync(join(base, d), { recursive: true });
  const config = join(base, 'rabbitmq.conf');
  writeFileSync(
    config,
    [
      `listeners.tcp.default = 127.0.0.1:${amqpPort}`,
      'loopback_users = none',
      'disk_free_limit.absolute = 50MB',
      '',
    ].join('\n'),
  );
  writeFileSync(join(base, 'enabled_plugins'), '[].\n');
  writeFileSync(join(base, 'rabbitmq-env.conf'), '');
  const node = `${name}@localhost`;
  const dist = '-kernel inet_dist_use_interface {127,0,0,1}';
  const ctlEnv: Record<string, string> = {
    HOME: home,
    ERL_EPMD_ADDRESS: '127.0.0.1',
    ERL_EPMD_PORT: String(epmdPort),
    RABBITMQ_NODENAME: node,
    RABBITMQ_CONF_ENV_FILE: join(base, 'rabbitmq-env.conf'),
    RABBITMQ_CTL_ERL_ARGS: dist,
  };
  const env: Record<string, string> = {
    ...ctlEnv,
    RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
    RABBITMQ_NODE_PORT: String(amqpPort),
    RABBITMQ_DIST_PORT: String(distPort),
    RABBITMQ_MNESIA_BASE: join(base, 'mnesia'),
    RABBITMQ_LOG_BASE: join(base, 'log'),
    RABBITMQ_CONFIG_FILE: config,
    RABBITMQ_ENABLED_PLUGINS_FILE: join(base, 'enabled_plugins'),
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: dist,
  };
  const t0 = Date.now();
  // epmd first, in the foreground as our own child: the node finds it on ERL_EPMD_PORT and
  // does not daemonize one of its own (which would outlive the run with parent PID 1).
  const epmd = spawnChild(epmdPath(), ['-port', String(epmdPort), '-address', '127.0.0.1'], env);
  await waitFor(() => portOpen('127.0.0.1', epmdPort, 300), 10_000, 'epmd did not listen');
  const server = spawnChild(SERVER, [], env);
  const url = `amqp://guest:guest@127.0.0.1:${amqpPort}`;
  try {
    await waitFor(
      async () => {
        if (server.exited !== undefined)
          throw new Error(
            `rabbitmq-server exited with code ${server.exited} before answering:\n${server.output()}`,
          );
        return (await portOpen('127.0.0.1', amqpPort, 300)) && (await amqpAnswers(url, 2000));
      },
      90_000,
      'rabbitmq-server did not answer an AMQP connection',
      () => server.output(),
    );
  } catch (err) {
    await Promise.all([stopChild(server, 20_000), stopChild(epmd, 5000)]);
    throw err;
  }
  const startMs = Date.now() - t0;
  log(
    'rabbitmq',
    `node ${node} ready at 127.0.0.1:${amqpPort} in ${startMs} ms (epmd ${epmdPort}, dist ${distPort})`,
  );
  return {
    url,
    ctl: { node, env: ctlEnv },
    startMs,
    async stop() {
      const t1 = Date.now();
      await stopChild(server, 30_000);
      await stopChild(epmd, 5000);
      const ms = Date.now() - t1;
      log('rabbitmq', `stopped in ${ms} ms`);
      return ms;
    },
  };
}

/** Runs `rabbitmqctl <args>` against the test node; returns its output. */
export function rabbitmqctl(ctl: RabbitCtl, args: string[], timeoutS = 60): string {
  return run(
    'timeout',
    [String(timeoutS), CTL, '-n', ctl.node, ...args],
    'rabbitmqctl comes with rabbitmq-server',
    {
      env: { ...ctl.env },
    },
  );
}

interface Child {
  readonly process: ChildProcess;
  readonly exited: number | null | undefined;
  output(): string;
}

function spawnChild(cmd: string, args: string[], env: Record<string, string>): Child {
  const child = spawn(
    'timeout',
    ['--signal=TERM', '--kill-after=15', String(PEER_LIFETIME_S), cmd, ...args],
    {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // own process group: stop() signals the peer and its children
    },
  );
  const out: string[] = [];
  const keep = (b: Buffer) => {
    out.push(b.toString());
    if (out.length > 200) out.shift();
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const state: { exited: number | null | undefined } = { exited: undefined };
  child.on('exit', (code) => {
    state.exited = code;
  });
  return {
    process: child,
    get exited() {
      return state.exited;
    },
    output: () => out.join('').slice(-4000),
  };
}

/** SIGTERM to the child's process group, SIGKILL after `graceMs`; resolves once it exited. */
async function stopChild(child: Child, graceMs: number): Promise<void> {
  if (child.exited !== undefined) return;
  const pid = child.process.pid;
  const gone = new Promise<void>((r) => child.process.once('exit', () => r()));
  const signal = (s: NodeJS.Signals) => {
    try {
      if (pid) process.kill(-pid, s);
    } catch {
      // already gone
    }
  };
  signal('SIGTERM');
  const timer = setTimeout(() => signal('SIGKILL'), graceMs);
  await gone;
  clearTimeout(timer);
  // beam's helpers (erl_child_setup, inet_gethost) share the group: make sure none is left
  signal('SIGKILL');
}

async function waitFor(
  check: () => Promise<boolean>,
  timeoutMs: number,
  what: string,
  output?: () => string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline)
      throw new Error(`${what} within ${timeoutMs} ms${output ? `. Output:\n${output()}` : ''}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
