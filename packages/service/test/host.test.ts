/**
 * ServiceHost, the shell owner and peer both start and close through: HTTP
 * waits for the service (503), then tries the service's own routes, then
 * /status, /metrics (token-guarded), the dashboard, and 404; close runs the
 * one close order, `stopping` first and the log's flush last.
 */
import { systemClock } from '@swarmdrop/protocol/node';
import { Cleanup, httpGet, LogCapture } from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { type HostedService, ServiceHost, type ServiceHostOptions } from '../src/index.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const OPTIONS: ServiceHostOptions = {
  role: 'peer',
  host: '127.0.0.1',
  port: 0,
  maxConnections: 16,
  maxConnectionsPerAddress: 16,
  transport: 'tcp',
  logFormat: 'text',
  token: undefined,
  startingText: 'still starting\n',
};

async function openHost(
  options: Partial<ServiceHostOptions> = {},
): Promise<{ host: ServiceHost; log: LogCapture }> {
  const log = new LogCapture();
  const host = await ServiceHost.open(
    { ...OPTIONS, ...options },
    { logger: log.logger('peer'), clock: systemClock },
    { chunksHeld: () => 3 },
  );
  cleanup.add(() => host.close({ stop: () => {}, release: async () => {} }));
  return { host, log };
}

function service(overrides: Partial<HostedService> = {}): HostedService {
  return {
    incomingPolicies: () => undefined,
    acceptWire: () => {},
    route: (path, _req, res) => {
      if (path !== '/own') return false;
      res.end('mine');
      return true;
    },
    status: () => ({ role: 'peer', secret: 'x' }),
    publicStatus: () => ({ role: 'peer', private: true }),
    ...overrides,
  };
}

describe('ServiceHost HTTP', () => {
  it('answers 503 with the starting text until a service is attached', async () => {
    const { host } = await openHost();
    const before = await httpGet(host.port, '/status');
    expect(before.status).toBe(503);
    expect(before.body.toString()).toBe('still starting\n');
    host.attach(service());
    expect((await httpGet(host.port, '/status')).status).toBe(200);
  });

  it("tries the service's routes first, then /status and /metrics, then 404", async () => {
    const { host } = await openHost();
    host.attach(service());
    expect((await httpGet(host.port, '/own')).body.toString()).toBe('mine');
    expect(JSON.parse((await httpGet(host.port, '/status')).body.toString())).toEqual({
      role: 'peer',
      secret: 'x',
    });
    const metrics = await httpGet(host.port, '/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.body.toString()).toMatch(/^swarmdrop_chunks_held 3$/m);
    const missing = await httpGet(host.port, '/nope');
    expect(missing.status).toBe(404);
    expect(missing.body.toString()).toBe('no such path: /nope\n');
  });

  it('with a token: the public status and 401 for /metrics without it', async () => {
    const { host } = await openHost({ token: 'a-token-long-enough-for-the-rules' });
    host.attach(service());
    expect(JSON.parse((await httpGet(host.port, '/status')).body.toString())).toEqual({
      role: 'peer',
      private: true,
    });
    expect((await httpGet(host.port, '/metrics')).status).toBe(401);
    const authorized = await httpGet(host.port, '/status', {
      headers: { authorization: 'Bearer a-token-long-enough-for-the-rules' },
    });
    expect(JSON.parse(authorized.body.toString())).toMatchObject({ secret: 'x' });
  });
});

describe('ServiceHost close', () => {
  it('publishes stopping, stops the service, closes the port, releases, once', async () => {
    const { host, log } = await openHost();
    host.attach(service());
    const steps: string[] = [];
    host.events.on('stopping', () => steps.push('stopping'));
    const close = () =>
      host.close({
        stop: () => steps.push('stop'),
        release: async () => {
          // The port is closed before the store is released.
          const refused = await httpGet(host.port, '/status').then(
            () => false,
            () => true,
          );
          steps.push(refused ? 'release' : 'release (port still open)');
        },
      });
    await Promise.all([close(), close()]);
    expect(steps).toEqual(['stopping', 'stop', 'release']);
    expect(log.lines.at(-1)?.event).toBe('stopping');
  });
});
