/**
 * Stock clients and magnet links, on hosts of a network-namespace lab
 * (Transmission refuses peers on 127.0.0.1): aria2c, transmission-cli and
 * qbittorrent-nox, each with its defaults (DHT, LPD and UPnP off: there is
 * no outside network), complete
 * - from the owner's magnet link alone (metadata by BEP 9 from the owner);
 * - from a swarmdrop peer's address once the owner is gone: as the tracker
 *   (its member tracker) for aria2c and Transmission, which read no `x.pe`,
 *   and as `x.pe` for qBittorrent;
 * and a swarmdrop peer completes from a magnet link naming only an aria2c
 * seeder: no swarmdrop owner anywhere.
 */
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { formatMagnet } from '@swarmdrop/protocol';
import { CHUNK, Cleanup, HANG_MS, LogCapture, OWNER_BIN, PEER_BIN } from '@swarmdrop/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { NetnsLab, namespacesNamed } from '../src/netns.js';
import {
  ARIA2_QUIET,
  CLIENT_HANG_MS,
  type ClientSite,
  fileBecomes,
  labToolGate,
  QB_HANG_MS,
  qbittorrentLogTail,
  type Spawned,
  spawnLogged,
  startAria2Seeder,
  startQbittorrent,
  startTransmission,
} from '../src/stock-clients.js';

const cleanup = new Cleanup();
const OWNER_PORT = 6881;
const PEER_PORT = 7001;
const NAME = 'mg.bin';

type Client = 'aria2c' | 'transmission' | 'qbittorrent';
const TOOL: Record<Client, string> = {
  aria2c: 'aria2c',
  transmission: 'transmission-cli',
  qbittorrent: 'qbittorrent-nox',
};

