/**
 * The chaos run shared by the platforms' reliability tests (`test/aws/chaos.test.ts`,
 * `test/gcp/chaos.test.ts`): consumer processes (each a `--conditions=source` script that
 * builds a broker, `start()`s it and runs {@link runWorker}) are SIGKILLed on a schedule and
 * restarted while the test publishes; the handlers fail 20% of first deliveries and 1% of
 * messages always. Afterwards every message must be handled at least once or dead-lettered
 * with its reason, none lost, the queue empty; redeliveries and duplicates are counted.
 *
 * Worker protocol, one line each, appended with `writeSync` to the worker's own file (path in
 * `CLOUDMOM_CHAOS_LOG`), which the harness reads as it grows: `READY`, `D <n> <deliveryCount>`
 * when a handler starts, `H <n>` when it succeeded, `W <message>` / `E <message>` for the
 * broker's warn/error log lines (messages only: no fields, no content). Not stdout: a pipe the
 * parent reads slowly fills up, Node then queues writes in the process, and a SIGKILL loses
 * them — messages handled and acknowledged looked lost (30 of 10,000 in one CI run). A line
 * written to a file is in the kernel once `writeSync` returns, and survives the kill.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Broker, Logger } from 'cloudmom';
import { ROOT } from '../emulators/harness.ts';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Always fails: dead-lettered with the reason (1%). */
export const poison = (n: number) => n % 100 === 99;
/** Fails its first delivery only (20%). */
export const failsFirst = (n: number) => n % 5 === 0;

let out: number | undefined;
/** Writes one protocol line, synchronously, to the worker's file (see the protocol above). */
function line(text: string): void {
  const path = process.env.CLOUDMOM_CHAOS_LOG;
  if (!path) throw new Error('a chaos worker runs under runChaos (CLOUDMOM_CHAOS_LOG is not set)');
  out ??= openSync(path, 'a');
  writeSync(out, `${text}\n`);
}

/**
 * The worker side: adds the `chaos` handler to `broker`, starts it, prints `READY`; SIGTERM
 * stops it and exits. The broker must have been built with {@link workerLogger}.
 */
