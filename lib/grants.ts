import { type CfnElement, Stack, Token, Validations } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type { IConstruct } from 'constructs';
import { BUCKET_PREFIXES, type BucketArea, type FunctionAccess } from './function-specs.ts';

/**
 * Least-privilege statements from a function's access row: object actions on `<bucket>/<prefix>*`,
 * listing only with an `s3:prefix` condition, table actions on the table alone. The bucket uses
 * SSE-S3, so no KMS grant is needed.
 */
export function accessStatements(access: FunctionAccess, bucket: s3.IBucket, table: dynamodb.ITable) {
  const objects = (areas: BucketArea[] | undefined) =>
    (areas ?? []).map((area) => bucket.arnForObjects(`${BUCKET_PREFIXES[area]}*`));
  const statements: iam.PolicyStatement[] = [];
  const objectStatement = (sid: string, actions: string[], areas: BucketArea[] | undefined) => {
    if (areas?.length) statements.push(new iam.PolicyStatement({ sid, actions, resources: objects(areas) }));
  };

  objectStatement('ReadObjects', ['s3:GetObject'], access.read);
  objectStatement('WriteObjects', ['s3:PutObject', 's3:AbortMultipartUpload'], access.write);
  objectStatement('DeleteObjects', ['s3:DeleteObject'], access.delete);
  if (access.list?.length) {
    statements.push(
      new iam.PolicyStatement({
        sid: 'ListPrefixes',
        actions: ['s3:ListBucket'],
        resources: [bucket.bucketArn],
        conditions: { StringLike: { 's3:prefix': access.list.map((area) => `${BUCKET_PREFIXES[area]}*`) } },
      }),
    );
  }
  if (access.table?.length) {
    statements.push(
      new iam.PolicyStatement({
        sid: 'PointerAndLockItems',
        actions: access.table.map((action) => `dynamodb:${action}`),
        resources: [table.tableArn],
      }),
    );
  }
  return statements;
}

/** The areas whose object ARNs end in a wildcard: one cdk-nag IAM5 finding each. */
function wildcardAreas(access: FunctionAccess): BucketArea[] {
  return [...new Set([...(access.read ?? []), ...(access.write ?? []), ...(access.delete ?? [])])];
}

/**
 * Acknowledges the prefix wildcards `accessStatements` necessarily produces: an object prefix
 * cannot be named without `*`, and each one is the narrowest the function's job allows.
 */
export function acknowledgePrefixWildcards(
  role: iam.IRole,
  access: FunctionAccess,
  bucket: s3.Bucket,
  functionId: string,
): void {
  const bucketLogicalId = Stack.of(bucket).getLogicalId(bucket.node.defaultChild as CfnElement);
  for (const area of wildcardAreas(access)) {
    Validations.of(role).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${bucketLogicalId}.Arn>/${BUCKET_PREFIXES[area]}*]`,
      reason: `${functionId} works on objects under ${BUCKET_PREFIXES[area]} whose keys are only known at run time; the grant is limited to that prefix.`,
    });
  }
}

/**
 * Partition, region and account as cdk-nag prints them in finding ids: literal when the stack's
 * environment is known (`cdk synth` with a default region), `<AWS::…>` pseudo parameters otherwise.
 */
export function nagArnParts(scope: IConstruct): { partition: string; region: string; account: string } {
  const stack = Stack.of(scope);
  const shown = (value: string, pseudo: string) => (Token.isUnresolved(value) ? `<AWS::${pseudo}>` : value);
  return {
    partition: shown(stack.partition, 'Partition'),
    region: shown(stack.region, 'Region'),
    account: shown(stack.account, 'AccountId'),
  };
}
