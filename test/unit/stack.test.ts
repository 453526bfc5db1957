import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, Validations } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAsl, tasksByPlaceholder, withDistributedChunkMap } from '../../lib/asl.ts';
import { CHROMA_PACKAGES } from '../../lib/chroma-runtime.ts';
import { DEFINITION_PATH, EmbedflowStack, type EmbedflowStackProps } from '../../lib/embedflow-stack.ts';
import { FUNCTION_SPECS } from '../../lib/function-specs.ts';
import { SETTING_DEFAULTS } from '../../lib/settings.ts';
import { placeholdersIn } from '../../statemachines/definition.ts';

const CDK_CONTEXT = JSON.parse(readFileSync(join(import.meta.dirname, '../../cdk.json'), 'utf8')).context;
const ASL = readAsl(DEFINITION_PATH);
const WORKFLOW_SPECS = FUNCTION_SPECS.filter((spec) => 'placeholder' in spec);
const SCHEDULED = { schedule: 'rate(1 hour)', scheduledInput: { runId: 'nightly', collections: [] } };

const EVERY_OPTION: EmbedflowStackProps = { distributedChunkMap: true, efsCache: true, ...SCHEDULED };

/** Everything the default stack creates: a new resource type or count is a deliberate change. */
const DEFAULT_RESOURCE_COUNTS = {
  'AWS::CloudWatch::Alarm': 5,
  'AWS::DynamoDB::Table': 1,
  'AWS::Events::Rule': 1,
  'AWS::IAM::Policy': 12,
  'AWS::IAM::Role': 12,
  'AWS::Lambda::EventSourceMapping': 1,
  'AWS::Lambda::Function': 11,
  'AWS::Lambda::Permission': 1,
  'AWS::Logs::LogGroup': 12,
  'AWS::S3::Bucket': 2,
  'AWS::S3::BucketPolicy': 2,
  'AWS::SQS::Queue': 3,
  'AWS::SQS::QueuePolicy': 3,
  'AWS::StepFunctions::StateMachine': 1,
};

/** `validate`: aws-cdk-lib's own CloudFormation validation (~3 s the first time: it compiles WASM). */
type SynthOptions = { context?: Record<string, unknown>; validate?: boolean };

/** Builds the app; `template()` synthesises it (Template.fromStack runs no validation plugins). */
const outdirs: string[] = [];
afterAll(() => {
  for (const dir of outdirs) rmSync(dir, { recursive: true, force: true });
});

function build(props: EmbedflowStackProps = {}, options: SynthOptions = {}) {
  outdirs.push(mkdtempSync(join(tmpdir(), 'embedflow-cdk-')));
  const app = new App({
    context: { ...CDK_CONTEXT, ...options.context },
    outdir: outdirs.at(-1),
    builtinCloudFormationValidation: options.validate ?? false,
  });
  const stack = new EmbedflowStack(app, 'Embedflow', { bundle: false, ...props });
  return { app, stack, template: () => Template.fromStack(stack) };
}
const synth = (props?: EmbedflowStackProps, options?: SynthOptions) => build(props, options).template();

type Resource = { Type: string; Properties: Record<string, any>; [key: string]: any };
const resources = (template: Template, type: string) =>
  Object.entries(template.findResources(type)) as [string, Resource][];

/** The function whose logical id starts with the construct path `Functions/<id>`. */
function functionOf(template: Template, id: string): [string, Resource] {
  const found = resources(template, 'AWS::Lambda::Function').filter(([logicalId]) =>
    new RegExp(`^Functions${id}[0-9A-F]{8}$`).test(logicalId),
  );
  expect(found, id).toHaveLength(1);
  return found[0]!;
}

function actionsOf(template: Template, functionId: string): Statement[] {
  const [, fn] = functionOf(template, functionId);
  const roleId = fn.Properties.Role['Fn::GetAtt'][0];
  return resources(template, 'AWS::IAM::Policy')
    .filter(([, policy]) => policy.Properties.Roles.some((role: { Ref: string }) => role.Ref === roleId))
    .flatMap(([, policy]) => policy.Properties.PolicyDocument.Statement as Statement[]);
}
type Statement = { Action: string | string[]; Resource: unknown; Condition?: unknown; Sid?: string };
const machineOf = (template: Template) =>
  resources(template, 'AWS::StepFunctions::StateMachine')[0]![1].Properties;
