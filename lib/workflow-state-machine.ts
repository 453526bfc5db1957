import { type CfnElement, type RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { type AslDocument, placeholdersIn } from '../statemachines/definition.ts';
import { CHUNK_MAP_STATE, readAsl, withDistributedChunkMap, withMapConcurrency } from './asl.ts';
import { nagArnParts } from './grants.ts';

export interface RenderOptions {
  distributedChunkMap: boolean;
  mapMaxConcurrency: number;
}

/** The definition as deployed: the ASL file with this stack's deployment choices applied. */
export function renderDefinition(asl: AslDocument, options: RenderOptions): AslDocument {
  const bounded = withMapConcurrency(asl, options.mapMaxConcurrency);
  return options.distributedChunkMap ? withDistributedChunkMap(bounded) : bounded;
}

/** Fails synth when the ASL and the function table disagree, instead of failing the deployment. */
export function checkSubstitutions(definition: AslDocument, substitutions: Record<string, string>): void {
  const placeholders = placeholdersIn(definition);
  const missing = placeholders.filter((name) => !(name in substitutions));
  const unused = Object.keys(substitutions).filter((name) => !placeholders.includes(name));
  if (missing.length > 0 || unused.length > 0) {
    throw new Error(
      `workflow definition and function table disagree: no function for \${${missing.join('}, ${')}}` +
        `; functions no state uses: ${unused.join(', ') || 'none'}`,
    );
  }
}

export interface WorkflowStateMachineProps extends RenderOptions {
  definitionPath: string;
  substitutions: Record<string, string>;
  /** Exactly the functions the definition invokes. */
  invokedFunctions: lambda.IFunction[];
  logRetention: logs.RetentionDays;
  removalPolicy: RemovalPolicy;
}

/** The Step Functions state machine, with every state's input and output logged and X-Ray tracing. */
export class WorkflowStateMachine extends Construct {
  readonly stateMachine: sfn.StateMachine;
  readonly definition: AslDocument;

  constructor(scope: Construct, id: string, props: WorkflowStateMachineProps) {
    super(scope, id);
    this.definition = renderDefinition(readAsl(props.definitionPath), props);
    checkSubstitutions(this.definition, props.substitutions);

    const logGroup = new logs.LogGroup(this, 'ExecutionLogs', {
      retention: props.logRetention,
      removalPolicy: props.removalPolicy,
    });

    this.stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      definitionBody: sfn.DefinitionBody.fromString(JSON.stringify(this.definition)),
      definitionSubstitutions: props.substitutions,
      stateMachineType: sfn.StateMachineType.STANDARD,
      logs: { destination: logGroup, level: sfn.LogLevel.ALL, includeExecutionData: true },
      tracingEnabled: true,
    });
    this.stateMachine.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'InvokeWorkflowFunctions',
        actions: ['lambda:InvokeFunction'],
        resources: props.invokedFunctions.map((fn) => fn.functionArn),
      }),
    );
    Validations.of(this.stateMachine).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'Step Functions log delivery (logs:CreateLogDelivery and friends) and X-Ray trace submission do not support resource-level permissions.',
    });

    if (props.distributedChunkMap) this.allowChildExecutions();
  }

  /**
   * What StartRun needs to name executions by run id: start them, and describe one whose name is
   * taken (running, applied, or over). Executions are named at run time: their ARNs end in `*`.
   */
  grantRunStarts(fn: lambda.IFunction): void {
    this.stateMachine.grantStartExecution(fn);
    this.stateMachine.grantExecution(fn, 'states:DescribeExecution');
    Validations.of(fn.role!).acknowledge({
      id: `AwsSolutions-IAM5[Resource::${this.executionArnPattern()}]`,
      reason: `${fn.node.id} describes the execution of a run id it was asked to start again; execution names are run ids, known only at run time.`,
    });
  }

  /** A Distributed Map runs each iteration as a child execution of this same state machine. */
  private allowChildExecutions(): void {
    const policy = new iam.Policy(this, 'DistributedMapPolicy');
    this.stateMachine.role.attachInlinePolicy(policy);
    this.stateMachine.grantStartExecution(policy);
    this.stateMachine.grantExecution(policy, 'states:DescribeExecution', 'states:StopExecution');
    this.stateMachine.grantExecution(policy, 'states:RedriveExecution');
    Validations.of(policy).acknowledge({
      id: `AwsSolutions-IAM5[Resource::${this.executionArnPattern()}]`,
      reason: `The ${CHUNK_MAP_STATE} Distributed Map describes, stops and redrives its own child executions, whose ids are only known at run time.`,
    });
  }

  /** How cdk-nag prints `<state machine ARN's execution ARN>:*` (the resource CDK's grantExecution builds). */
  private executionArnPattern(): string {
    const logicalId = Stack.of(this).getLogicalId(this.stateMachine.node.defaultChild as CfnElement);
    const name = JSON.stringify({ 'Fn::Select': [6, { 'Fn::Split': [':', { Ref: logicalId }] }] });
    const { partition, region, account } = nagArnParts(this);
    return `arn:${partition}:states:${region}:${account}:execution:${name}:*`;
  }
}
