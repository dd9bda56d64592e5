/**
 * @packageDocumentation
 * swarmdrop's shared, pure protocol code: the BitTorrent v1 (BEP 3) wire
 * codec, bitfields, metainfo, chunk geometry, addresses and log events.
 * Sockets and disk live in `@swarmdrop/protocol/node`.
 *
 * @example
 * ```ts
 * import { FrameDecoder, encodeMessage, Geometry } from '@swarmdrop/protocol';
 * const decoder = new FrameDecoder({ geometry: new Geometry(512_000, 102_400) });
 * socket.on('data', (bytes) => {
 *   for (const message of decoder.push(bytes)) handle(message); // throws WireError on abuse
 * });
 * socket.write(encodeMessage({ type: 'have', index: 3 }));
 * ```
 */
export * from './address.js';
export { bencodeDecode, bencodeEncode } from './bencoding.js';
export { Bitfield } from './bitfield.js';
export * from './constants.js';
export * from './errors.js';
export * from './events/typed-emitter.js';
export { type Block, Geometry } from './geometry.js';
export * from './metainfo.js';
export * from './mse.js';
export * from './peer-id.js';
export * from './rate/rate-estimator.js';
export * from './rate/rate-limiter.js';
export * from './rate/upload-floor.js';
export * from './time/clock.js';
export * from './tracker.js';
export { escapeUnsafe, UNSAFE_CHARS, unicodeEscape } from './unsafe-text.js';
export * from './utp/address-rate.js';
export * from './utp/connection.js';
export * from './utp/ledbat.js';
export * from './utp/packet.js';
export * from './utp/reorder-budget.js';
export { FrameDecoder, type FrameDecoderOptions } from './wire/decoder.js';
export { encodeMessage, encodePieceHeader } from './wire/encode.js';
export {
  type Handshake,
  MESSAGE_ID,
  type Message,
  type MessageOf,
  type MessageType,
} from './wire/messages.js';
