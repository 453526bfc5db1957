import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, Validations } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import { placeholdersIn, readAsl, tasksByPlaceholder, withDistributedChunkMap } from '../../lib/asl.ts';
import { DEFINITION_PATH, EmbedflowStack, type EmbedflowStackProps } from '../../lib/embedflow-stack.ts';
import { FUNCTION_SPECS } from '../../lib/function-specs.ts';
import { SETTING_DEFAULTS } from '../../lib/settings.ts';

const CDK_CONTEXT = JSON.parse(readFileSync(join(import.meta.dirname, '../../cdk.json'), 'utf8')).context;
const ASL = readAsl(DEFINITION_PATH);
const SCHEDULED = {
  schedule: 'rate(1 hour)',
  scheduledInput: { manifest: { bucket: 'b', key: 'input/n/run.json' } },
};

interface SynthOptions {
  context?: Record<string, unknown>;
  /** aws-cdk-lib's own CloudFormation validation (~3 s the first time: it compiles a WASM engine). */
  validate?: boolean;
}

function synth(props: EmbedflowStackProps = {}, options: SynthOptions = {}) {
  const { app, stack } = build(props, options);
  return { app, stack, template: Template.fromStack(stack) };
}

function build(props: EmbedflowStackProps, options: SynthOptions) {
  const app = new App({
    context: { ...CDK_CONTEXT, ...options.context },
    outdir: mkdtempSync(join(tmpdir(), 'embedflow-cdk-')),
    builtinCloudFormationValidation: options.validate ?? false,
  });
  return { app, stack: new EmbedflowStack(app, 'Embedflow', { bundle: false, ...props }) };
}

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
    .filter(([, policy]) => policy.Properties.Roles.some((role: any) => role.Ref === roleId))
    .flatMap(([, policy]) => policy.Properties.PolicyDocument.Statement as Statement[]);
}
type Statement = { Action: string | string[]; Resource: unknown; Condition?: unknown; Sid?: string };
const actionList = (statements: Statement[]) => statements.flatMap((s) => [s.Action].flat());
const resourceText = (statement: Statement) => JSON.stringify(statement.Resource);