export async function runWorker(broker: Broker): Promise<void> {
  broker.add('chaos', async (p, body: { n: number }) => {
    const n = body.n;
    line(`D ${n} ${p.deliveryCount}`);
    await sleep(Math.random() * 4);
    if (poison(n)) throw new Error(`poison ${n}`);
    if (failsFirst(n) && p.deliveryCount <= 1) throw new Error(`first delivery of ${n} fails`);
    line(`H ${n}`);
  });
  await broker.start();
  line('READY');
  process.on('SIGTERM', () => {
    void broker.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
}

/** A logger for workers: warn and error messages (not their fields) as `W`/`E` lines. */
export const workerLogger: Logger = {
  debug() {},
  info() {},
  warn(m, fields) {
    line(`W ${m.replace(/\n/g, ' ')}${codes(fields)}`);
  },
  error(m, fields) {
    line(`E ${m.replace(/\n/g, ' ')}${codes(fields)}`);
  },
};

/** The error codes/names among a log line's fields (to tell failures apart). */
function codes(fields: Record<string, unknown> | undefined): string {
  if (!fields) return '';
  const picked: unknown[] = [];
  for (const k of ['codes', 'code', 'errorCode', 'reason', 'error'])
    if (fields[k] !== undefined)
      picked.push(k === 'error' ? String(fields[k]).slice(0, 120) : fields[k]);
  return picked.length ? ` ${JSON.stringify(picked)}` : '';
}

export interface DeadLetter {
  readonly n: number;
  readonly reason: string;
  readonly description: string;
}

export interface ChaosSetup {
  /** Row name in RELIABILITY.md, e.g. `SQS standard queue (moto)`. */
  readonly platform: string;
  /** Command that runs the test (for the table). */
  readonly command: string;
  readonly total: number;
  /** The worker script (under ROOT) and its one JSON argument. */
  readonly worker: string;
  readonly settings: object;
  /** Publishes message `{ n }` to target `chaos` (retried by the harness on failure). */
  publish(n: number): Promise<unknown>;
  /** Dead letters read since the last call (each call returns only new ones). */
  readDeadLetters(): Promise<DeadLetter[]>;
  /** Messages still in the queue (visible or in flight); 0 when empty. */
  queueDepth(): Promise<number>;
  /** Most messages published but not yet settled (publishing waits below it). Default 1000. */
  readonly backlog?: number;
  readonly consumers?: number;
  /** Handled fractions at which a consumer (round robin) is SIGKILLed. Default 15%, 40%, 65%. */
  readonly killAt?: readonly number[];
  /** How long a killed consumer stays down. Default 500 ms. */
  readonly downMs?: number;
  /**
   * Time after the last kill before the queue is checked for emptiness, when `queueDepth`
   * cannot see the messages a killed consumer still holds (their lock must expire first).
   * Default 0.
   */
  readonly quietAfterKillMs?: number;
  /** Bound on the wait for every message to be accounted for after publishing. Default 120 s. */
  readonly drainMs?: number;
}

export interface ChaosResult {
  readonly platform: string;
  readonly messages: number;
  readonly kills: number;
  readonly restarts: number;
  /** Deliveries beyond the first, per message (the highest delivery count a handler saw, minus 1). */
  readonly redeliveries: number;
  /** Handler invocations beyond the first, per message. */
  readonly extraInvocations: number;
  /** Successful handlings beyond the first, per message. */
  readonly duplicates: number;
  /** Distinct messages dead-lettered. */
  readonly deadLetters: number;
  /** Dead-letter copies of a message beyond the first. */
  readonly deadLetterDuplicates: number;
  readonly deadLetterRecords: readonly DeadLetter[];
  readonly lost: readonly number[];
  /** Messages handled and dead-lettered both. */
  readonly handledAndDead: number;
  readonly queueDepth: number;
  readonly seconds: number;
  readonly publishRetries: number;
  /** Worker warn/error log messages, counted by text. */
  readonly logs: ReadonlyMap<string, number>;
  readonly handledByKilled: number;
  readonly summary: string;
}

interface Consumer {
  child: ChildProcess;
  ready: boolean;
  exited: Promise<void>;
  handled: number;
}

/** Runs the chaos scenario and returns the figures (assertions are the caller's). */
export async function runChaos(s: ChaosSetup): Promise<ChaosResult> {
  const total = s.total;
  const consumers = s.consumers ?? 3;
  const killAt = s.killAt ?? [0.15, 0.4, 0.65];
  const downMs = s.downMs ?? 500;
  const backlog = s.backlog ?? 1000;
  const invocations = new Uint32Array(total);
  const successes = new Uint32Array(total);
  const maxDelivery = new Uint32Array(total);
  let distinctHandled = 0;
  const logs = new Map<string, number>();
  const dead = new Map<number, DeadLetter[]>();
  let handledByKilled = 0;

  const logDir = mkdtempSync(join(tmpdir(), 'cloudmom-chaos-'));
  let spawned = 0;
  const startConsumer = (): Consumer => {
    const file = join(logDir, `worker-${spawned++}.log`);
    writeFileSync(file, '');
    const fd = openSync(file, 'r');
    const child = spawn(
      join(ROOT, 'node_modules/.bin/node'),
      ['--conditions=source', join(ROOT, s.worker), JSON.stringify(s.settings)],
      {
        cwd: ROOT,
        stdio: ['ignore', 'inherit', 'inherit'],
        env: { ...process.env, CLOUDMOM_CHAOS_LOG: file },
      },
    );
    let rest = '';
    let offset = 0;
    const chunk = Buffer.alloc(1 << 16);
    const read = () => {
      for (;;) {
        const got = readSync(fd, chunk, 0, chunk.length, offset);
        if (got === 0) return;
        offset += got;
        const lines = (rest + chunk.toString('utf8', 0, got)).split('\n');
        rest = lines.pop()!;
        for (const l of lines) take(l);
      }
    };
    const c: Consumer = {
      child,
      ready: false,
      handled: 0,
      // everything the worker wrote is read before its exit counts
      exited: new Promise((r) =>
        child.once('exit', () => {
          clearInterval(poll);
          read();
          closeSync(fd);
          r();
        }),
      ),
    };
    const take = (l: string) => {
      const kind = l[0];
      if (kind === 'H') {
        const n = Number(l.slice(2));
        if (successes[n] === 0) distinctHandled++;
        successes[n] = successes[n]! + 1;
        c.handled++;
      } else if (kind === 'D') {
        const sp = l.indexOf(' ', 2);
        const n = Number(l.slice(2, sp));
        const dc = Number(l.slice(sp + 1));
        invocations[n] = invocations[n]! + 1;
        if (dc > maxDelivery[n]!) maxDelivery[n] = dc;
      } else if (l === 'READY') c.ready = true;
      else if (kind === 'W' || kind === 'E') logs.set(l, (logs.get(l) ?? 0) + 1);
    };
    const poll = setInterval(read, 10);
    return c;
  };
  const waitReady = async (c: Consumer) => {
    for (let i = 0; i < 600 && !c.ready; i++) await sleep(50);
    if (!c.ready) throw new Error(`a ${s.platform} chaos worker did not start in 30 s`);
  };

  const pool: Consumer[] = Array.from({ length: consumers }, startConsumer);
  const all = () => pool;
  try {
    await Promise.all(pool.map(waitReady));
    const started = Date.now();
    const deadCount = () => dead.size;
    const settled = () => distinctHandled + deadCount();

    let polling = true;
    const pollDead = async () => {
      while (polling) {
        for (const d of await s.readDeadLetters().catch(() => [])) {
          const l = dead.get(d.n);
          if (l) l.push(d);
          else dead.set(d.n, [d]);
        }
        await sleep(250);
      }
    };
    const deadPoller = pollDead();

    let publishRetries = 0;
    let published = 0;
    const publishAll = async () => {
      for (let n = 0; n < total; n += 100) {
        for (let i = 0; i < 2000 && published - settled() > backlog; i++) await sleep(10);
        await Promise.all(
          Array.from({ length: Math.min(100, total - n) }, async (_, i) => {
            for (let attempt = 0; ; attempt++) {
              try {
                await s.publish(n + i);
                return;
              } catch (err) {
                if (attempt > 50) throw err;
                publishRetries++;
                await sleep(100);
              }
            }
          }),
        );
        published = n + 100;
      }
    };

    let kills = 0;
    let restarts = 0;
    let lastKill = 0;
    const chaos = async () => {
      for (let k = 0; k < killAt.length; k++) {
        const deadline = Date.now() + 120_000;
        while (distinctHandled < total * killAt[k]! && Date.now() < deadline) await sleep(5);
        const i = k % consumers;
        const victim = pool[i]!;
        victim.child.kill('SIGKILL');
        await victim.exited;
        lastKill = Date.now();
        handledByKilled += victim.handled;
        kills++;
        await sleep(downMs);
        const fresh = startConsumer();
        pool[i] = fresh;
        await waitReady(fresh);
        restarts++;
      }
    };
    await Promise.all([publishAll(), chaos()]);

    const everyone = Array.from({ length: total }, (_, n) => n);
    const missing = () => everyone.filter((n) => successes[n] === 0 && !dead.has(n));
    const drainDeadline = Date.now() + (s.drainMs ?? 120_000);
    while (missing().length > 0 && Date.now() < drainDeadline) await sleep(250);
    const quiet = lastKill + (s.quietAfterKillMs ?? 0) - Date.now();
    if (quiet > 0) await sleep(quiet);
    // handled is reported before the ack: wait (bounded) for the acks to empty the queue
    let depth = await s.queueDepth();
    for (let i = 0; i < 120 && depth > 0; i++) {
      await sleep(250);
      depth = await s.queueDepth();
    }
    const seconds = (Date.now() - started) / 1000;
    polling = false;
    await deadPoller;
    for (const d of await s.readDeadLetters().catch(() => [])) {
      const l = dead.get(d.n);
      if (l) l.push(d);
      else dead.set(d.n, [d]);
    }

    const lost = missing();
    let redeliveries = 0;
    let extraInvocations = 0;
    let duplicates = 0;
    let handledAndDead = 0;
    for (let n = 0; n < total; n++) {
      if (invocations[n]! > 1) extraInvocations += invocations[n]! - 1;
      if (maxDelivery[n]! > 1) redeliveries += maxDelivery[n]! - 1;
      if (successes[n]! > 1) duplicates += successes[n]! - 1;
      if (successes[n]! > 0 && dead.has(n)) handledAndDead++;
    }
    const records = [...dead.values()].flat();
    const result = {
      platform: s.platform,
      messages: total,
      kills,
      restarts,
      redeliveries,
      extraInvocations,
      duplicates,
      deadLetters: dead.size,
      deadLetterDuplicates: records.length - dead.size,
      deadLetterRecords: records,
      lost,
      handledAndDead,
      queueDepth: depth,
      seconds,
      publishRetries,
      logs,
      handledByKilled,
    };
    const summary =
      `chaos ${s.platform}: ${total} messages, ${kills} kills, ${restarts} restarts, ` +
      `${redeliveries} redeliveries, ${duplicates} duplicates, ${dead.size} dead letters ` +
      `(${result.deadLetterDuplicates} duplicate copies), ${lost.length} lost, queue depth ${depth}, ` +
      `${seconds.toFixed(1)} s (handler invocations beyond the first ${extraInvocations}, publish retries ${publishRetries}, handled by killed consumers ${handledByKilled}, ` +
      `worker logs: ${[...logs].map(([m, c]) => `${c}× ${m}`).join('; ') || 'none'})`;
    console.log(summary);
    if (lost.length > 0)
      // what became of the lost ones: how often a handler saw each, and the highest delivery count
      console.log(
        `chaos ${s.platform}: lost ${lost.length}, first ones (n: handler runs, highest delivery count): ${lost
          .slice(0, 20)
          .map((n) => `${n}: ${invocations[n]}, ${maxDelivery[n]}`)
          .join('; ')}`,
      );
    recordRow(result, s.command);
    return { ...result, summary };
  } finally {
    for (const c of all()) c.child.kill('SIGTERM');
    await Promise.race([Promise.all(all().map((c) => c.exited)), sleep(10_000)]);
    for (const c of all()) c.child.kill('SIGKILL');
    await Promise.all(all().map((c) => c.exited));
    rmSync(logDir, { recursive: true, force: true });
  }
}

const FILE = join(ROOT, 'RELIABILITY.md');
const HEADER =
  '| platform | messages | kills | restarts | redeliveries | duplicates | dead letters | lost | time | command |';

/**
 * With `CLOUDMOM_RELIABILITY_MD=1`, writes the run's row into RELIABILITY.md (replacing the
 * platform's row, if any).
 */
function recordRow(r: Omit<ChaosResult, 'summary'>, command: string): void {
  if (process.env.CLOUDMOM_RELIABILITY_MD !== '1' || !existsSync(FILE)) return;
  const row = `| ${r.platform} | ${r.messages.toLocaleString('en')} | ${r.kills} | ${r.restarts} | ${r.redeliveries.toLocaleString('en')} | ${r.duplicates} | ${r.deadLetters} | ${r.lost.length} | ${r.seconds.toFixed(1)} s | \`${command}\` |`;
  const lines = readFileSync(FILE, 'utf8').split('\n');
  const at = lines.findIndex((l) => l.startsWith(`| ${r.platform} |`));
  if (at >= 0) lines[at] = row;
  else {
    const h = lines.indexOf(HEADER);
    if (h < 0) return;
    let end = h + 2;
    while (end < lines.length && lines[end]!.startsWith('|')) end++;
    lines.splice(end, 0, row);
  }
  writeFileSync(FILE, lines.join('\n'));
}
