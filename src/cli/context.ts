/** What every command gets, and the broker of its URL. */
import type { Broker } from '../broker.ts';
import { jsonLogger } from '../log.ts';
import { createBroker } from '../url.ts';
import type { Parsed } from './args.ts';
import type { Io } from './io.ts';

/** What a command gets: its parsed line, where to write, and a signal for Ctrl-C. */
export interface Context {
  readonly parsed: Parsed;
  readonly io: Io;
  readonly signal: AbortSignal;
  readonly json: boolean;
}

/** The broker of the command's URL, quiet unless --verbose. */
export function brokerFor(ctx: Context, extra: Record<string, unknown> = {}): Promise<Broker> {
  const url = ctx.parsed.args.url!;
  return createBroker(url, {
    logger: ctx.parsed.flags.verbose ? jsonLogger('info') : false,
    ...extra,
  });
}

/** Runs `fn` with the broker, stopping it afterwards whatever happens. */
export async function withBroker<T>(
  broker: Broker,
  fn: (broker: Broker) => Promise<T>,
): Promise<T> {
  try {
    return await fn(broker);
  } finally {
    await broker.stop().catch(() => undefined);
  }
}