describe('EmbedflowStack template (synthesised without bundling)', () => {
  let template: Template;
  let stack: EmbedflowStack;
  beforeAll(() => {
    const started = performance.now();
    ({ template, stack } = synth({}, { validate: true }));
    console.info(`in-process synth with built-in validation: ${(performance.now() - started).toFixed(0)} ms`);
  });

  it('has the expected resources', () => {
    const counts = {
      'AWS::Lambda::Function': 9,
      'AWS::StepFunctions::StateMachine': 1,
      'AWS::S3::Bucket': 2,
      'AWS::DynamoDB::Table': 1,
      'AWS::SQS::Queue': 3,
      'AWS::Lambda::EventSourceMapping': 1,
      'AWS::Events::Rule': 1,
      'AWS::CloudWatch::Alarm': 5,
      'AWS::Logs::LogGroup': 10,
      'AWS::EC2::VPC': 0,
      'AWS::EFS::FileSystem': 0,
    };
    for (const [type, count] of Object.entries(counts)) template.resourceCountIs(type, count);
  });

  it('raises no aws-cdk-lib warnings or errors', () => {
    expect(Annotations.fromStack(stack).findWarning('*', Match.anyValue())).toEqual([]);
    expect(Annotations.fromStack(stack).findError('*', Match.anyValue())).toEqual([]);
  });

  it('gives every function the names, Powertools settings and every tunable with its default', () => {
    for (const [, fn] of resources(template, 'AWS::Lambda::Function')) {
      const variables = fn.Properties.Environment.Variables;
      expect(variables).toMatchObject({
        ...SETTING_DEFAULTS,
        SNAPSHOT_CACHE_DIR: '/tmp/embedflow-cache',
        POWERTOOLS_SERVICE_NAME: 'embedflow',
        POWERTOOLS_METRICS_NAMESPACE: 'embedflow',
      });
      expect(variables.BUCKET_NAME).toEqual({ Ref: expect.stringMatching(/^StorageBucket/) });
      expect(variables.TABLE_NAME).toEqual({ Ref: expect.stringMatching(/^StorageTable/) });
      expect(fn.Properties).toMatchObject({ Runtime: 'nodejs22.x', Architectures: ['x86_64'] });
    }
  });

  it('substitutes every ${…} placeholder of the ASL file with a function ARN, and nothing else', () => {
    const [, machine] = resources(template, 'AWS::StepFunctions::StateMachine')[0]!;
    const substitutions = machine.Properties.DefinitionSubstitutions as Record<string, any>;
    expect(Object.keys(substitutions).sort()).toEqual(placeholdersIn(ASL).sort());
    expect(placeholdersIn(machine.Properties.DefinitionString)).toEqual(placeholdersIn(ASL));
    for (const spec of FUNCTION_SPECS.filter((s) => 'placeholder' in s)) {
      const [logicalId] = functionOf(template, spec.id);
      expect(substitutions[spec.placeholder!]).toEqual({ 'Fn::GetAtt': [logicalId, 'Arn'] });
    }
  });

  it('times each function out no later than its Task state, with Chroma functions sized for Chroma', () => {
    const tasks = tasksByPlaceholder(ASL);
    for (const spec of FUNCTION_SPECS) {
      const [, fn] = functionOf(template, spec.id);
      for (const { state } of 'placeholder' in spec ? tasks.get(spec.placeholder)! : []) {
        expect(fn.Properties.Timeout, spec.id).toBeLessThanOrEqual(state.TimeoutSeconds as number);
      }
      if ('runsChroma' in spec) {
        expect(fn.Properties.MemorySize).toBeGreaterThanOrEqual(2048);
        expect(fn.Properties.EphemeralStorage.Size).toBeGreaterThanOrEqual(4096);
      }
    }
  });

  it('logs every state at level ALL, traces with X-Ray, and may invoke exactly the workflow functions', () => {
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', {
      LoggingConfiguration: { Level: 'ALL', IncludeExecutionData: true },
      TracingConfiguration: { Enabled: true },
    });
    const invoke = resources(template, 'AWS::IAM::Policy')
      .flatMap(([, p]) => p.Properties.PolicyDocument.Statement as Statement[])
      .filter((s) => actionList([s]).some((a) => a.startsWith('lambda:')));
    expect(invoke).toHaveLength(1);
    const invoked = (invoke[0]!.Resource as { 'Fn::GetAtt': string[] }[])
      .map((r) => r['Fn::GetAtt'][0])
      .sort();
    const expected = FUNCTION_SPECS.filter((s) => 'placeholder' in s).map(
      (s) => functionOf(template, s.id)[0],
    );
    expect(invoked).toEqual(expected.sort());
  });

  it('scopes IAM to each function’s prefixes and table actions', () => {
    expect(
      actionsOf(template, 'GroupSegments').filter((s) => /^(s3|dynamodb):/.test(actionList([s])[0]!)),
    ).toEqual([]);
    const processChunk = actionList(actionsOf(template, 'ProcessChunk'));
    expect(processChunk.filter((a) => /Delete/.test(a))).toEqual([]);
    expect(processChunk).toContain('dynamodb:GetItem');
    expect(actionList(actionsOf(template, 'ReadRunManifest')).filter((a) => a.startsWith('s3:'))).toEqual([
      's3:GetObject',
    ]);
    for (const spec of FUNCTION_SPECS) {
      for (const statement of actionsOf(template, spec.id)) {
        const actions = actionList([statement]);
        if (actions.includes('s3:ListBucket')) expect(statement.Condition, spec.id).toBeDefined();
        if (actions.some((a) => a.startsWith('s3:') && a !== 's3:ListBucket')) {
          expect(resourceText(statement), spec.id).toMatch(/"\/(input|runs|snapshots)\/\*"/);
          expect(resourceText(statement), spec.id).not.toMatch(/"\/\*"/);
        }
        expect(
          actions.filter((a) => a.endsWith(':*')),
          spec.id,
        ).toEqual([]);
      }
    }
    const finalMerge = actionsOf(template, 'FinalMerge');
    expect(actionList(finalMerge)).toEqual(
      expect.arrayContaining([
        'dynamodb:PutItem',
        'dynamodb:UpdateItem',
        'dynamodb:DeleteItem',
        'dynamodb:Scan',
      ]),
    );
    const deletes = finalMerge.filter((s) => actionList([s]).includes('s3:DeleteObject'));
    expect(deletes.map(resourceText).join()).not.toMatch(/input|runs/);
  });

  it('alarms on LockHoldMs p99, sustained CasConflicts, failed executions and dead letters', () => {
    const service = [{ Name: 'service', Value: 'embedflow' }];
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'embedflow',
      MetricName: 'LockHoldMs',
      ExtendedStatistic: 'p99',
      Dimensions: service,
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'embedflow',
      MetricName: 'CasConflicts',
      Statistic: 'Sum',
      Threshold: 0,
      EvaluationPeriods: 3,
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/States',
      MetricName: 'ExecutionsFailed',
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    });
  });

  it('feeds CompactionStream from a queue with a dead-letter queue and per-message failures', () => {
    const [, consumer] = functionOf(template, 'CompactionStream');
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: functionOf(template, 'CompactionStream')[0] },
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

  it('expires run temporaries but never snapshots, and locks the bucket down', () => {
    const [, bucket] = resources(template, 'AWS::S3::Bucket').find(([id]) => id.startsWith('StorageBucket'))!;
    const rules = bucket.Properties.LifecycleConfiguration.Rules as Record<string, any>[];
    expect(rules).toContainEqual(
      expect.objectContaining({ Prefix: 'runs/', ExpirationInDays: 7, Status: 'Enabled' }),
    );
    expect(rules.filter((rule) => rule.ExpirationInDays !== undefined).map((rule) => rule.Prefix)).toEqual([
      'runs/',
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

  it('starts an execution with a manifest reference when input/*/run.json is created', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.s3'],
        'detail-type': ['Object Created'],
        detail: { object: { key: [{ wildcard: 'input/*/run.json' }] } },
      },
      Targets: [
        Match.objectLike({
          InputTransformer: Match.objectLike({
            InputTemplate: '{"manifest":{"bucket":<detail-bucket-name>,"key":<detail-object-key>}}',
          }),
        }),
      ],
    });
  });
});

