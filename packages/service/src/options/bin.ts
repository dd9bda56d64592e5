import { DomainEvents } from '../events.js';
import type { LogFormat } from '../log/log.js';
import { createLogger, type Logger } from '../log/logger.js';
import { stdoutWriter } from '../log/stdout.js';
import { ProgressLine, wantsStatusLine } from '../progress-line.js';
import { onShutdownSignal, runServiceCli, type ServiceCli } from './cli.js';

/** What a service's bin gives the shell: how to parse its command line and start it. */
export interface ServiceBin<
  O extends { readonly quiet: boolean; readonly logFormat: LogFormat },
  S extends { close(): Promise<void> },
> extends Omit<ServiceCli<O>, 'main'> {
  readonly role: 'owner' | 'peer';
  /** The port the log names until the service has bound its own. */
  readonly logPort: (options: O) => number;
  /** Starts the service; `signal` aborts on the first SIGINT or SIGTERM. */
  readonly start: (
    options: Omit<O, 'quiet'>,
    components: {
      readonly logger: Logger;
      readonly events: DomainEvents;
      readonly signal: AbortSignal;
    },
  ) => Promise<S>;
  /**
   * The service stops by itself when `signal` aborts while it starts (the
   * peer, which can wait long for its owner): the bin then prints nothing of
   * its own and exits 0. Otherwise (the owner) a signal before the service
   * exists is logged as `stopping` by the bin.
   */
  readonly stopsWhileStarting?: boolean;
  /**
   * After start, for a service that finishes by itself (the peer): wait for
   * it, close it, and exit; `closeStatusLine` first removes the terminal's
   * status line. Without it, the service runs until a signal.
   */
  readonly afterStart?: (service: S, closeStatusLine: () => void) => Promise<void>;
}

/**
 * The bin both services run, written once: `--help` and `--version`, the
 * domain events, the terminal's status line (on a terminal, not in a pipe,
 * in CI or with --quiet) and the log sharing one writer that never blocks
 * on stdout, signals listened for before anything starts (without a
 * listener, a SIGTERM during a long start kills the process outright: exit
 * by signal, no `stopping` line), and the close on the first signal.
 */
export function runServiceBin<
  O extends { readonly quiet: boolean; readonly logFormat: LogFormat },
  S extends { close(): Promise<void> },
>(bin: ServiceBin<O, S>): void {
  const { role, start, logPort, stopsWhileStarting, afterStart, ...cli } = bin;
  runServiceCli({
    ...cli,
    async main(options) {
      const events = new DomainEvents();
      const stdout = stdoutWriter();
      const progress = wantsStatusLine({ output: stdout, quiet: options.quiet })
        ? await ProgressLine.create({ role, events, output: stdout })
        : undefined;
      const logger = createLogger({
        role,
        port: logPort(options),
        format: options.logFormat,
        ...(progress ? { sink: progress } : {}),
      });
      const controller = new AbortController();
      let service: S | undefined;
      onShutdownSignal(async () => {
        controller.abort();
        if (service) await service.close();
        else if (!stopsWhileStarting) logger.log('stopping', {});
        progress?.close();
      });
      try {
        // --quiet is the terminal's, not the service's: start() refuses keys it does not know.
        const { quiet: _quiet, ...serviceOptions } = options;
        service = await start(serviceOptions, { logger, events, signal: controller.signal });
      } catch (err) {
        progress?.close(); // the error line goes below the log, not under a status line
        if (stopsWhileStarting && controller.signal.aborted) return; // the signal handler exits 0
        throw err;
      }
      await afterStart?.(service, () => progress?.close());
    },
  });
}
