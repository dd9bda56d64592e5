/**
 * acceptIncoming, the one path owner and peer take an incoming BitTorrent
 * connection through: transport policy, HTTP over µTP, admission, plaintext
 * under `require`, and MSE answered under the policy. Over real loopback
 * sockets (a µTP stream is a Duplex like them: its first bytes are read here).
 */
import { once } from 'node:events';
import { mseInitiate, type UtpStream } from '@swarmdrop/protocol/node';
import { Cleanup, rejected, socketPair } from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type AcceptIncomingOptions,
  acceptIncoming,
  type IncomingConnection,
  IncomingRefusedError,
  incomingHandlers,
} from '../src/index.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const INFO_HASH = Buffer.alloc(20, 0x42);
const PLAINTEXT = Buffer.concat([Buffer.from([19]), Buffer.from('BitTorrent protocol')]);

describe('acceptIncoming', () => {
  it('takes a plaintext handshake over TCP as it came, and refuses it under --encryption require or --transport utp', async () => {
    const [, server] = await socketPair(cleanup);
    const taken = await acceptIncoming(
      server,
      { transport: 'tcp', initial: PLAINTEXT, kind: 'plaintext' },
      { infoHash: INFO_HASH },
    );
    expect(taken).toMatchObject({ encryption: 'plaintext', transport: 'tcp', initial: PLAINTEXT });

    for (const [options, reason] of [
      [{ encryption: 'require' as const }, 'plaintext handshake, but --encryption is require'],
      [{ transport: 'utp' as const }, 'BitTorrent over TCP, but --transport is utp'],
    ] as const) {
      const [, refusedSocket] = await socketPair(cleanup);
      const err = await rejected(
        acceptIncoming(
          refusedSocket,
          { transport: 'tcp', initial: PLAINTEXT, kind: 'plaintext' },
          { infoHash: INFO_HASH, ...options },
        ),
      );
      expect(err).toBeInstanceOf(IncomingRefusedError);
      expect((err as Error).message).toBe(reason);
      expect(refusedSocket.destroyed).toBe(true);
    }
  });

  it('reads a stream’s first bytes itself: HTTP is refused, a plaintext handshake taken', async () => {
    const [client, server] = await socketPair(cleanup);
    client.write('GET /status HTTP/1.1\r\n\r\n');
    const err = await rejected(
      acceptIncoming(server, { transport: 'utp' }, { infoHash: INFO_HASH }),
    );
    expect((err as Error).message).toBe('HTTP over µTP');

    const [client2, server2] = await socketPair(cleanup);
    client2.write(PLAINTEXT);
    const taken = await acceptIncoming(server2, { transport: 'utp' }, { infoHash: INFO_HASH });
    expect(taken.encryption).toBe('plaintext');
    expect(taken.transport).toBe('utp');
    expect(taken.initial.subarray(0, 20).equals(PLAINTEXT)).toBe(true);
  });

  it('asks admission before it answers anything: a refused host gets no MSE reply', async () => {
    const [client, server] = await socketPair(cleanup);
    const received: Buffer[] = [];
    client.on('data', (b: Buffer) => received.push(b));
    const initiating = mseInitiate(client, { infoHash: INFO_HASH, policy: 'prefer' }).catch(
      (e: Error) => e,
    );
    const [first] = (await once(server, 'data')) as [Buffer];
    server.pause();
    const err = await rejected(
      acceptIncoming(
        server,
        { transport: 'tcp', initial: first, kind: 'mse' },
        { infoHash: INFO_HASH, admit: async () => 'not announced with the token' },
      ),
    );
    expect((err as Error).message).toBe('not announced with the token');
    await initiating;
    expect(Buffer.concat(received).length).toBe(0);
  });

  it('answers MSE under the policy and says what the connection got', async () => {
    const [client, server] = await socketPair(cleanup);
    const initiating = mseInitiate(client, { infoHash: INFO_HASH, policy: 'require' });
    const [first] = (await once(server, 'data')) as [Buffer];
    server.pause();
    const [taken, initiated] = await Promise.all([
      acceptIncoming(
        server,
        { transport: 'tcp', initial: first, kind: 'mse' },
        { infoHash: INFO_HASH, encryption: 'prefer' },
      ),
      initiating,
    ]);
    expect(taken).toMatchObject({ encryption: 'rc4', transport: 'tcp' });
    expect(initiated.encryption).toBe('rc4');
  });
});

describe('incomingHandlers', () => {
  /** Handlers whose outcomes resolve `outcome`; `policies` undefined: the service is not ready. */
  function handlers(policies: AcceptIncomingOptions | undefined) {
    let settle!: (outcome: { accepted?: IncomingConnection; refused?: [string, string] }) => void;
    const outcome = new Promise<{ accepted?: IncomingConnection; refused?: [string, string] }>(
      (resolve) => {
        settle = resolve;
      },
    );
    const hooks = incomingHandlers({
      policies: () => policies,
      onAccepted: (accepted) => settle({ accepted }),
      onRefused: (from, reason) => settle({ refused: [from, reason] }),
    });
    return { hooks, outcome };
  }

  it('takes a plaintext handshake through acceptIncoming and hands the connection on', async () => {
    const [, server] = await socketPair(cleanup);
    const { hooks, outcome } = handlers({ infoHash: INFO_HASH });
    hooks.onWire(server, PLAINTEXT);
    const { accepted } = await outcome;
    expect(accepted).toMatchObject({ socket: server, encryption: 'plaintext', transport: 'tcp' });
  });

  it('reports a refusal with the remote host:port, the socket already closed', async () => {
    const [client, server] = await socketPair(cleanup);
    const { hooks, outcome } = handlers({ infoHash: INFO_HASH, encryption: 'require' });
    hooks.onWire(server, PLAINTEXT);
    const { refused } = await outcome;
    expect(refused).toEqual([
      `127.0.0.1:${client.localPort}`,
      'plaintext handshake, but --encryption is require',
    ]);
    expect(server.destroyed).toBe(true);
  });

  it('reads a µTP-like stream’s first bytes itself, and closes at once while there are no policies', async () => {
    const [client, server] = await socketPair(cleanup);
    client.write('GET / HTTP/1.1\r\n\r\n');
    const { hooks, outcome } = handlers({ infoHash: INFO_HASH });
    hooks.onConnection(server as unknown as UtpStream);
    expect((await outcome).refused?.[1]).toBe('HTTP over µTP');

    const [, early] = await socketPair(cleanup);
    handlers(undefined).hooks.onEncrypted(early, Buffer.alloc(96));
    expect(early.destroyed).toBe(true);
  });
});
