/**
 * `npm start`: the example app on the embedded broker, printed as a readable trace.
 * publish → a handler that replies ("Hi there too") → a request() round trip → a failing
 * handler whose message ends in the dead-letter queue with its reason. Exits on its own.
 */
import { MemoryBroker } from 'cloudmom';
import { registerExample, TARGETS } from './app.ts';

const t0 = performance.now();
const trace = (line: string) =>
  console.log(`${(performance.now() - t0).toFixed(1).padStart(7)} ms  ${line}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// A service consuming the "demo" queue, with fast retries so the demo finishes quickly.
const service = registerExample(
  new MemoryBroker({
    queue: 'demo',
    maxDeliveries: 3,
    retry: { baseDelayMs: 100, maxDelayMs: 400 },
    logger: false,
  }),
  { log: trace, helloReplyTo: 'greetings' },
);
// hello's replies to plain publishes go to the target "greetings" (add()'s replyTo).
service.add('greetings', (p, body) =>
  trace(`greetings ← reply ${JSON.stringify(body)} (correlation ${p.correlationId})`),
);
// A client: it does not consume the queue; it publishes and requests.
const client = new MemoryBroker({ queue: 'demo', logger: false });

await service.start();
trace('service started on the embedded broker (queue "demo")');

trace('publish  → hello "Hello World!", correlation id c-1');
const id = await client.publish('Hello World!', TARGETS.hello, 'c-1');
trace(`           accepted as message ${id.slice(0, 8)}`);
await sleep(50);

trace('request  → hello "Hello again" (the reply comes back to the client\'s own reply queue)');
const hi = await client.request('Hello again', TARGETS.hello, { timeoutMs: 2000 });
trace(`request  ← reply ${JSON.stringify(hi.body)}`);

trace('request  → sum { numbers: [1, 2, 3, 4] }');
const reply = await client.request({ numbers: [1, 2, 3, 4] }, TARGETS.sum, { timeoutMs: 2000 });
trace(`request  ← reply ${JSON.stringify(reply.body)}`);

trace('publish  → audit { event: "login" } (one-way, no reply)');
await client.publish({ event: 'login' }, TARGETS.audit);

trace('publish  → flaky { job: 42 } (its handler always fails)');
await client.publish({ job: 42 }, TARGETS.flaky);
const deadline = Date.now() + 5000;
while (service.deadLetters().length === 0 && Date.now() < deadline) await sleep(20);
for (const d of service.deadLetters()) {
  trace(`dead-letter queue: ${d.target} ${JSON.stringify(d.body)}`);
  trace(`           reason ${d.reason.code}: ${d.reason.description}`);
}

await Promise.all([client.stop(), service.stop()]);
const s = service.stats;
trace(
  `stopped: ${s.delivered} deliveries, ${s.acked} acked, ${s.retried} retried, ` +
    `${s.deadLettered} dead-lettered, ${s.repliesSent} replies sent`,
);
if (service.deadLetters().length !== 1 || s.repliesSent !== 3) process.exitCode = 1;