describe('stack options', () => {
  it('takes settings from props over context over defaults, and validates them at synth', () => {
    const { template } = synth(
      { settings: { GROUP_SIZE: 30 } },
      { context: { GROUP_SIZE: '40', CHUNK_SIZE_WORDS: '9' } },
    );
    const [, fn] = functionOf(template, 'MergeGroup');
    expect(fn.Properties.Environment.Variables).toMatchObject({ GROUP_SIZE: '30', CHUNK_SIZE_WORDS: '9' });
    expect(() => synth({ settings: { LOCK_STRATEGY: 'none' } })).toThrow(/LOCK_STRATEGY/);
    expect(() => synth({ settings: { HEARTBEAT_INTERVAL_SECONDS: 40 } })).toThrow(/less than half/);
  });

  it('renders MAP_MAX_CONCURRENCY into the chunk and merge Maps', () => {
    const { template } = synth({ settings: { MAP_MAX_CONCURRENCY: 25 } });
    const [, machine] = resources(template, 'AWS::StepFunctions::StateMachine')[0]!;
    expect(machine.Properties.DefinitionString.match(/"MaxConcurrency":25/g)).toHaveLength(2);
  });

  it('rewrites only ProcessChunks into a Distributed Map, without touching the parsed ASL', () => {
    const before = JSON.stringify(ASL);
    const distributed = withDistributedChunkMap(ASL);
    expect(JSON.stringify(ASL)).toBe(before);
    expect(JSON.stringify(distributed).match(/"DISTRIBUTED"/g)).toHaveLength(1);
    expect(JSON.stringify(distributed)).toContain(
      '"ProcessChunks":{"Type":"Map","ItemsPath":"$.chunks","MaxConcurrency":10',
    );
    expect(() => withDistributedChunkMap({ StartAt: 'A', States: { A: { Type: 'Pass' } } })).toThrow(
      /ProcessChunks/,
    );
  });

  it('deploys the Distributed Map with permission to run its child executions', () => {
    const { template } = synth({ distributedChunkMap: true });
    const [, machine] = resources(template, 'AWS::StepFunctions::StateMachine')[0]!;
    expect(machine.Properties.DefinitionString).toContain(
      '"ProcessorConfig":{"Mode":"DISTRIBUTED","ExecutionType":"STANDARD"}',
    );
    const statements = resources(template, 'AWS::IAM::Policy').flatMap(([id, p]) =>
      id.startsWith('WorkflowDistributedMapPolicy')
        ? (p.Properties.PolicyDocument.Statement as Statement[])
        : [],
    );
    expect(actionList(statements)).toEqual(
      expect.arrayContaining(['states:StartExecution', 'states:DescribeExecution']),
    );
  });

  it('mounts an EFS access point as the publishers’ snapshot cache when asked', () => {
    const { template, stack } = synth({ efsCache: true });
    template.resourceCountIs('AWS::EFS::AccessPoint', 1);
    for (const id of ['FinalMerge', 'CompactionStream', 'Cleanup']) {
      const [, fn] = functionOf(template, id);
      expect(fn.Properties.Environment.Variables.SNAPSHOT_CACHE_DIR).toBe('/mnt/embedflow-cache');
      expect(fn.Properties.FileSystemConfigs).toHaveLength(1);
    }
    expect(functionOf(template, 'ProcessChunk')[1].Properties.VpcConfig).toBeUndefined();
    expect(Annotations.fromStack(stack).findWarning('*', Match.anyValue())).toEqual([]);
  });

  it('adds a schedule rule only with a schedule, and refuses a schedule without input', () => {
    const { template } = synth(SCHEDULED);
    template.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(1 hour)' });
    expect(() => synth({ schedule: 'rate(1 hour)' })).toThrow(/scheduledInput/);
  });

  it.each([
    ['default options', {}],
    ['every option', { distributedChunkMap: true, efsCache: true, ...SCHEDULED }],
  ])('passes cdk-nag AwsSolutions with every finding fixed or acknowledged (%s)', (name, props) => {
    const started = performance.now();
    const { app } = build(props, { validate: true });
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    // Template.fromStack skips validation plugins: only a full app synth runs them (and throws on findings).
    let failure: unknown;
    try {
      app.synth();
    } catch (error) {
      failure = error;
    }
    console.info(`synth with cdk-nag (${name}): ${(performance.now() - started).toFixed(0)} ms`);
    const report = JSON.parse(readFileSync(join(app.outdir, 'validation-report.json'), 'utf8'));
    expect(report.pluginReports.flatMap((r: { violations: unknown[] }) => r.violations)).toEqual([]);
    expect(failure).toBeUndefined();
  });
});

