/**
 * Pins a bug: bencode 4's decoder takes a string length of "-3" at face
 * value and moves its read position backwards, so `d1:a-3:e` (8 bytes from a
 * hostile owner or a corrupt file) made parseMetainfo, withAnnounce and
 * bencodeDecode (which reads the owner's tracker responses) loop forever and
 * hang the whole process. They now check the bencode strictly before
 * decoding.
 *
 * A regression is a synchronous infinite loop, which no test timeout can
 * interrupt, so each input is parsed in a worker thread that is terminated
 * after a deadline: a hang fails the test instead of hanging the run. The
 * worker loads the built package (turbo builds protocol before its tests).
 */
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';

const hostile = ['d1:a-3:e', 'd4:infod-1:ee', 'd4:infol-5:ee', 'd-0:e', 'd4:infoi1e+3:abce'];
const DIST = new URL('../dist/index.js', import.meta.url).href;
const DEADLINE_MS = 10_000;

const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
import(workerData.dist).then((m) => {
  const bytes = Buffer.from(workerData.text);
  const outcome = (fn) => {
    try { fn(); return 'returned'; } catch (err) { return err.constructor.name + (err.field ? ':' + err.field : ''); }
  };
  parentPort.postMessage({
    parseMetainfo: outcome(() => m.parseMetainfo(bytes)),
    withAnnounce: outcome(() => m.withAnnounce(bytes, 'http://x/announce')),
    bencodeDecode: outcome(() => m.bencodeDecode(bytes)),
  });
});
`;

function parseInWorker(text: string): Promise<Record<string, string>> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(WORKER, { eval: true, workerData: { dist: DIST, text } });
    const timer = setTimeout(() => {
      void worker.terminate();
      reject(
        new Error(`parsing ${JSON.stringify(text)} did not finish within ${DEADLINE_MS} ms (hang)`),
      );
    }, DEADLINE_MS);
    worker.once('message', (result: Record<string, string>) => {
      clearTimeout(timer);
      void worker.terminate();
      resolve(result);
    });
    worker.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

describe('a negative or signed bencode string length', () => {
  it.each(hostile)('%j is refused by every parser, without hanging', async (text) => {
    expect(await parseInWorker(text)).toEqual({
      parseMetainfo: 'MetainfoError:torrent',
      withAnnounce: 'MetainfoError:torrent',
      bencodeDecode: 'Error',
    });
  });
});
