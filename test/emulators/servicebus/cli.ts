/**
 * Runs the Service Bus test peer standalone, e.g. for trying the example app by hand:
 *
 *   PATH=node_modules/.bin:$PATH node --conditions=source test/emulators/servicebus/cli.ts \
 *     [--host 127.0.0.2] [--port 5672] [--config entities.json] [--lifetime 3600] [--verbose]
 *
 * It prints the connection string, and stops on SIGINT/SIGTERM or after `--lifetime` seconds
 * (default 3600), so a forgotten peer does not outlive its use. `--config` takes a JSON file
 * shaped like `PeerConfig` (default: the example topology).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { EXAMPLE_CONFIG, type PeerConfig } from './config.ts';
import { startServiceBusPeer } from './peer.ts';

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.2' },
    port: { type: 'string', default: '5672' },
    config: { type: 'string' },
    lifetime: { type: 'string', default: '3600' },
    verbose: { type: 'boolean', default: false },
  },
});

if (!/^127\./.test(values.host)) {
  console.error('the test peer listens on loopback (127.x.x.x) only');
  process.exit(2);
}
const config: PeerConfig = values.config
  ? (JSON.parse(readFileSync(values.config, 'utf8')) as PeerConfig)
  : EXAMPLE_CONFIG;
const peer = await startServiceBusPeer({
  host: values.host,
  port: Number(values.port),
  config,
  log: values.verbose ? (line) => console.error(`[servicebus] ${line}`) : undefined,
});
console.log(peer.connectionString);

const stop = async () => {
  await peer.close();
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
setTimeout(stop, Number(values.lifetime) * 1000).unref();
setInterval(() => {}, 1 << 30); // keep the process alive until a signal or the lifetime ends
