import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as sns from 'aws-cdk-lib/aws-sns';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';

/** Where the handlers' EMF metrics land (Powertools adds the `service` dimension by default). */
export const METRICS_NAMESPACE = 'embedflow';
export const SERVICE_NAME = 'embedflow';

export interface AlarmsProps {
  stateMachine: sfn.IStateMachine;
  deadLetterQueues: Record<string, sqs.IQueue>;
  /** p99 of LockHoldMs above this means the lock is no longer held for milliseconds. */
  lockHoldP99ThresholdMs: number;
  /** Five-minute periods in a row with CAS conflicts before the alarm fires. */
  casConflictPeriods: number;
  /** Optional SNS topic ARN notified when an alarm fires or recovers. */
  alarmTopicArn?: string;
}

function handlerMetric(metricName: string, statistic: string): cloudwatch.Metric {
  return new cloudwatch.Metric({
    namespace: METRICS_NAMESPACE,
    metricName,
    dimensionsMap: { service: SERVICE_NAME },
    statistic,
    period: Duration.minutes(5),
  });
}

/** The signals an operator acts on: slow locks, sustained contention, failed runs, dead letters. */
export class Alarms extends Construct {
  readonly all: cloudwatch.Alarm[] = [];

  constructor(scope: Construct, id: string, props: AlarmsProps) {
    super(scope, id);
    const notBreaching = cloudwatch.TreatMissingData.NOT_BREACHING;

    this.all.push(
      handlerMetric('LockHoldMs', 'p99').createAlarm(this, 'LockHoldP99', {
        alarmDescription: `p99 lock hold time over ${props.lockHoldP99ThresholdMs} ms: see docs/deploy.md "Lock contention"`,
        threshold: props.lockHoldP99ThresholdMs,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 3,
        datapointsToAlarm: 2,
        treatMissingData: notBreaching,
      }),
      handlerMetric('CasConflicts', 'Sum').createAlarm(this, 'CasConflictsSustained', {
        alarmDescription:
          'Pointer swaps lost by builds (replayed) in every period: see docs/deploy.md "CAS conflicts"',
        threshold: 0,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: props.casConflictPeriods,
        treatMissingData: notBreaching,
      }),
      props.stateMachine.metricFailed({ period: Duration.minutes(5) }).createAlarm(this, 'ExecutionsFailed', {
        alarmDescription: 'An embedflow execution failed: its RecordFailure output names the cause',
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: notBreaching,
      }),
    );
    for (const [name, queue] of Object.entries(props.deadLetterQueues)) {
      this.all.push(
        queue
          .metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(5), statistic: 'Maximum' })
          .createAlarm(this, `${name}DeadLetters`, {
            alarmDescription: `Messages in the ${name} dead-letter queue: see docs/deploy.md "Dead letters"`,
            threshold: 1,
            comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluationPeriods: 1,
            treatMissingData: notBreaching,
          }),
      );
    }

    if (props.alarmTopicArn) {
      const topic = sns.Topic.fromTopicArn(this, 'AlarmTopic', props.alarmTopicArn);
      for (const alarm of this.all) {
        alarm.addAlarmAction(new actions.SnsAction(topic));
        alarm.addOkAction(new actions.SnsAction(topic));
      }
    }
  }
}
