/**
 * The commands on a topology module (a file exporting `topology`, from `defineTopology`):
 * `cloudmom infra <platform>` and `cloudmom asyncapi` write what the generators of
 * `cloudmom/infra` give; `cloudmom dev` runs the app's handlers on the embedded broker, one
 * `MemoryBroker` per service with the topology's settings, and publishes what stdin says.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import type { Broker } from '../broker.ts';
import { type Logger, silentLogger } from '../log.ts';
import { MemoryBroker, MemoryHub } from '../memory.ts';
import type { Topology } from '../topology.ts';
import { EXIT, UsageError } from './args.ts';
import type { Context } from './context.ts';
import { bodyValue, println, toBody } from './io.ts';

const DEFAULT_TOPOLOGY = ['topology.ts', 'topology.js', 'topology.mjs'];

/** Loads a module (a path from the working directory). */
async function load(file: string, what: string): Promise<Record<string, unknown>> {
  try {
    return (await import(pathToFileURL(resolve(file)).href)) as Record<string, unknown>;
  } catch (err) {
    throw new UsageError(`cannot load the ${what} module ${file}: ${(err as Error).message}`);
  }
}

/** The topology of `--topology <file>` (default ./topology.ts, .js or .mjs): its `topology` or default export. */
export async function loadTopology(flag: unknown): Promise<Topology> {
  let file = typeof flag === 'string' ? flag : undefined;
  if (file === undefined) {
    const { existsSync } = await import('node:fs');
    file = DEFAULT_TOPOLOGY.find((f) => existsSync(f));
    if (file === undefined)
      throw new UsageError(
        `no topology: pass --topology <file> (a module exporting \`topology\` from defineTopology), or create ./topology.ts`,
      );
  }
  const m = await load(file, 'topology');
  const t = (m.topology ?? m.default) as Partial<Topology> | undefined;
  if (!t || typeof t.names !== 'function' || !Array.isArray(t.services))
    throw new UsageError(
      `${file} exports no topology: export const topology = defineTopology({...})`,
    );
  return t as Topology;
}

/** Writes generated files under `out` (created), printing their paths (or JSON). */
async function writeFiles(
  ctx: Context,
  files: readonly { path: string; content: string }[],
  out: string,
): Promise<number> {
  const written: { path: string; bytes: number }[] = [];
  for (const f of files) {
    const path = join(out, f.path);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, f.content);
    written.push({ path, bytes: Buffer.byteLength(f.content) });
  }
  if (ctx.json) println(ctx.io.stdout, JSON.stringify({ files: written }));
  else for (const w of written) println(ctx.io.stdout, `${w.path}  ${w.bytes} B`);
  return EXIT.ok;
}

/** `cloudmom infra <platform> [--topology f] [--out dir] [--options f.json]`. */
export async function infra(ctx: Context): Promise<number> {
  const { flags, args } = ctx.parsed;
  const topology = await loadTopology(flags.topology);
  const { generate } = await import('../infra/index.ts');
  let options: object | undefined;
  if (typeof flags.options === 'string') {
    try {
      options = JSON.parse(await readFile(flags.options, 'utf8'));
    } catch (err) {
      throw new UsageError(`--options ${flags.options}: ${(err as Error).message}`);
    }
  }
  const files = generate(args.platform!, topology, options);
  return writeFiles(ctx, files, typeof flags.out === 'string' ? flags.out : '.');
}

/** `cloudmom asyncapi [--topology f] [--out dir]`. */
export async function asyncapiCommand(ctx: Context): Promise<number> {
  const { flags } = ctx.parsed;
  const topology = await loadTopology(flags.topology);
  const { generateAsyncapi } = await import('../asyncapi.ts');
  return writeFiles(
    ctx,
    generateAsyncapi(topology),
    typeof flags.out === 'string' ? flags.out : '.',
  );
}

/** The handlers module's registration function: `register(broker, { service })` or its default export. */
type Register = (broker: Broker, context: { service: string }) => unknown;

/**
 * `cloudmom dev --topology f --handlers m`: one MemoryBroker per service (its queue, the
 * topology's broker options), the handlers registered on each; every stdin line
 * `<target> [body]` is published to the service of the target — a request when the target
 * replies, its reply printed — and dead letters are reported. Ends with stdin (or Ctrl-C).
 */
