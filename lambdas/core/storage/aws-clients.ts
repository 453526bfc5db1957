import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SFNClient } from '@aws-sdk/client-sfn';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { ConfigError } from '../errors.ts';

/**
 * The only place AWS clients are built. Locally the endpoints point at loopback services through
 * the SDK's own variables (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL_DYNAMODB); in AWS they are unset.
 */
export interface AwsContext {
  s3: S3Client;
  dynamo: DynamoDBDocumentClient;
  bucket: string;
  table: string;
}

type Env = Record<string, string | undefined>;

function required(env: Env, name: string): string {
  const value = env[name]?.trim();
  if (!value)
    throw new ConfigError(
      `${name} must be set (the ${name === 'BUCKET_NAME' ? 'S3 bucket' : 'DynamoDB table'} to use)`,
    );
  return value;
}

export function createAwsContext(env: Env = process.env): AwsContext {
  const region = env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1';
  const s3Endpoint = env.AWS_ENDPOINT_URL_S3;
  const dynamoEndpoint = env.AWS_ENDPOINT_URL_DYNAMODB;
  // Explicit credentials only when the given env has them (tests wire several stacks per process).
  const credentials =
    env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY
      ? {
          accessKeyId: env.AWS_ACCESS_KEY_ID,
          secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
          ...(env.AWS_SESSION_TOKEN && { sessionToken: env.AWS_SESSION_TOKEN }),
        }
      : undefined;
  // Read from the given env like the endpoints, not only from process.env as the SDK would: against
  // s3rver, which stores an aws-chunked body as it comes, a streamed PUT must carry no checksum.
  const checksums = env.AWS_REQUEST_CHECKSUM_CALCULATION?.trim().toUpperCase();
  const requestChecksumCalculation =
    checksums === 'WHEN_REQUIRED' || checksums === 'WHEN_SUPPORTED' ? checksums : undefined;
  const s3 = new S3Client({
    region,
    credentials,
    ...(requestChecksumCalculation && { requestChecksumCalculation }),
    ...(s3Endpoint && { endpoint: s3Endpoint, forcePathStyle: true }),
  });
  const dynamo = DynamoDBDocumentClient.from(
    new DynamoDBClient({ region, credentials, ...(dynamoEndpoint && { endpoint: dynamoEndpoint }) }),
    { marshallOptions: { removeUndefinedValues: true } },
  );
  return { s3, dynamo, bucket: required(env, 'BUCKET_NAME'), table: required(env, 'TABLE_NAME') };
}

let cached: AwsContext | undefined;

/** Lambda handlers reuse one context per container, as AWS recommends for SDK clients. */
export function awsContext(): AwsContext {
  cached ??= createAwsContext();
  return cached;
}

/** The Step Functions client of the function that starts runs (StartRun), and the state machine. */
export function stateMachineClient(env: Env = process.env): { sfn: SFNClient; stateMachineArn: string } {
  const stateMachineArn = env.STATE_MACHINE_ARN?.trim();
  if (!stateMachineArn) throw new ConfigError('STATE_MACHINE_ARN must be set (the workflow to start)');
  return { sfn: new SFNClient({ region: env.AWS_REGION ?? stateMachineArn.split(':')[3] }), stateMachineArn };
}
