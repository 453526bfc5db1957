import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

// A port probe (listen on 0, close, hand the number over) would always return the decoy's port:
// the race that let two publishes share one server, made certain.
let decoyPort = 0;
vi.mock('node:net', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:net')>();
  return {
    ...real,
    createServer: () => ({
      once: () => undefined,
      listen: (_port: number, _host: string, callback: () => void) => callback(),
      address: () => ({ port: decoyPort }),
      close: (callback: () => void) => callback(),
    }),
  };
});

const { listeningPorts, startChroma } = await import('../../lambdas/core/chroma/chroma-server.ts');

let decoy: Server;
let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'embedflow-chroma-'));
  decoy = createServer((request, response) => {
    response.writeHead(request.url === '/api/v2/heartbeat' ? 200 : 500, {
      'content-type': 'application/json',
    });
    response.end('{"nanosecond heartbeat": 1}');
  });
  await new Promise<void>((resolve) => decoy.listen(0, '127.0.0.1', resolve));
  decoyPort = (decoy.address() as AddressInfo).port;
});
afterAll(async () => {
  await new Promise((resolve) => decoy.close(resolve));
  await rm(root, { recursive: true, force: true });
});

it.runIf(process.platform === 'linux')(
  'starts Chroma under the huge-page malloc (malloc-tunables.ts)',
  async () => {
    const server = await startChroma(join(root, 'tunables'));
    try {
      const environ = (await readFile(`/proc/${server.pid}/environ`, 'utf8')).split('\0');
      const tunables = environ.find((entry) => entry.startsWith('GLIBC_TUNABLES='));
      expect(tunables).toMatch(/glibc\.malloc\.hugetlb=/);
    } finally {
      await server.stop();
    }
  },
);

describe('a Chroma server talks only to the publish that started it', () => {
  it('ignores another server answering heartbeats on a probed port: the port is read off its own socket', async () => {
    const server = await startChroma(join(root, 'own'));
    try {
      expect(server.port).not.toBe(decoyPort);
      expect(await listeningPorts(server.pid)).toContain(server.port);
      const collection = await server.client.createCollection({ name: 'mine', embeddingFunction: null });
      await collection.add({ ids: ['a'], embeddings: [[1, 2]] });
      expect(await collection.count()).toBe(1);
    } finally {
      await server.stop();
    }
  });

  it('8 servers started at once each write only into their own directory', async () => {
    const names = Array.from({ length: 8 }, (_, index) => `dir-${index}`);
    const servers = await Promise.all(names.map((name) => startChroma(join(root, name))));
    try {
      expect(new Set(servers.map((server) => server.port)).size).toBe(8);
      await Promise.all(
        servers.map((server, index) =>
          server.client.createCollection({ name: names[index]!, embeddingFunction: null }),
        ),
      );
      for (const [index, server] of servers.entries()) {
        const listed = await server.client.listCollections();
        expect(listed.map((collection) => collection.name)).toEqual([names[index]]);
      }
    } finally {
      await Promise.all(servers.map((server) => server.stop()));
    }
  });

  it('a server that cannot start fails loudly with ChromaStartError, naming the directory', async () => {
    await expect(startChroma('/proc/no-such-dir/chroma', 5_000)).rejects.toMatchObject({
      name: 'ChromaStartError',
      message: expect.stringContaining('/proc/no-such-dir/chroma'),
    });
  });
});
