/**
 * Fixtures for the suites that run protocol parts over real loopback sockets:
 * a split file with its metainfo.
 */
import { writeFile } from 'node:fs/promises';
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
