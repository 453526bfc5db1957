import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { EmbedflowStack, propsFromContext } from '../lib/embedflow-stack.ts';

/** The CDK app (cdk.json runs it through tsx). Options come from context: see docs/deploy.md. */
const app = new App();
const stackName = (app.node.tryGetContext('stackName') as string | undefined) ?? 'Embedflow';

new EmbedflowStack(app, stackName, {
  ...propsFromContext(app),
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
  description: 'embedflow: merges batch embedding runs into ChromaDB snapshots (Step Functions)',
});

Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
