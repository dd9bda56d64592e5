"""Joins a torrent known only by its info-hash through libtorrent (python3-libtorrent):
the metadata comes from the one peer given (BEP 9), then, with `file`, the file.
Prints `metadata NAME SIZE INFOHASH`, then `complete` once seeding; exits 1 on timeout.
Usage: libtorrent-magnet.py INFOHASH HOST PORT SAVE_DIR metadata|file TIMEOUT_S"""
import sys
import time

import libtorrent as lt

info_hash, host, port, save, want, timeout = sys.argv[1:7]
session = lt.session({
    'listen_interfaces': '127.0.0.1:0',
    'enable_dht': False,
    'enable_lsd': False,
    'enable_upnp': False,
    'enable_natpmp': False,
    'allow_multiple_connections_per_ip': True,
})
params = lt.add_torrent_params()
params.info_hashes = lt.info_hash_t(lt.sha1_hash(bytes.fromhex(info_hash)))
params.save_path = save
handle = session.add_torrent(params)
deadline = time.time() + float(timeout)
printed = False
next_dial = 0.0
while time.time() < deadline:
    status = handle.status()
    if time.time() >= next_dial and not status.is_seeding:
        # A dropped connection is not retried by itself soon enough for a test.
        handle.connect_peer((host, int(port)))
        next_dial = time.time() + 5
    if status.has_metadata and not printed:
        info = handle.torrent_file()
        print('metadata', info.name(), info.total_size(), str(info.info_hashes().v1), flush=True)
        printed = True
        if want == 'metadata':
            sys.exit(0)
    if printed and status.is_seeding:
        print('complete', flush=True)
        sys.exit(0)
    time.sleep(0.1)
print('timeout', 'metadata' if printed else 'no metadata', flush=True)
sys.exit(1)
