/**
 * A peer's dashboard report and the owner's answer: when to send the next.
 * A small HTTP server on 127.0.0.1 plays an owner (new, old, or broken).
 */
import { createServer, type Server } from 'node:http';
import { DASHBOARD_REPORT_HEADER } from '@swarmdrop/service';
import { Cleanup, rejected } from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import {
  HttpStatusError,
  postReport,
  REPORT_HINT_MAX_MS,
  REPORT_HINT_MIN_MS,
} from '../src/owner-client.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const REPORT = { port: 7001, map: '1n', connections: 0, done: false, links: [] };

/** An owner that answers every report with `status` and, when given, the hint header. */
async function owner(status: number, hint?: string): Promise<number> {
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(status, hint === undefined ? {} : { [DASHBOARD_REPORT_HEADER]: hint });
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanup.add(() => new Promise<void>((resolve) => server.close(() => resolve())));
  cleanup.add(() => server.closeAllConnections());
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

const post = async (port: number) => postReport({ host: '127.0.0.1', port }, REPORT);

describe('postReport', () => {
  it("takes the owner's hint for the next report", async () => {
    expect(await post(await owner(204, '5000'))).toBe(5000);
    expect(await post(await owner(204, '1000'))).toBe(1000);
  });

  it('keeps a hint within bounds, and gives none for an owner that sends none or nonsense', async () => {
    expect(await post(await owner(204, '1'))).toBe(REPORT_HINT_MIN_MS);
    expect(await post(await owner(204, '1e12'))).toBe(REPORT_HINT_MAX_MS);
    expect(await post(await owner(204))).toBeUndefined();
    expect(await post(await owner(204, 'soon'))).toBeUndefined();
    expect(await post(await owner(204, '-5'))).toBeUndefined();
  });

  it('rejects with the status when the owner takes no reports', async () => {
    const err = await rejected(post(await owner(404)));
    expect(err).toBeInstanceOf(HttpStatusError);
    expect((err as HttpStatusError).status).toBe(404);
  });
});
