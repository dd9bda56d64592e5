import { spawn } from 'node:child_process';
import {
  getMetricsFromIterator,
  type PromHistogramData,
  type PromMetric,
  type PromMetrics,
} from 'prom2javascript';
import { httpGet } from './http.js';

export type { PromHistogramData, PromMetric, PromMetrics };

/**
 * Parses Prometheus' text exposition format with prom2javascript, so a test
 * checks what a scraper reads, not what the service meant to write.
 * (parse-prometheus-text-format, the most used parser on npm, folds every
 * sample of a histogram into one and drops its labels, so it cannot read
 * a histogram with a `source` label; neither is actively maintained, which
 * is why `promtoolCheck` also runs the Prometheus project's own parser.)
 */
export function parseMetrics(text: string): Promise<PromMetrics> {
  // prom2javascript reads no NaN sample, and prom-client writes one (as
  // `Nan`) for the mean of an event-loop histogram with no samples yet:
  // such lines are left out here; promtoolCheck reads them.
  const lines = text.split('\n').filter((line) => !NAN_SAMPLE.test(line));
  return getMetricsFromIterator(lines[Symbol.iterator]());
}

const NAN_SAMPLE = /^[^#].*\s[Nn]a[Nn](\s+-?\d+)?\s*$/;

/** GETs `/metrics` on `port` (with the token, if any); throws on a status other than 200. */
export async function fetchMetrics(
  port: number,
  options: { token?: string } = {},
): Promise<string> {
  const res = await httpGet(port, '/metrics', {
    headers: options.token ? { authorization: `Bearer ${options.token}` } : {},
  });
  if (res.status !== 200)
    throw new Error(`GET /metrics on port ${port}: ${res.status} ${res.body.toString()}`);
  return res.body.toString();
}

/** `fetchMetrics`, parsed. */
export async function scrapeMetrics(
  port: number,
  options: { token?: string } = {},
): Promise<PromMetrics> {
  return parseMetrics(await fetchMetrics(port, options));
}

function matches(labels: Readonly<Record<string, string>>, want: Readonly<Record<string, string>>) {
  return Object.entries(want).every(([k, v]) => labels[k] === v);
}

/**
 * The value of the samples of counter or gauge `name` whose labels include
 * `labels`, summed; 0 when none has them. Throws when there is no such
 * metric at all, so a renamed metric fails loudly instead of reading 0.
 */
export function metricValue(
  metrics: PromMetrics,
  name: string,
  labels: Readonly<Record<string, string>> = {},
): number {
  const metric = metrics[name];
  if (!metric) throw new Error(`no metric ${name} in the scrape`);
  let sum = 0;
  for (const sample of metric.data as Array<{ labels: Record<string, string>; value?: number }>)
    if (matches(sample.labels, labels)) sum += sample.value ?? 0;
  return sum;
}

/** The histogram samples of `name` whose labels include `labels`, summed: count, sum and buckets. */
export function histogramValue(
  metrics: PromMetrics,
  name: string,
  labels: Readonly<Record<string, string>> = {},
): { count: number; sum: number; bucket: (le: number | '+Inf') => number } {
  const metric = metrics[name];
  if (!metric) throw new Error(`no metric ${name} in the scrape`);
  if (metric.type !== 'histogram') throw new Error(`${name} is a ${metric.type}, not a histogram`);
  const samples = (metric.data as PromHistogramData[]).filter((s) => matches(s.labels, labels));
  return {
    count: samples.reduce((n, s) => n + s.count, 0),
    sum: samples.reduce((n, s) => n + (s.sum ?? 0), 0),
    bucket: (le) => samples.reduce((n, s) => n + (s.buckets[String(le)] ?? 0), 0),
  };
}

/**
 * Runs the Prometheus project's `promtool check metrics` (Debian package
 * `prometheus`) on an exposition: its parser, and its lint of names and
 * units against Prometheus' conventions. Resolves with what it printed and
 * its exit code (0: clean).
 */
export function promtoolCheck(text: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (t: string) => {
      output += t;
    });
    child.stderr.setEncoding('utf8').on('data', (t: string) => {
      output += t;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, output }));
    child.stdin.end(text);
  });
}