const statementsOf = (template: Template, policyIdPrefix = '') =>
  resources(template, 'AWS::IAM::Policy')
    .filter(([id]) => id.startsWith(policyIdPrefix))
    .flatMap(([, policy]) => policy.Properties.PolicyDocument.Statement as Statement[]);
const actionList = (statements: Statement[]) => statements.flatMap((s) => [s.Action].flat());
const resourceText = (statement: Statement) => JSON.stringify(statement.Resource);

describe('EmbedflowStack template (synthesised without bundling)', () => {
  let template: Template;
  let stack: EmbedflowStack;
  beforeAll(() => {
    const started = performance.now();
    const built = build({}, { validate: true });
    [stack, template] = [built.stack, built.template()];
    console.info(`in-process synth with built-in validation: ${(performance.now() - started).toFixed(0)} ms`);
  });

  it('has exactly the expected resources and no aws-cdk-lib warnings', () => {
    const byType: Record<string, number> = {};
    for (const { Type } of Object.values(template.toJSON().Resources as Record<string, Resource>)) {
      byType[Type] = (byType[Type] ?? 0) + 1;
    }
    expect(byType).toEqual(DEFAULT_RESOURCE_COUNTS);
    expect(Annotations.fromStack(stack).findWarning('*', Match.anyValue())).toEqual([]);
    expect(Annotations.fromStack(stack).findError('*', Match.anyValue())).toEqual([]);
  });

  it('gives every function the names, Powertools settings and every tunable with its default', () => {
    for (const [, fn] of resources(template, 'AWS::Lambda::Function')) {
      expect(fn.Properties).toMatchObject({ Runtime: 'nodejs24.x', Architectures: ['x86_64'] });
      expect(fn.Properties.Environment.Variables).toMatchObject({
        ...SETTING_DEFAULTS,
        SNAPSHOT_CACHE_DIR: '/tmp/embedflow-cache',
        POWERTOOLS_SERVICE_NAME: 'embedflow',
        POWERTOOLS_METRICS_NAMESPACE: 'embedflow',
        BUCKET_NAME: { Ref: expect.stringMatching(/^StorageBucket/) },
        TABLE_NAME: { Ref: expect.stringMatching(/^StorageTable/) },
      });
    }
  });

  it('substitutes every ${…} placeholder of the ASL file with a function ARN, and nothing else', () => {
    const machine = machineOf(template);
    expect(Object.keys(machine.DefinitionSubstitutions).sort()).toEqual(placeholdersIn(ASL).sort());
    expect(placeholdersIn(machine.DefinitionString)).toEqual(placeholdersIn(ASL));
    for (const spec of WORKFLOW_SPECS) {
      const arn = { 'Fn::GetAtt': [functionOf(template, spec.id)[0], 'Arn'] };
      expect(machine.DefinitionSubstitutions[spec.placeholder!]).toEqual(arn);
    }
  });

  it('times each function out no later than its Task state, with Chroma functions sized for Chroma', () => {
    const tasks = tasksByPlaceholder(ASL);
    for (const spec of FUNCTION_SPECS) {
      const fn = functionOf(template, spec.id)[1].Properties;
      for (const { state } of 'placeholder' in spec ? tasks.get(spec.placeholder)! : []) {
        expect(fn.Timeout, spec.id).toBeLessThanOrEqual(state.TimeoutSeconds as number);
      }
      if ('runsChroma' in spec) {
        // A Chroma server (~100-200 MB) runs beside the handler, on files under /tmp.
        expect(fn.MemorySize, spec.id).toBeGreaterThanOrEqual(1024);
        expect(fn.EphemeralStorage.Size, spec.id).toBe(spec.ephemeralStorageMb);
      }
    }
  });

  it('logs every state at level ALL, traces with X-Ray, and may invoke exactly the workflow functions', () => {
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', {
      LoggingConfiguration: { Level: 'ALL', IncludeExecutionData: true },
      TracingConfiguration: { Enabled: true },
    });
    const invoke = statementsOf(template).filter((s) => actionList([s]).some((a) => a.startsWith('lambda:')));
    expect(invoke.map((statement) => statement.Action)).toEqual(['lambda:InvokeFunction']);
    const invoked = (invoke[0]!.Resource as { 'Fn::GetAtt': string[] }[]).map((arn) => arn['Fn::GetAtt'][0]);
    expect(invoked.sort()).toEqual(WORKFLOW_SPECS.map((spec) => functionOf(template, spec.id)[0]).sort());
  });

  it('scopes IAM to each function’s prefixes and table actions', () => {
    const actions = (id: string) => actionList(actionsOf(template, id));
    expect(actions('GroupSegments').filter((a) => /^(s3|dynamodb):/.test(a))).toEqual([]);
    expect(actions('ProcessChunk').filter((a) => /Delete/.test(a))).toEqual([]);
    expect(actions('ProcessChunk')).toContain('dynamodb:GetItem');
    expect(actions('ReadRunManifest').filter((a) => a.startsWith('s3:'))).toEqual(['s3:GetObject']);
    // Least privilege, checked on the template: each function gets the table actions its code
    // calls (GetItem and conditional PutItem; BatchGetItem and BatchWriteItem for the applied-run
    // and message records), no UpdateItem, DeleteItem or Scan.
    const tableActions = (id: string) =>
      actions(id)
        .filter((a) => a.startsWith('dynamodb:'))
        .sort();
    const publisher = [
      'dynamodb:BatchGetItem',
      'dynamodb:BatchWriteItem',
      'dynamodb:GetItem',
      'dynamodb:PutItem',
    ];
    expect(tableActions('FinalMerge')).toEqual(publisher);
    expect(tableActions('CompactionStream')).toEqual(publisher);
    for (const spec of FUNCTION_SPECS) {
      expect(tableActions(spec.id), spec.id).not.toContain('dynamodb:UpdateItem');
      expect(tableActions(spec.id), spec.id).not.toContain('dynamodb:DeleteItem');
      expect(tableActions(spec.id), spec.id).not.toContain('dynamodb:Scan');
    }
    for (const spec of FUNCTION_SPECS) {
      for (const statement of actionsOf(template, spec.id)) {
        const granted = actionList([statement]);
        if (granted.includes('s3:ListBucket')) expect(statement.Condition, spec.id).toBeDefined();
        if (granted.some((a) => a.startsWith('s3:') && a !== 's3:ListBucket')) {
          expect(resourceText(statement), spec.id).toMatch(/"\/(input|runs|snapshots)\/\*"/);
        }
        if (spec.id === 'FinalMerge' && granted.includes('s3:DeleteObject')) {
          expect(resourceText(statement)).not.toMatch(/input|runs/);
        }
        expect(
          granted.filter((a) => a.endsWith(':*')),
          spec.id,
        ).toEqual([]);
      }
    }
  });

  it('alarms on LockHoldMs p99, sustained CasConflicts, failed executions and dead letters', () => {
    const service = [{ Name: 'service', Value: 'embedflow' }];
    for (const alarm of [
      { Namespace: 'embedflow', MetricName: 'LockHoldMs', ExtendedStatistic: 'p99', Dimensions: service },
      {
        Namespace: 'embedflow',
        MetricName: 'CasConflicts',
        Statistic: 'Sum',
        Threshold: 0,
        EvaluationPeriods: 3,
      },
      { Namespace: 'AWS/States', MetricName: 'ExecutionsFailed', Threshold: 1 },
      { Namespace: 'AWS/SQS', MetricName: 'ApproximateNumberOfMessagesVisible', Threshold: 1 },
    ]) {
      template.hasResourceProperties('AWS::CloudWatch::Alarm', alarm);
    }
  });

  it('feeds CompactionStream from a queue with a dead-letter queue and per-message failures', () => {
    const [consumerId, consumer] = functionOf(template, 'CompactionStream');
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: consumerId },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
    template.hasResourceProperties('AWS::SQS::Queue', {
      VisibilityTimeout: consumer.Properties.Timeout * 6,
      RedrivePolicy: { maxReceiveCount: 5 },
    });
    for (const [, policy] of resources(template, 'AWS::SQS::QueuePolicy')) {
      expect(JSON.stringify(policy.Properties.PolicyDocument)).toContain('"aws:SecureTransport":"false"');
    }
  });

  it('expires run temporaries but never snapshots, and locks the bucket and table down', () => {
    const bucket = resources(template, 'AWS::S3::Bucket').find(([id]) => id.startsWith('StorageBucket'))![1];
    const rules = bucket.Properties.LifecycleConfiguration.Rules as Record<string, unknown>[];
    const expiring = rules.filter((rule) => rule.ExpirationInDays !== undefined);
    expect(expiring).toEqual([
      expect.objectContaining({ Prefix: 'runs/', ExpirationInDays: 7, Status: 'Enabled' }),
    ]);
    expect(bucket.Properties).toMatchObject({
      VersioningConfiguration: { Status: 'Enabled' },
      NotificationConfiguration: { EventBridgeConfiguration: { EventBridgeEnabled: true } },
      PublicAccessBlockConfiguration: { BlockPublicAcls: true, RestrictPublicBuckets: true },
    });
    template.hasResourceProperties('AWS::DynamoDB::Table', {
      KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
      BillingMode: 'PAY_PER_REQUEST',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      TimeToLiveSpecification: { AttributeName: 'ttl', Enabled: true },
    });
  });

  it('starts runs through StartRun, which names executions by run id: no rule targets the state machine', () => {
    const [starterId, starter] = functionOf(template, 'StartRun');
    const template_ = '{"manifest":{"bucket":<detail-bucket-name>,"key":<detail-object-key>}}';
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.s3'],
        'detail-type': ['Object Created'],
        detail: { object: { key: [{ wildcard: 'input/*/run.json' }] } },
      },
      Targets: [
        Match.objectLike({
          Arn: { 'Fn::GetAtt': [starterId, 'Arn'] },
          InputTransformer: Match.objectLike({ InputTemplate: template_ }),
          RetryPolicy: { MaximumRetryAttempts: 8, MaximumEventAgeInSeconds: 7200 },
          DeadLetterConfig: Match.anyValue(),
        }),
      ],
    });
    const [machineId] = resources(template, 'AWS::StepFunctions::StateMachine')[0]!;
    for (const [, rule] of resources(template, 'AWS::Events::Rule')) {
      for (const target of rule.Properties.Targets)
        expect(JSON.stringify(target.Arn)).not.toContain(machineId);
    }
    expect(starter.Properties.Environment.Variables.STATE_MACHINE_ARN).toEqual({ Ref: machineId });
    const states = actionsOf(template, 'StartRun').filter((s) =>
      actionList([s]).some((a) => a.startsWith('states:')),
    );
    expect(states.flatMap((s) => actionList([s])).sort()).toEqual([
      'states:DescribeExecution',
      'states:StartExecution',
    ]);
    for (const statement of states) expect(resourceText(statement)).toContain(machineId);
  });
});

