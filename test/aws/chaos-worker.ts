/**
 * A chaos consumer in its own process (see test/chaos/harness.ts): argv[2] is JSON
 * `{ endpoint, kind: 'sqs' | 'sns', options }`; builds the broker on the test peer and runs it.
 */
import { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
import { SnsBroker, SqsBroker } from 'cloudmom/aws';
import { runWorker, workerLogger } from '../chaos/harness.ts';
import { awsClientConfig } from '../emulators/aws/moto.ts';

const { endpoint, kind, options } = JSON.parse(process.argv[2]!) as {
  endpoint: string;
  kind: 'sqs' | 'sns';
  options: Record<string, any>;
};
const client = new SQSClient(awsClientConfig(endpoint));
const broker =
  kind === 'sqs'
    ? new SqsBroker({ ...(options as { queue: string }), client, logger: workerLogger })
    : new SnsBroker({
        ...(options as { topic: string }),
        client: new SNSClient(awsClientConfig(endpoint)),
        sqsClient: client,
        logger: workerLogger,
      });
await runWorker(broker);