export async function dev(ctx: Context): Promise<number> {
  const { flags } = ctx.parsed;
  const topology = await loadTopology(flags.topology);
  if (typeof flags.handlers !== 'string')
    throw new UsageError(
      'dev needs --handlers <module>: a module exporting register(broker, { service }) that adds the handlers',
    );
  const m = await load(flags.handlers, 'handlers');
  const functions = Object.values(m).filter((v) => typeof v === 'function');
  const register = (m.register ??
    m.default ??
    (functions.length === 1 ? functions[0] : undefined)) as Register | undefined;
  if (typeof register !== 'function')
    throw new UsageError(
      `${flags.handlers} exports no register(broker, { service }) function (a default one, or a single function, will do)`,
    );
  const out = (o: Record<string, unknown>, text: string) =>
    println(ctx.io.stdout, ctx.json ? JSON.stringify(o) : text);
  const hub = new MemoryHub();
  const names = topology.names();
  const brokers = new Map<string, MemoryBroker>();
  for (const service of topology.services) {
    const logger: Logger = {
      ...silentLogger,
      warn: (message, fields) => {
        if (message === 'message dead-lettered')
          out(
            { event: 'dead-lettered', service: service.name, ...fields },
            `dead-lettered  ${fields?.target}  ${fields?.reason} after ${fields?.deliveryCount} deliveries (${service.name})`,
          );
      },
    };
    const broker = new MemoryBroker({
      hub,
      queue: names.services[service.name]!.queue,
      ...topology.brokerOptions(service.name),
      replyAllowList: ['reply.*'],
      logger,
    });
    await register(broker, { service: service.name });
    brokers.set(service.name, broker);
  }
  try {
    await Promise.all([...brokers.values()].map((b) => b.start()));
    out(
      { event: 'started', services: [...brokers.keys()] },
      `dev: ${[...brokers.keys()].join(', ')} on the embedded broker; type <target> [body] per line`,
    );
    const lines = createInterface({ input: ctx.io.stdin });
    const pending = new Set<Promise<void>>();
    ctx.signal.addEventListener('abort', () => lines.close(), { once: true });
    for await (const line of lines) {
      const m2 = /^\s*(\S+)\s*(.*)$/.exec(line);
      if (!m2) continue;
      const [, target, rest] = m2 as unknown as [string, string, string];
      const spec = topology.serviceOf(target);
      if (!spec) {
        out(
          { event: 'error', target, error: 'unknown target' },
          `unknown target ${target} (targets: ${topology
            .targets()
            .map((t) => t.name)
            .join(', ')})`,
        );
        continue;
      }
      const broker = brokers.get(spec.name)!;
      const body = rest === '' ? null : toBody(new TextEncoder().encode(rest), {});
      const replies = spec.targets.find((t) => t.name === target)?.replies ?? false;
      const p = (async () => {
        try {
          if (replies) {
            const reply = await broker.request(body, target, { timeoutMs: 10_000 });
            const b =
              reply.body instanceof Uint8Array
                ? bodyValue({ body: reply.body, contentType: reply.properties.contentType })
                : reply.body;
            out({ event: 'reply', target, body: b }, `reply  ${target}  ${JSON.stringify(b)}`);
          } else {
            const id = await broker.publish(body, target);
            out({ event: 'published', target, messageId: id }, `published  ${target}  ${id}`);
          }
        } catch (err) {
          out(
            { event: 'error', target, error: (err as Error).message },
            `error  ${target}  ${(err as Error).message}`,
          );
        }
      })();
      pending.add(p);
      void p.finally(() => pending.delete(p));
    }
    await Promise.all(pending);
    // let retries run out (a failing message is redelivered, then dead-lettered): up to 60 s
    const deadline = Date.now() + 60_000;
    const busy = () => [...brokers.values()].some((b) => b.queue.depth + b.queue.inFlight > 0);
    while (busy() && Date.now() < deadline && !ctx.signal.aborted)
      await new Promise((r) => setTimeout(r, 50));
  } finally {
    await Promise.all([...brokers.values()].map((b) => b.stop()));
  }
  return ctx.signal.aborted ? EXIT.interrupted : EXIT.ok;
}
