import { Duration } from 'aws-cdk-lib';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { DeadLetterQueue } from './dead-letter-queue.ts';

export interface CompactionQueueProps {
  consumer: lambda.Function;
  /** Receives before a message moves to the dead-letter queue. */
  maxReceiveCount: number;
  /** Messages per batch: larger batches mean fewer publishes per collection. */
  batchSize: number;
  maxBatchingWindow: Duration;
}

/** AWS guidance: a source queue's visibility timeout is at least six times the function timeout. */
export const VISIBILITY_TIMEOUT_FACTOR = 6;

/**
 * The stream of small changes: SQS into CompactionStream, which reports failures per message so
 * only the failed collection's messages come back; poison messages end in the dead-letter queue.
 */
export class CompactionQueue extends Construct {
  readonly queue: sqs.Queue;
  readonly deadLetterQueue: DeadLetterQueue;

  constructor(scope: Construct, id: string, props: CompactionQueueProps) {
    super(scope, id);
    const functionTimeout = props.consumer.timeout ?? Duration.seconds(3);

    this.deadLetterQueue = new DeadLetterQueue(this, 'DeadLetterQueue');

    this.queue = new sqs.Queue(this, 'Queue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      visibilityTimeout: Duration.seconds(functionTimeout.toSeconds() * VISIBILITY_TIMEOUT_FACTOR),
      retentionPeriod: Duration.days(4),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: props.maxReceiveCount },
    });

    props.consumer.addEventSource(
      new SqsEventSource(this.queue, {
        batchSize: props.batchSize,
        maxBatchingWindow: props.maxBatchingWindow,
        reportBatchItemFailures: true,
      }),
    );
  }
}
