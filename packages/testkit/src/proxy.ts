import { connect, createServer, type Socket } from 'node:net';
import type { Cleanup } from './cleanup.js';

/**
 * A TCP proxy in front of `targetPort` that forwards at most `budgetBytes`
 * from the target back to clients, then holds the rest: a transfer that
 * cannot finish, whatever the machine's speed. Closed by `cleanup`.
 */
export async function startGatedProxy(
  cleanup: Cleanup,
  targetPort: number,
  budgetBytes: number,
): Promise<number> {
  let budget = budgetBytes;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect({ host: '127.0.0.1', port: targetPort });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.on('data', (bytes: Buffer) => {
      const pass = Math.min(bytes.length, budget);
      budget -= pass;
      if (pass > 0) client.write(bytes.subarray(0, pass));
      if (pass < bytes.length) upstream.pause();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanup.add(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  );
  const address = server.address();
  return typeof address === 'object' && address ? address.port : 0;
}
