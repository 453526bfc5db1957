import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { DEFINITION_PATH, CONSOLE_PAGE_DIR as PAGE_DIR } from '../package-paths.ts';
import { type ExecutionSource, LocalExecutionSource } from './execution-source.ts';
import { buildExecutionView, type ExecutionView, redact, toListItem } from './execution-view.ts';

/**
 * The local execution console: one page that lists executions and shows one the way the Step
 * Functions console does (graph, event history, run summary), JSON APIs behind it, and a
 * Server-Sent Events stream that follows a run in flight. node:http only; everything it serves
 * comes from this package or node_modules (the machine may have no internet).
 */
export interface ConsoleServerOptions {
  dataDir: string;
  port?: number;
  /** Loopback by default: executions hold bucket keys and run ids, not for the network. */
  host?: string;
  source?: ExecutionSource;
  /** How often the live stream looks for new events (default: the source's own, else 2000 ms). */
  pollIntervalMs?: number;
}

export interface ConsoleServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

const require = createRequire(import.meta.url);
// The UMD build bundles graphlib and defines a `dagre` global: a plain <script> can load it.
const DAGRE_BUNDLE = join(dirname(require.resolve('@dagrejs/dagre/package.json')), 'dist', 'dagre.min.js');

const STATIC_FILES: Record<string, { file: string; type: string }> = {
  '/static/app.js': { file: join(PAGE_DIR, 'app.js'), type: 'text/javascript' },
  '/static/graph.js': { file: join(PAGE_DIR, 'graph.js'), type: 'text/javascript' },
  '/static/history.js': { file: join(PAGE_DIR, 'history.js'), type: 'text/javascript' },
  '/static/dom.js': { file: join(PAGE_DIR, 'dom.js'), type: 'text/javascript' },
  '/static/zoom.js': { file: join(PAGE_DIR, 'zoom.js'), type: 'text/javascript' },
  '/static/edge-routing.js': { file: join(PAGE_DIR, 'edge-routing.js'), type: 'text/javascript' },
  '/static/style.css': { file: join(PAGE_DIR, 'style.css'), type: 'text/css' },
  '/static/graph.css': { file: join(PAGE_DIR, 'graph.css'), type: 'text/css' },
  '/static/vendor/dagre.min.js': { file: DAGRE_BUNDLE, type: 'text/javascript' },
};

const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

const FULL_READ_EVERY_MS = 5000;

const isLoopback = (host: string) => ['127.0.0.1', 'localhost', '::1'].includes(host);

function send(res: ServerResponse, status: number, type: string, body: string | Buffer): void {
  res.writeHead(status, { 'content-type': `${type}; charset=utf-8`, ...SECURITY_HEADERS });
  res.end(body);
}

const sendJson = (res: ServerResponse, status: number, value: unknown) =>
  send(res, status, 'application/json', JSON.stringify(value));

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);

