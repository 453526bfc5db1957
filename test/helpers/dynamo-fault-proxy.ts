import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { seededRandom } from '../../local/synthetic-records.ts';

/**
 * A proxy on 127.0.0.1 in front of a DynamoDB endpoint that loses responses the way DynamoDB can:
 * a chosen conditional write is forwarded and applied, and the caller gets a 500 instead of the
 * real answer, so the SDK retries it and the retry meets its own condition. `decide` picks which
 * requests (by operation and key) lose their response, or fail outright without being applied.
 *
 * Runnable alone for a check by hand:
 *   npx tsx test/helpers/dynamo-fault-proxy.ts http://127.0.0.1:PORT 0.3   (prints its own URL)
 */
export interface ProxiedRequest {
  operation: string;
  key: string | undefined;
  conditional: boolean;
}
export type ProxyDecision = 'forward' | 'lose-response' | 'fail';

export interface FaultProxy {
  url: string;
  decisions: Record<ProxyDecision, number>;
  decide: (request: ProxiedRequest) => ProxyDecision;
  close(): Promise<void>;
}

const INTERNAL_ERROR = JSON.stringify({
  __type: 'com.amazonaws.dynamodb.v20120810#InternalServerError',
  message: 'Internal server error (injected by the fault proxy)',
});

export async function startFaultProxy(
  target: string,
  decide: (request: ProxiedRequest) => ProxyDecision = () => 'forward',
): Promise<FaultProxy> {
  const upstream = new URL(target);
  const proxy: FaultProxy = {
    url: '',
    decisions: { forward: 0, 'lose-response': 0, fail: 0 },
    decide,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
  const server: Server = createServer((incoming, outgoing) => {
    const chunks: Buffer[] = [];
    incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
    incoming.on('end', () => {
      const body = Buffer.concat(chunks);
      const decision = proxy.decide(describe(String(incoming.headers['x-amz-target'] ?? ''), body));
      proxy.decisions[decision]++;
      if (decision === 'fail') {
        outgoing.writeHead(500, { 'content-type': 'application/x-amz-json-1.0' }).end(INTERNAL_ERROR);
        return;
      }
      const forwarded = request(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: incoming.method,
          path: incoming.url,
          headers: incoming.headers,
        },
        (response) => {
          const answer: Buffer[] = [];
          response.on('data', (chunk: Buffer) => answer.push(chunk));
          response.on('end', () => {
            if (decision === 'lose-response') {
              outgoing.writeHead(500, { 'content-type': 'application/x-amz-json-1.0' }).end(INTERNAL_ERROR);
            } else {
              outgoing.writeHead(response.statusCode ?? 500, response.headers).end(Buffer.concat(answer));
            }
          });
        },
      );
      forwarded.on('error', () => outgoing.destroy());
      forwarded.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return proxy;
}

function describe(target: string, body: Buffer): ProxiedRequest {
  const operation = target.slice(target.indexOf('.') + 1);
  try {
    const parsed = JSON.parse(body.toString('utf8')) as {
      Key?: { pk?: { S?: string } };
      Item?: { pk?: { S?: string } };
      ConditionExpression?: string;
    };
    return {
      operation,
      key: parsed.Key?.pk?.S ?? parsed.Item?.pk?.S,
      conditional: parsed.ConditionExpression !== undefined,
    };
  } catch {
    return { operation, key: undefined, conditional: false };
  }
}

/** Loses the response of `rate` of the conditional writes, seeded. */
export function loseConditionalWrites(rate: number, seed = 1): (request: ProxiedRequest) => ProxyDecision {
  const random = seededRandom(seed);
  const writes = new Set(['PutItem', 'UpdateItem', 'DeleteItem']);
  return (proxied) =>
    writes.has(proxied.operation) && proxied.conditional && random() < rate ? 'lose-response' : 'forward';
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [target, rate] = process.argv.slice(2);
  if (!target) throw new Error('usage: dynamo-fault-proxy TARGET_URL [RATE]');
  const proxy = await startFaultProxy(target, loseConditionalWrites(Number(rate ?? 0.3), Date.now()));
  process.stdout.write(`${proxy.url}\n`);
  setInterval(() => process.stderr.write(`${JSON.stringify(proxy.decisions)}\n`), 5000);
}
