import { Duration, Validations } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { DeadLetterQueue } from './dead-letter-queue.ts';
import { BUCKET_PREFIXES } from './function-specs.ts';

/** A run manifest dropped at `input/<folder>/run.json` starts a run (the folder names it if runId is absent). */
export const RUN_MANIFEST_KEY_PATTERN = `${BUCKET_PREFIXES.input}*/run.json`;

export interface TriggersProps {
  bucket: s3.IBucket;
  /** StartRun: starts the execution named by the run id (EventBridge's Step Functions target cannot name one). */
  starter: lambda.IFunction;
  /** e.g. `rate(1 hour)` or `cron(0 3 * * ? *)`; no schedule rule without it. */
  schedule?: string;
  /** The execution input of scheduled runs (a run input or a manifest reference). */
  scheduledInput?: Record<string, unknown>;
}

/**
 * What starts executions: S3 object-created events for run manifests (through EventBridge) and
 * an optional schedule, both through StartRun, which names each execution by its run id so that a
 * retried or repeated start never runs a run twice. Starts that keep failing land in a
 * dead-letter queue instead of vanishing.
 */
export class Triggers extends Construct {
  readonly manifestRule: events.Rule;
  readonly scheduleRule?: events.Rule;
  readonly deadLetterQueue: DeadLetterQueue;

  constructor(scope: Construct, id: string, props: TriggersProps) {
    super(scope, id);

    this.deadLetterQueue = new DeadLetterQueue(this, 'DeadLetterQueue');
    Validations.of(this.deadLetterQueue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason:
        'This queue is the dead-letter queue of the EventBridge targets; it has an alarm on visible messages.',
    });
    const targetOptions = {
      deadLetterQueue: this.deadLetterQueue,
      retryAttempts: 8,
      maxEventAge: Duration.hours(2),
    };

    this.manifestRule = new events.Rule(this, 'RunManifestCreated', {
      description: `Starts an embedflow run when s3://<bucket>/${RUN_MANIFEST_KEY_PATTERN} is created`,
      eventPattern: {
        source: ['aws.s3'],
        detailType: ['Object Created'],
        detail: {
          bucket: { name: [props.bucket.bucketName] },
          object: { key: events.Match.wildcard(RUN_MANIFEST_KEY_PATTERN) },
        },
      },
    });
    this.manifestRule.addTarget(
      new targets.LambdaFunction(props.starter, {
        ...targetOptions,
        event: events.RuleTargetInput.fromObject({
          manifest: {
            bucket: events.EventField.fromPath('$.detail.bucket.name'),
            key: events.EventField.fromPath('$.detail.object.key'),
          },
        }),
      }),
    );

    if (props.schedule) {
      if (!props.scheduledInput) {
        throw new Error(
          'a schedule needs scheduledInput: the run input (or manifest reference) each scheduled run starts with',
        );
      }
      this.scheduleRule = new events.Rule(this, 'Schedule', {
        description: 'Starts scheduled embedflow runs',
        schedule: events.Schedule.expression(props.schedule),
      });
      this.scheduleRule.addTarget(
        new targets.LambdaFunction(props.starter, {
          ...targetOptions,
          event: events.RuleTargetInput.fromObject(props.scheduledInput),
        }),
      );
    }
  }
}
