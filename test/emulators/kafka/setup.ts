/**
 * Global setup of the `kafka` test project: starts Kafka 4.4 in KRaft mode once per run (or
 * uses `CLOUDMOM_KAFKA_BROKERS`) and provides its bootstrap address to tests as
 * `inject('kafkaBrokers')` (comma-separated `host:port`).
 */
import type { TestProject } from 'vitest/node';
import { startKafka, warmUp } from './kafka.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    kafkaBrokers: string;
  }
}

export default async function setup(project: TestProject) {
  const kafka = await startKafka();
  if (kafka.started) {
    const t0 = Date.now();
    await warmUp(kafka.endpoint);
    process.stderr.write(`[peer kafka] warmed up (first producer id) in ${Date.now() - t0} ms\n`);
  }
  project.provide('kafkaBrokers', kafka.endpoint);
  return async () => {
    const t0 = Date.now();
    await kafka.stop();
    process.stderr.write(`[peer kafka] stopped in ${Date.now() - t0} ms\n`);
  };
}
