import { connect, createServer, type Server, type Socket } from 'node:net';
import type { Cleanup } from './cleanup.js';

/** A TCP port on 127.0.0.1 that was free a moment ago (bind to 0, read, close). */
export async function freePort(): Promise<number> {
  return (await freePorts(1))[0]!;
}

/**
 * `count` distinct ports that were free a moment ago. All are held open at
 * once before any is released, so the kernel cannot hand out one twice.
 */
export async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const server = createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve());
      });
    }
    return servers.map((s) => {
      const address = s.address();
      return typeof address === 'object' && address ? address.port : 0;
    });
  } finally {
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  }
}

/** Two connected loopback sockets (ours, theirs), destroyed by `cleanup`. */
export async function socketPair(cleanup: Cleanup): Promise<[Socket, Socket]> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as { port: number }).port;
  const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
  const client = connect(port, '127.0.0.1');
  const other = await accepted;
  server.close();
  cleanup.add(() => {
    client.destroy();
    other.destroy();
  });
  return [client, other];
}

/**
 * Resolves when `socket` closes, whatever closed it. Not `once(socket,
 * 'close')`: that rejects on an 'error' event (EPIPE, ECONNRESET), and a
 * test that is awaiting something else at that moment gets an unhandled
 * rejection, though the socket's error was expected.
 */
export function closed(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed && socket.closed) resolve();
    else socket.once('close', () => resolve());
  });
}
