/**
 * Fixtures for the suites that run protocol parts over real loopback sockets:
 * a split file with its metainfo, and a connected socket pair.
 */
import { writeFile } from 'node:fs/promises';
import { connect, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import type { Cleanup } from '@swarmdrop/testkit';
import { buildMetainfo } from '../src/index.js';
import { splitFile } from '../src/node/index.js';

/** `bytes` split into chunks under `<dir>/src`, with its metainfo. */
export async function storeWith(cleanup: Cleanup, bytes: Buffer) {
  const dir = await cleanup.tempDir();
  await writeFile(join(dir, 'f.bin'), bytes);
  const split = await splitFile({ source: join(dir, 'f.bin'), dir: join(dir, 'src') });
  const { metainfo } = buildMetainfo({
    name: 'f.bin',
    length: split.length,
    pieceHashes: split.pieceHashes,
    sha256: split.sha256,
  });
  return { dir, metainfo };
}

/** A connected socket pair on loopback, destroyed by `cleanup`. */
export async function socketPair(cleanup: Cleanup): Promise<[Socket, Socket]> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  const accepted = new Promise<Socket>((r) => server.once('connection', r));
  const client = connect(port, '127.0.0.1');
  const other = await accepted;
  server.close();
  cleanup.add(() => {
    client.destroy();
    other.destroy();
  });
  return [client, other];
}