describe('stack options', () => {
  it('takes settings from props over context over defaults, and validates them at synth', () => {
    const context = { GROUP_SIZE: '40', CHUNK_SIZE_WORDS: '9' };
    const template = synth({ settings: { GROUP_SIZE: 30 } }, { context });
    const variables = functionOf(template, 'MergeGroup')[1].Properties.Environment.Variables;
    expect(variables).toMatchObject({ GROUP_SIZE: '30', CHUNK_SIZE_WORDS: '9' });
    expect(() => synth({ settings: { LOCK_STRATEGY: 'none' } })).toThrow(/LOCK_STRATEGY/);
    expect(() => synth({ settings: { HEARTBEAT_INTERVAL_SECONDS: 40 } })).toThrow(/less than half/);
  });

  it('renders MAP_MAX_CONCURRENCY into the chunk and merge Maps', () => {
    const { DefinitionString } = machineOf(synth({ settings: { MAP_MAX_CONCURRENCY: 25 } }));
    expect(DefinitionString.match(/"MaxConcurrency":25/g)).toHaveLength(2);
  });

  it('rewrites only ProcessChunks into a Distributed Map allowed to run its child executions', () => {
    const before = JSON.stringify(ASL);
    expect(JSON.stringify(withDistributedChunkMap(ASL)).match(/"DISTRIBUTED"/g)).toHaveLength(1);
    expect(JSON.stringify(ASL)).toBe(before);
    expect(() => withDistributedChunkMap({ StartAt: 'A', States: { A: { Type: 'Pass' } } })).toThrow(
      /ProcessChunks/,
    );

    const template = synth({ distributedChunkMap: true });
    const distributed = '"ProcessorConfig":{"Mode":"DISTRIBUTED","ExecutionType":"STANDARD"}';
    expect(machineOf(template).DefinitionString).toContain(distributed);
    const childExecutions = actionList(statementsOf(template, 'WorkflowDistributedMapPolicy'));
    expect(childExecutions).toEqual(
      expect.arrayContaining(['states:StartExecution', 'states:StopExecution']),
    );
  });

  it('mounts an EFS access point as the snapshot cache of the functions that use it, when asked', () => {
    const { template: render, stack } = build({ efsCache: true });
    const template = render();
    template.resourceCountIs('AWS::EFS::AccessPoint', 1);
    for (const spec of FUNCTION_SPECS) {
      const fn = functionOf(template, spec.id)[1].Properties;
      const cached = 'usesSnapshotCache' in spec;
      expect(fn.Environment.Variables.SNAPSHOT_CACHE_DIR).toBe(
        cached ? '/mnt/embedflow-cache' : '/tmp/embedflow-cache',
      );
      expect(fn.FileSystemConfigs?.length, spec.id).toBe(cached ? 1 : undefined);
    }
    expect(Annotations.fromStack(stack).findWarning('*', Match.anyValue())).toEqual([]);
  });

  it('adds a schedule rule only with a schedule, and refuses a schedule without input', () => {
    synth(SCHEDULED).hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(1 hour)' });
    expect(() => synth({ schedule: 'rate(1 hour)' })).toThrow(/scheduledInput/);
  });

  it.each([
    ['default options', {}],
    ['every option', EVERY_OPTION],
    // `cdk synth` with a default account and region: partition, region and account become literals.
    [
      'every option, known environment',
      { ...EVERY_OPTION, env: { account: '123456789012', region: 'eu-west-1' } },
    ],
  ])('passes cdk-nag AwsSolutions with every finding fixed or acknowledged (%s)', (name, props) => {
    const started = performance.now();
    const { app } = build(props, { validate: true });
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    // Only a full app synth runs validation plugins; it throws when they report findings.
    expect.soft(() => app.synth()).not.toThrow();
    console.info(`synth with cdk-nag (${name}): ${(performance.now() - started).toFixed(0)} ms`);
    const report = JSON.parse(readFileSync(join(app.outdir, 'validation-report.json'), 'utf8'));
    expect(report.pluginReports.flatMap((r: { violations: unknown[] }) => r.violations)).toEqual([]);
  });
});

