import { HANDSHAKE_LENGTH, PROTOCOL_NAME } from '../constants.js';
import { MESSAGE_ID, type Message } from './messages.js';

/**
 * Encodes one message in a single allocation. Layouts (big-endian u32 `len`
 * counts the bytes after itself):
 *   handshake:  <pstrlen=19><"BitTorrent protocol"><reserved 8><info_hash 20><peer_id 20>
 *   keep-alive: <len=0>
 *   choke, unchoke, interested, not interested: <len=1><id>
 *   have:       <len=5><id=4><index>
 *   bitfield:   <len=1+X><id=5><bits X>
 *   request:    <len=13><id=6><index><begin><length>
 *   piece:      <len=9+X><id=7><index><begin><block X>
 *   cancel:     <len=13><id=8><index><begin><length>
 *   extended:   <len=2+X><id=20><extension id><payload X>   (BEP 10)
 * BEP 6 (fast extension):
 *   suggest:    <len=5><id=13><index>
 *   have all, have none: <len=1><id=14|15>
 *   reject:     <len=13><id=16><index><begin><length>
 *   allowed fast: <len=5><id=17><index>
 */
export function encodeMessage(message: Message): Buffer {
  switch (message.type) {
    case 'handshake': {
      const out = Buffer.allocUnsafe(HANDSHAKE_LENGTH);
      out[0] = PROTOCOL_NAME.length;
      out.write(PROTOCOL_NAME, 1, 'latin1');
      copyExact(out, 20, message.reserved, 8, 'reserved');
      copyExact(out, 28, message.infoHash, 20, 'infoHash');
      copyExact(out, 48, message.peerId, 20, 'peerId');
      return out;
    }
    case 'keepAlive':
      return Buffer.alloc(4);
    case 'choke':
    case 'unchoke':
    case 'interested':
    case 'notInterested':
    case 'haveAll':
    case 'haveNone': {
      const out = Buffer.allocUnsafe(5);
      out.writeUInt32BE(1, 0);
      out[4] = MESSAGE_ID[message.type];
      return out;
    }
    case 'have':
    case 'suggest':
    case 'allowedFast': {
      const out = Buffer.allocUnsafe(9);
      out.writeUInt32BE(5, 0);
      out[4] = MESSAGE_ID[message.type];
      out.writeUInt32BE(message.index, 5);
      return out;
    }
    case 'bitfield': {
      const out = Buffer.allocUnsafe(5 + message.bytes.length);
      out.writeUInt32BE(1 + message.bytes.length, 0);
      out[4] = MESSAGE_ID.bitfield;
      out.set(message.bytes, 5);
      return out;
    }
    case 'request':
    case 'cancel':
    case 'reject': {
      const out = Buffer.allocUnsafe(17);
      out.writeUInt32BE(13, 0);
      out[4] = MESSAGE_ID[message.type];
      out.writeUInt32BE(message.index, 5);
      out.writeUInt32BE(message.begin, 9);
      out.writeUInt32BE(message.length, 13);
      return out;
    }
    case 'piece': {
      const out = Buffer.allocUnsafe(13 + message.block.length);
      out.writeUInt32BE(9 + message.block.length, 0);
      out[4] = MESSAGE_ID.piece;
      out.writeUInt32BE(message.index, 5);
      out.writeUInt32BE(message.begin, 9);
      out.set(message.block, 13);
      return out;
    }
    case 'extended': {
      if (!Number.isInteger(message.id) || message.id < 0 || message.id > 255)
        throw new RangeError(`extended message id ${message.id} is not a byte`);
      const out = Buffer.allocUnsafe(6 + message.payload.length);
      out.writeUInt32BE(2 + message.payload.length, 0);
      out[4] = MESSAGE_ID.extended;
      out[5] = message.id;
      out.set(message.payload, 6);
      return out;
    }
  }
}

/**
 * The 13-byte header of a piece message, for senders that write the block
 * separately (writev) instead of copying it into one buffer.
 */
export function encodePieceHeader(index: number, begin: number, blockLength: number): Buffer {
  const out = Buffer.allocUnsafe(13);
  out.writeUInt32BE(9 + blockLength, 0);
  out[4] = MESSAGE_ID.piece;
  out.writeUInt32BE(index, 5);
  out.writeUInt32BE(begin, 9);
  return out;
}

function copyExact(out: Buffer, at: number, bytes: Uint8Array, length: number, what: string): void {
  if (bytes.length !== length) throw new RangeError(`handshake ${what} must be ${length} bytes`);
  out.set(bytes, at);
}