describe('stock clients from a magnet link', () => {
  const skip = (client: Client) => labToolGate(TOOL[client]);
  let lab: NetnsLab | undefined;

  afterEach(async () => {
    await cleanup.run();
    const id = lab?.id;
    await lab?.close();
    lab = undefined;
    if (id) expect(await namespacesNamed(id)).toEqual([]);
  });

  /** A lab with hosts owner, peer and client, and an owner on the first serving a 3 MB file. */
  async function start(token?: string) {
    lab = await NetnsLab.create(['owner', 'peer', 'client']);
    const ownerIp = lab.host('owner').ipv4;
    const base = await cleanup.tempDir('swarmdrop-magnet-');
    const source = join(base, NAME);
    const data = Buffer.alloc(30 * CHUNK + 4321);
    for (let i = 0; i < data.length; i++) data[i] = (i * 2246822519) >>> 25;
    await writeFile(source, data);
    const ownerLog = new LogCapture('owner');
    const owner = spawnLogged(
      cleanup,
      'ip',
      [
        ...lab.exec('owner').slice(1),
        process.execPath,
        OWNER_BIN,
        `${ownerIp}:${OWNER_PORT}`,
        source,
        '--dir',
        join(base, 'owner'),
        '--public-host',
        ownerIp,
      ],
      ownerLog,
      token === undefined ? undefined : { SWARMDROP_TOKEN: token },
    );
    const ready = await ownerLog.waitFor('ready', undefined, { timeoutMs: HANG_MS });
    const site: ClientSite = { cleanup, lab, host: 'client', base };
    return { lab, base, data, owner, ownerIp, ownerLog, site, magnet: ready.fields.magnet! };
  }

  /** Runs `client` on the magnet link until the file is whole; the client's output on failure. */
  async function download(
    client: Client,
    site: ClientSite,
    magnet: string,
    data: Buffer,
    logs: () => string,
  ): Promise<void> {
    const dir = join(site.base, `download-${client}`);
    await mkdir(dir);
    let spawned: Spawned;
    if (client === 'aria2c') {
      spawned = spawnLogged(cleanup, 'ip', [
        ...site.lab.exec(site.host).slice(1),
        'aria2c',
        ...ARIA2_QUIET,
        `--dir=${dir}`,
        '--seed-time=0',
        '--bt-stop-timeout=0',
        magnet,
      ]);
      const code = await spawned.exit(CLIENT_HANG_MS).catch((err: Error) => {
        throw new Error(`${err.message}\n${logs()}`);
      });
      expect(code, `${spawned.output()}\n${logs()}`).toBe(0);
    } else if (client === 'transmission') {
      spawned = await startTransmission(site, magnet, dir);
      // transmission-cli reports "Seeding" (or the state "Complete") once every piece has
      // verified. With its defaults it tries µTP first and, on this lab, spends over a minute
      // before its first piece (as with a .torrent: stock-encryption.test.ts), hence the bound.
      await spawned.waitFor(/Seeding|to "Complete"/, 2 * CLIENT_HANG_MS).catch((err: Error) => {
        throw new Error(`${err.message}\n${logs()}`);
      });
    } else {
      spawned = await startQbittorrent(site, magnet, dir);
      await fileBecomes(join(dir, NAME), data, spawned).catch(async (err: Error) => {
        throw new Error(
          `${err.message}\nqBittorrent's log:\n${await qbittorrentLogTail(site)}\n${logs()}`,
        );
      });
    }
    expect((await readFile(join(dir, NAME))).equals(data)).toBe(true);
  }

  for (const client of ['aria2c', 'transmission', 'qbittorrent'] as const) {
    const { skip: skipped, why } = skip(client);

    it.skipIf(skipped)(
      `${TOOL[client]} completes from the owner's magnet link alone${why}`,
      async () => {
        const setup = await start();
        await download(client, setup.site, setup.magnet, setup.data, () => setup.ownerLog.tail());
        // The metadata came from the owner over the wire (BEP 9), not as a .torrent over HTTP.
        expect(setup.ownerLog.filter('metadata-sent').length).toBeGreaterThan(0);
      },
      (client === 'qbittorrent' ? QB_HANG_MS : 2 * CLIENT_HANG_MS) + 60_000,
    );

    it.skipIf(skipped)(
      `${TOOL[client]} completes from a swarmdrop peer's address once the owner is gone${why}`,
      async () => {
        const setup = await start();
        const peerIp = setup.lab.host('peer').ipv4;
        const peerLog = new LogCapture('peer');
        spawnLogged(
          cleanup,
          'ip',
          [
            ...setup.lab.exec('peer').slice(1),
            process.execPath,
            PEER_BIN,
            `${setup.ownerIp}:${OWNER_PORT}`,
            `${peerIp}:${PEER_PORT}`,
            '--dir',
            join(setup.base, 'peer'),
          ],
          peerLog,
        );
        await peerLog.waitFor('merged', undefined, { timeoutMs: CLIENT_HANG_MS });
        setup.owner.child.kill('SIGKILL');
        await setup.owner.exit();
        const member = `${peerIp}:${PEER_PORT}`;
        const magnet = formatMagnet({
          infoHash: Buffer.from(setup.magnet.match(/btih:([0-9a-f]{40})/)![1]!, 'hex'),
          name: NAME,
          trackers: [`http://${member}/announce`],
          peers: [{ host: peerIp, port: PEER_PORT }],
        });
        await download(client, setup.site, magnet, setup.data, () => peerLog.tail());
        const clientIp = setup.lab.host('client').ipv4;
        const served = peerLog.chunks(
          'chunk-sent',
          (f) => f.to?.startsWith(`${clientIp}:`) === true,
        );
        expect(new Set(served).size).toBe(Math.ceil(setup.data.length / CHUNK));
      },
      (client === 'qbittorrent' ? QB_HANG_MS : 2 * CLIENT_HANG_MS) * 2 + 60_000,
    );
  }

  const aria2 = skip('aria2c');
  it.skipIf(aria2.skip)(
    `a swarmdrop peer completes from a magnet link naming only an aria2c seeder: no owner anywhere${aria2.why}`,
    async () => {
      const setup = await start();
      // aria2c seeds from the owner's .torrent and a copy of the file; then the owner goes.
      const seedDir = join(setup.base, 'seed');
      await mkdir(seedDir);
      await copyFile(join(setup.base, NAME), join(seedDir, NAME));
      const clientIp = setup.lab.host('client').ipv4;
      const seeder = await startAria2Seeder(cleanup, {
        torrent: join(setup.base, 'owner', `${NAME}.torrent`),
        dir: seedDir,
        port: 6991,
        prefix: setup.lab.exec('client'),
        seedTimeS: 120,
      });
      setup.owner.child.kill('SIGKILL');
      await setup.owner.exit();
      const magnet = formatMagnet({
        infoHash: Buffer.from(setup.magnet.match(/btih:([0-9a-f]{40})/)![1]!, 'hex'),
        peers: [{ host: clientIp, port: 6991 }],
      });
      const peerLog = new LogCapture('peer');
      spawnLogged(
        cleanup,
        'ip',
        [
          ...setup.lab.exec('peer').slice(1),
          process.execPath,
          PEER_BIN,
          magnet,
          `${setup.lab.host('peer').ipv4}:${PEER_PORT}`,
          '--dir',
          join(setup.base, 'peer'),
        ],
        peerLog,
      );
      const merged = await peerLog
        .waitFor('merged', undefined, { timeoutMs: CLIENT_HANG_MS })
        .catch((err: Error) => {
          throw new Error(`${err.message}\naria2c said:\n${seeder.output().slice(-3000)}`);
        });
      expect((await readFile(merged.fields.path!)).equals(setup.data)).toBe(true);
      expect(peerLog.filter('metadata-received').length).toBeGreaterThan(0);
    },
    CLIENT_HANG_MS * 2 + 30_000,
  );

  it.skipIf(aria2.skip)(
    `a private swarm's magnet link gets aria2c without the token neither metadata nor chunks${aria2.why}`,
    async () => {
      const setup = await start('a-private-swarm-token-0123456789');
      expect(setup.ownerLog.filter('ready')[0]!.fields.private).toBe('true');
      const dir = join(setup.base, 'download');
      await mkdir(dir);
      const aria = spawnLogged(cleanup, 'ip', [
        ...setup.lab.exec('client').slice(1),
        'aria2c',
        ...ARIA2_QUIET,
        `--dir=${dir}`,
        '--bt-stop-timeout=15',
        setup.magnet,
      ]);
      expect(await aria.exit(CLIENT_HANG_MS)).not.toBe(0);
      // Its announce was refused (401), and it never got onto the wire with the owner.
      expect(setup.ownerLog.filter('connected')).toEqual([]);
      expect(setup.ownerLog.filter('metadata-sent')).toEqual([]);
      expect(setup.ownerLog.filter('chunk-sent')).toEqual([]);
    },
    CLIENT_HANG_MS + 30_000,
  );
});
