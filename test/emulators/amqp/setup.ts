/**
 * Global setup of the `amqp` test project: starts this run's RabbitMQ node on 127.0.0.1 (or
 * uses `CLOUDMOM_AMQP_URL`) and provides to tests `inject('amqpUrl')` and `inject('amqpCtl')`
 * (the node's CLI environment, for `rabbitmqctl`; null when the URL came from the environment).
 */
import type { TestProject } from 'vitest/node';
import { type RabbitCtl, startRabbitmq } from './rabbitmq.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    amqpUrl: string;
    amqpCtl: RabbitCtl | null;
  }
}

export default async function setup(project: TestProject) {
  const rabbit = await startRabbitmq();
  project.provide('amqpUrl', rabbit.url);
  project.provide('amqpCtl', rabbit.ctl ?? null);
  return async () => {
    await rabbit.stop();
  };
}
