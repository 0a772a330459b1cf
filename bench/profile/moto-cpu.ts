/**
 * Who bounds P3 on moto: `node --conditions=source bench/profile/moto-cpu.ts`. Six rounds of
 * `publishBatch` of 1,000 messages (the bench's shape) to a fresh queue; per round, the wall
 * time, this process's CPU and moto's (its processes' utime + stime from /proc), each as a
 * share of one core. moto near a full core while the client idles is the emulator's ceiling.
 */
import { execSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { CreateQueueCommand, SQSClient } from '@aws-sdk/client-sqs';
import { SqsBroker } from '../../adapters/aws/index.ts';
import { awsClientConfig, startMoto } from '../../test/emulators/aws/moto.ts';

const moto = await startMoto();
const port = new URL(moto.endpoint).port;
const pids = execSync(`pgrep -f 'moto_server.py -H 127.0.0.1 -p ${port}'`)
  .toString()
  .trim()
  .split('\n')
  .map(Number);
const ticks = () =>
  pids.reduce((n, pid) => {
    try {
      const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return n + Number(f[11]) + Number(f[12]);
    } catch {
      return n;
    }
  }, 0);
const sqs = new SQSClient(awsClientConfig(moto.endpoint));
const body = (i: number) => ({ id: i, name: `item ${i}`, tags: ['a', 'b'] });
for (let r = 0; r < 6; r++) {
  const url = (await sqs.send(new CreateQueueCommand({ QueueName: `p-${r}-${Date.now()}` })))
    .QueueUrl!;
  const b = new SqsBroker({ queue: url, client: sqs, logger: false });
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const m0 = ticks();
  await b.publishBatch(
    Array.from({ length: 1000 }, (_, i) => ({ body: body(i), target: 'orders' })),
  );
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  const m = (ticks() - m0) * 10;
  await b.stop();
  console.log(
    `round ${r}: ${wall.toFixed(0)} ms wall; client CPU ${((c.user + c.system) / 1000).toFixed(0)} ms (${((c.user + c.system) / 10 / wall).toFixed(0)} % of a core); moto CPU ${m} ms (${((m * 100) / wall).toFixed(0)} % of a core)`,
  );
}
await moto.stop();
