import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

/** A process's event-loop delay over a run, from its `/metrics`. */
export interface LoopDelay {
  readonly p99Ms: number;
  readonly maxMs: number;
}

/**
 * Reads a URL per line on stdin and prints, per line, the two event-loop
 * figures of the Prometheus text it got (prom-client's
 * nodejs_eventloop_lag_p99_seconds and _max_seconds, which cover the time
 * since the previous scrape), or an error.
 */
const SCRAPER = `
const http = require('node:http');
require('node:readline').createInterface({ input: process.stdin }).on('line', (url) => {
  http.get(url, (res) => {
    let text = '';
    res.setEncoding('utf8').on('data', (d) => { text += d; }).on('end', () => {
      const metric = (name) => { const m = new RegExp('^' + name + ' ([0-9.e+-]+)', 'm').exec(text); return m ? Number(m[1]) : null; };
      console.log(JSON.stringify({ url, p99: metric('nodejs_eventloop_lag_p99_seconds'), max: metric('nodejs_eventloop_lag_max_seconds') }));
    });
  }).on('error', (e) => console.log(JSON.stringify({ url, error: e.message })));
});
`;

/**
 * Scrapes the services' `/metrics` from one long-lived helper process (in the
 * lab host given by `command`, so it reaches every host): once as a service
 * comes up, which starts its event-loop monitor, and once at the end, which
 * reads the delay over the whole run. One process, not one per scrape: the
 * measurement should cost the measured machine next to nothing.
 */
export class LoopDelayProbe {
  private readonly child: ChildProcess;
  private readonly waiting = new Map<string, Array<(reply: Record<string, unknown>) => void>>();

  constructor(command: { file: string; args: readonly string[] }) {
    this.child = spawn(command.file, [...command.args, '-e', SCRAPER], {
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      const reply = JSON.parse(line) as Record<string, unknown>;
      const url = String(reply.url);
      this.waiting.get(url)?.shift()?.(reply);
    });
  }

  /** The delay since the previous scrape of `url` (undefined when the service answered none). */
  scrape(url: string, timeoutMs = 10_000): Promise<LoopDelay | undefined> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(undefined), timeoutMs);
      const list = this.waiting.get(url) ?? [];
      list.push((reply) => {
        clearTimeout(timer);
        const p99 = reply.p99;
        const max = reply.max;
        resolve(
          typeof p99 === 'number' && typeof max === 'number'
            ? { p99Ms: p99 * 1000, maxMs: max * 1000 }
            : undefined,
        );
      });
      this.waiting.set(url, list);
      this.child.stdin!.write(`${url}\n`);
    });
  }

  close(): void {
    this.child.stdin?.end();
    this.child.kill();
  }
}
