/**
 * The conformance suite on SqsBroker (standard and FIFO queues) and SnsBroker (topic → raw
 * subscription → queue), against moto. Each test gets fresh queues (and topic).
 */
import { inject } from 'vitest';
import {
  SNS_CAPS,
  SQS_FIFO_CAPS,
  SQS_STANDARD_CAPS,
  snsFixture,
  sqsFixture,
} from '../aws/conformance-fixtures.ts';
import { clients } from '../aws/fixtures.ts';
import { runConformance } from './suite.ts';

const { sqs, sns } = clients(inject('awsEndpoint'));

runConformance('SqsBroker (standard queue, moto)', sqsFixture(sqs, false), SQS_STANDARD_CAPS);
runConformance('SqsBroker (FIFO queue, moto)', sqsFixture(sqs, true), SQS_FIFO_CAPS);
runConformance(
  'SnsBroker (topic → raw subscription → queue, moto)',
  snsFixture(sqs, sns),
  SNS_CAPS,
);
