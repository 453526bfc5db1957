import { UsageError } from './output.ts';

/**
 * AWS mode's flags, checked before any AWS call (and before the SDK is loaded), naming the flag.
 */
const STATE_MACHINE_ARN = /^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:stateMachine:[A-Za-z0-9_-]+$/;

/** Rejects a malformed --state-machine-arn. */
export function checkStateMachineArn(arn: string): string {
  if (!STATE_MACHINE_ARN.test(arn)) {
    throw new UsageError(
      `--state-machine-arn "${arn}" is not a state machine ARN (arn:aws:states:REGION:ACCOUNT:stateMachine:NAME)`,
    );
  }
  return arn;
}

/** `--input s3://bucket/prefix`: the prefix always ends with `/` (or is empty). */
export function parseS3Uri(uri: string): { bucket: string; prefix: string } {
  const match = /^s3:\/\/([^/]+)\/?(.*)$/.exec(uri);
  if (!match) throw new UsageError(`--input "${uri}" is not an S3 URI: expected s3://bucket/prefix/`);
  const prefix = match[2]!;
  return { bucket: match[1]!, prefix: prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/` };
}
