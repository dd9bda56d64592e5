import { readdir, readFile } from 'node:fs/promises';

/** Clock ticks per second for /proc/<pid>/stat times (USER_HZ; 100 on Linux). */
const TICKS_PER_SECOND = 100;

export interface ProcStats {
  /** User + system CPU seconds. */
  cpuSeconds: number;
  /** Peak resident set size (VmHWM), bytes. */
  peakRssBytes: number;
  /**
   * Seconds the process was ready to run but waited for a core
   * (summed over its threads; 0 where the kernel keeps no schedstat): how much
   * a busy machine held it back.
   */
  runQueueWaitSeconds: number;
}

/**
 * Nanoseconds all of `pid`'s threads (Node's main thread, libuv's pool, V8's
 * helpers) spent ready to run but waiting for a core: the second field of
 * each /proc/<pid>/task/<tid>/schedstat. Threads that have ended are not
 * counted; 0 where the kernel keeps no schedstat.
 */
async function runQueueWaitNs(pid: number): Promise<number> {
  const tids = await readdir(`/proc/${pid}/task`).catch(() => [] as string[]);
  const waits = await Promise.all(
    tids.map((tid) =>
      readFile(`/proc/${pid}/task/${tid}/schedstat`, 'utf8')
        .then((text) => Number(text.split(' ')[1]))
        .catch(() => 0),
    ),
  );
  return waits.reduce((a, w) => a + (Number.isFinite(w) ? w : 0), 0);
}

/** Reads CPU time and peak RSS of `pid` from /proc; undefined once it has gone. */
export async function readProcStats(pid: number): Promise<ProcStats | undefined> {
  try {
    const [stat, status, waitNs] = await Promise.all([
      readFile(`/proc/${pid}/stat`, 'utf8'),
      readFile(`/proc/${pid}/status`, 'utf8'),
      runQueueWaitNs(pid),
    ]);
    // Fields after the ")" that closes the command name: utime is field 14, stime 15 (1-based).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    const hwm = /VmHWM:\s+(\d+) kB/.exec(status);
    return {
      cpuSeconds: ticks / TICKS_PER_SECOND,
      peakRssBytes: hwm ? Number(hwm[1]) * 1024 : 0,
      runQueueWaitSeconds: waitNs / 1e9,
    };
  } catch {
    return undefined;
  }
}

/**
 * Samples a process every `intervalMs` until stopped, keeping the last
 * reading: for a process that exits on its own, that is its final usage to
 * within one interval.
 */
export class ProcSampler {
  last: ProcStats = { cpuSeconds: 0, peakRssBytes: 0, runQueueWaitSeconds: 0 };
  private readonly timer: NodeJS.Timeout;

  constructor(pid: number, intervalMs = 50) {
    const sample = async () => {
      const stats = await readProcStats(pid);
      if (stats) this.last = stats;
    };
    void sample();
    this.timer = setInterval(() => void sample(), intervalMs);
  }

  /** Takes one more reading (if the process is still there) and stops sampling. */
  async stop(pid: number): Promise<ProcStats> {
    clearInterval(this.timer);
    const stats = await readProcStats(pid);
    if (stats) this.last = stats;
    return this.last;
  }
}

/** The whole machine's CPU time so far, from /proc/stat, in clock ticks. */
export interface MachineCpu {
  readonly busyTicks: number;
  readonly totalTicks: number;
}

export async function readMachineCpu(): Promise<MachineCpu> {
  const text = await readFile('/proc/stat', 'utf8');
  // cpu  user nice system idle iowait irq softirq steal guest guest_nice
  const fields = text.split('\n')[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = fields.reduce((a, b) => a + b, 0);
  const idle = fields[3]! + fields[4]!;
  return { busyTicks: total - idle, totalTicks: total };
}

/** The fraction of all cores' time that was busy between two readings (0..1). */
export function busyFraction(from: MachineCpu, to: MachineCpu): number {
  const total = to.totalTicks - from.totalTicks;
  return total > 0 ? (to.busyTicks - from.busyTicks) / total : 0;
}