/** Served with status 404 for an unknown execution, so a bookmark to a deleted run says so plainly. */
function notFoundPage(executionId: string, where: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Execution not found · embedflow console</title>
<link rel="stylesheet" href="/static/style.css"></head>
<body><header class="topbar"><a class="brand" href="/">embedflow console</a></header>
<main class="not-found" data-view="not-found"><h1>Execution not found</h1>
<p>There is no execution <code>${escapeHtml(executionId)}</code> in ${escapeHtml(where)}.</p>
<p><a href="/">Back to all executions</a></p></main></body></html>`;
}

export async function startConsoleServer(options: ConsoleServerOptions): Promise<ConsoleServer> {
  const host = options.host ?? '127.0.0.1';
  const source: ExecutionSource = options.source ?? new LocalExecutionSource(options.dataDir);
  const pollIntervalMs = options.pollIntervalMs ?? source.pollIntervalMs ?? 2000;
  let definition: object | undefined;
  const loadDefinition = async (): Promise<object> => {
    definition ??= source.definition
      ? await source.definition()
      : (JSON.parse(await readFile(DEFINITION_PATH, 'utf8')) as object);
    return definition;
  };
  const viewOf = async (executionId: string): Promise<ExecutionView | null> => {
    const detail = await source.get(executionId);
    return detail && (redact(buildExecutionView(detail, await loadDefinition())) as ExecutionView);
  };
  let closing = false;

  /** Pushes new events and the re-derived statuses until the execution stops or the page leaves. */
  async function streamExecution(req: IncomingMessage, res: ServerResponse, id: string, afterId: number) {
    res.writeHead(200, { 'content-type': 'text/event-stream', ...SECURITY_HEADERS });
    let open = true;
    req.on('close', () => {
      open = false;
    });
    const emit = (event: string, data: unknown, lastEventId?: number) =>
      res.write(
        `${lastEventId ? `id: ${lastEventId}\n` : ''}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`,
      );
    let lastToken: string | null | undefined;
    let lastSentId = afterId;
    let lastStatus: string | undefined;
    let lastWriteAt = Date.now();
    let lastReadAt = 0;
    while (open && !closing) {
      const token = source.changeToken ? await source.changeToken(id) : null;
      // Re-read now and then even without a change: a run whose process died turns ABORTED on read.
      if (token === null || token !== lastToken || Date.now() - lastReadAt > FULL_READ_EVERY_MS) {
        lastToken = token;
        lastReadAt = Date.now();
        const view = await viewOf(id);
        if (!view) {
          emit('gone', { executionId: id });
          break;
        }
        const events = view.events.filter((event) => event.id > lastSentId);
        if (events.length > 0 || view.status !== lastStatus) {
          lastSentId = events.at(-1)?.id ?? lastSentId;
          lastStatus = view.status;
          emit('update', { ...view, events }, lastSentId);
          lastWriteAt = Date.now();
        }
        if (view.status !== 'RUNNING') {
          emit('end', { status: view.status });
          break;
        }
      }
      // A comment line now and then keeps proxies and idle timers from dropping a quiet stream.
      if (Date.now() - lastWriteAt > 15_000) {
        res.write(': keep-alive\n\n');
        lastWriteAt = Date.now();
      }
      await new Promise((resolve) => setTimeout(resolve, pollIntervalMs));
    }
    res.end();
  }

  async function route(req: IncomingMessage, res: ServerResponse, port: number): Promise<void> {
    // DNS rebinding guard: a loopback console answers only to loopback host names.
    const hostHeader = (req.headers.host ?? '').replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1');
    if (isLoopback(host) && !isLoopback(hostHeader)) return send(res, 403, 'text/plain', 'forbidden host');
    if (req.method !== 'GET' && req.method !== 'HEAD')
      return send(res, 405, 'text/plain', 'method not allowed');
    const url = new URL(req.url ?? '/', `http://127.0.0.1:${port}`);
    const path = url.pathname;
    const executionPath = /^\/(api\/)?executions\/([^/]+)(\/stream)?$/.exec(path);
    let executionId = '';
    if (executionPath) {
      try {
        executionId = decodeURIComponent(executionPath[2]!);
      } catch {
        return sendJson(res, 400, { error: 'BadRequest', message: 'malformed execution id in the URL' });
      }
    }

    if (path === '/' || (executionPath && !executionPath[1])) {
      if (executionPath && !(await source.get(executionId))) {
        return send(res, 404, 'text/html', notFoundPage(executionId, source.description));
      }
      return send(res, 200, 'text/html', await readFile(join(PAGE_DIR, 'index.html')));
    }
    const asset = STATIC_FILES[path];
    if (asset) return send(res, 200, asset.type, await readFile(asset.file));
    if (path === '/favicon.ico') {
      res.writeHead(204);
      return void res.end();
    }
    if (path === '/api/executions') {
      const executions = (await source.list()).map(toListItem);
      return sendJson(res, 200, { source: source.description, executions });
    }
    if (path === '/api/definition') return sendJson(res, 200, await loadDefinition());
    if (executionPath?.[3]) {
      if (req.method === 'HEAD') return send(res, 200, 'text/event-stream', '');
      // On a reconnect the browser's Last-Event-ID is newer than the `after` the page first asked for.
      const after = Number(req.headers['last-event-id'] ?? url.searchParams.get('after') ?? 0);
      return streamExecution(req, res, executionId, Number.isFinite(after) ? after : 0);
    }
    if (executionPath) {
      const view = await viewOf(executionId);
      if (!view) {
        return sendJson(res, 404, {
          error: 'ExecutionNotFound',
          message: `no execution "${executionId}" in ${source.description}`,
        });
      }
      return sendJson(res, 200, { source: source.description, execution: view });
    }
    return sendJson(res, 404, { error: 'NotFound', message: `nothing at ${path}` });
  }

  const server = createServer((req, res) => {
    const port = (server.address() as AddressInfo).port;
    route(req, res, port).catch((error: unknown) => {
      // One bad request (an unreadable file, a source that threw) must never take the console down.
      const message = error instanceof Error ? error.message : String(error);
      if (!res.headersSent) sendJson(res, 500, { error: 'InternalError', message });
      else res.end();
    });
  });
  server.on('clientError', (_error, socket) => socket.destroy());

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${urlHost}:${port}/`,
    port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        closing = true;
        server.close((error) => (error ? reject(error) : resolve()));
        // Open live streams would otherwise keep close() waiting until their pages go away.
        server.closeAllConnections();
      }),
  };
}