describe('real bundling', () => {
  const handlersPresent = FUNCTION_SPECS.every((spec) =>
    existsSync(join(import.meta.dirname, '../../lambdas/handlers', spec.handlerFile)),
  );
  it.skipIf(!handlersPresent || process.env.EMBEDFLOW_SKIP_BUNDLING === '1')(
    'bundles every handler as ESM and ships Chroma to the two publishers',
    { timeout: 300_000 },
    async () => {
      const started = performance.now();
      const { template, app } = synth(
        { bundle: true },
        { context: { 'aws:cdk:enable-asset-metadata': true } },
      );
      console.info(`in-process synth with bundling: ${(performance.now() - started).toFixed(0)} ms`);
      for (const spec of FUNCTION_SPECS) {
        const [, fn] = functionOf(template, spec.id);
        expect(fn.Properties.Handler).toBe('index.handler');
        const assetDir = join(app.outdir, fn.Metadata['aws:asset:path']);
        const bundle = readFileSync(join(assetDir, 'index.mjs'), 'utf8');
        expect(bundle.startsWith('import { createRequire as __embedflowCreateRequire }')).toBe(true);
        const shipsChroma = existsSync(join(assetDir, 'node_modules/chromadb/dist/cli.mjs'));
        expect(shipsChroma, spec.id).toBe('runsChroma' in spec);
        if ('runsChroma' in spec) {
          const binding = join(assetDir, 'node_modules/chromadb-js-bindings-linux-x64-gnu');
          expect(JSON.parse(readFileSync(join(binding, 'package.json'), 'utf8')).version).toBe('1.0.5');
        }
      }
      const groupSegments = join(
        app.outdir,
        functionOf(template, 'GroupSegments')[1].Metadata['aws:asset:path'],
      );
      const module = await import(join(groupSegments, 'index.mjs'));
      expect(typeof module.handler).toBe('function');
    },
  );
});