describe('real bundling', () => {
  const handlersPresent = FUNCTION_SPECS.every((spec) =>
    existsSync(join(import.meta.dirname, '../../lambdas/handlers', spec.handlerFile)),
  );
  it.skipIf(!handlersPresent || process.env.EMBEDFLOW_SKIP_BUNDLING === '1')(
    'bundles every handler as loadable ESM and ships Chroma to the functions that run it',
    { timeout: 300_000 },
    async () => {
      const started = performance.now();
      const { app, template: render } = build(
        { bundle: true },
        { context: { 'aws:cdk:enable-asset-metadata': true } },
      );
      const template = render();
      console.info(`in-process synth with bundling: ${(performance.now() - started).toFixed(0)} ms`);
      const assetOf = (id: string) =>
        join(app.outdir, functionOf(template, id)[1].Metadata['aws:asset:path']);
      for (const spec of FUNCTION_SPECS) {
        const asset = assetOf(spec.id);
        expect(functionOf(template, spec.id)[1].Properties.Handler).toBe('index.handler');
        expect(readFileSync(join(asset, 'index.mjs'), 'utf8')).toMatch(/^import \{ createRequire as /);
        const binding = join(asset, 'node_modules', CHROMA_PACKAGES[1], 'package.json');
        expect(existsSync(binding) && JSON.parse(readFileSync(binding, 'utf8')).version, spec.id).toBe(
          'runsChroma' in spec && '1.0.5',
        );
        expect(existsSync(join(asset, 'node_modules/chromadb/dist/cli.mjs'))).toBe('runsChroma' in spec);
      }
      const { handler } = await import(join(assetOf('GroupSegments'), 'index.mjs'));
      expect(typeof handler).toBe('function');
    },
  );
});
