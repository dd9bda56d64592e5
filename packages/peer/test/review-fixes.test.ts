/**
 * Pins bugs a review found in the peer:
 * - one HTTP request with a target like `//[` crashed the whole peer
 *   (`new URL` threw inside the request listener);
 * - a block of the wrong length for a requested offset was ignored and left
 *   pending, so that chunk never completed;
 * - SIGTERM while the peer was still waiting for the owner killed it by
 *   signal, without a `stopping` line.
 */
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  Cleanup,
  freePort,
  runPeerBin,
  startFakeNeighbour,
  startOwner,
  startPeer,
  tempDir,
} from './helpers.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

function rawHttp(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.end(request));
    let text = '';
    socket.setEncoding('utf8').on('data', (d: string) => {
      text += d;
    });
    socket.on('close', () => resolve(text));
    socket.on('error', reject);
  });
}

describe('peer review fixes', () => {
  it('answers a malformed HTTP target with 400 and keeps running', async () => {
    const { owner } = await startOwner(cleanup, { size: 3 * 102_400, expectedPeers: 1 });
    const { peer } = await startPeer(cleanup, {
      ownerPort: owner.port,
      port: 0,
      neighbourPort: await freePort(),
    });
    const answer = await rawHttp(
      peer.port,
      'GET //[ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    );
    expect(answer).toMatch(/^HTTP\/1\.1 400/);
    const status = await rawHttp(
      peer.port,
      'GET /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    );
    expect(status).toMatch(/^HTTP\/1\.1 200/);
  });

  it('closes a neighbour that answers a request with a block of the wrong length', async () => {
    const { owner } = await startOwner(cleanup, { size: 6 * 102_400, expectedPeers: 50 });
    const fake = await startFakeNeighbour(cleanup, {
      metainfo: owner.metainfo,
      answer: (request) => Buffer.alloc(request.length - 1), // one byte short
    });
    const { capture } = await startPeer(cleanup, {
      ownerPort: owner.port,
      port: 0,
      neighbourPort: fake.port,
      options: { fallbackAfterMs: 60_000 },
    });
    await capture.waitFor('protocol-error');
    expect(capture.filter('protocol-error')[0]!.fields.reason).toMatch(/bytes for a block of/);
  });

  it('stops cleanly (exit 0, `stopping`) on SIGTERM while still waiting for the owner', async () => {
    const dir = await tempDir(cleanup);
    const nobody = await freePort();
    const child = runPeerBin(cleanup, [
      String(nobody),
      '0',
      String(await freePort()),
      '--dir',
      dir,
      '--owner-timeout-ms',
      '60000',
    ]);
    await child.stdout.waitFor('waiting');
    child.process.kill('SIGTERM');
    expect(await child.exited).toBe(0);
    expect(child.stdout.filter('stopping')).toHaveLength(1);
  });
});
