/**
 * The same conformance suite against a second emulator, fauxqs (npm, in process), to catch
 * behaviour that only one emulator has. Differences found (and which one matches AWS) are in
 * docs/aws.md.
 */
import { startFauxqs } from 'fauxqs';
import { afterAll } from 'vitest';
import { runConformance } from '../conformance/suite.ts';
import {
  SNS_CAPS,
  SQS_FIFO_CAPS,
  SQS_STANDARD_CAPS,
  snsFixture,
  sqsFixture,
} from './conformance-fixtures.ts';
import { clients } from './fixtures.ts';

const server = await startFauxqs({ port: 0, host: '127.0.0.1', logger: false });
afterAll(() => server.stop());
const { sqs, sns } = clients(`http://127.0.0.1:${server.port}`);

runConformance('SqsBroker (standard queue, fauxqs)', sqsFixture(sqs, false), SQS_STANDARD_CAPS);
runConformance('SqsBroker (FIFO queue, fauxqs)', sqsFixture(sqs, true), SQS_FIFO_CAPS);
runConformance(
  'SnsBroker (topic → raw subscription → queue, fauxqs)',
  snsFixture(sqs, sns),
  SNS_CAPS,
);
