import { Admin } from '@platformatic/kafka';
import { expect, inject, it } from 'vitest';

it('the Kafka peer answers metadata', async () => {
  const admin = new Admin({ clientId: 't', bootstrapBrokers: inject('kafkaBrokers').split(',') });
  const md = await admin.metadata({ topics: [] });
  expect(md.brokers.size).toBeGreaterThan(0);
  await admin.close();
});
