/**
 * One base class with a stable `code`; callers and tests match on `code`,
 * never on message text.
 */
export type ErrorCode =
  // wire
  | 'ERR_HANDSHAKE'
  | 'ERR_INFO_HASH'
  | 'ERR_FRAME_TOO_LARGE'
  | 'ERR_MESSAGE_LENGTH'
  | 'ERR_PIECE_INDEX'
  | 'ERR_REQUEST_LENGTH'
  | 'ERR_BLOCK_RANGE'
  | 'ERR_BITFIELD_LENGTH'
  | 'ERR_BITFIELD_SPARE_BITS'
  | 'ERR_BITFIELD_REPEATED'
  | 'ERR_REQUEST_FLOOD'
  | 'ERR_EXTENDED'
  | 'ERR_FAST'
  | 'ERR_UTP_PACKET'
  | 'ERR_PEX_MESSAGE'
  | 'ERR_PEX_FLOOD'
  // metainfo
  | 'ERR_METAINFO'
  // pinned content
  | 'ERR_PINNED'
  // chunk store
  | 'ERR_CHUNK_HASH'
  | 'ERR_CHUNK_MISSING'
  | 'ERR_FILE_HASH'
  | 'ERR_STORE_CLOSED'
  | 'ERR_FOREIGN_FILES'
  | 'ERR_NO_SPACE'
  // a peer's dashboard report
  | 'ERR_DASHBOARD_REPORT'
  // command line / configuration
  | 'ERR_ADDRESS'
  | 'ERR_OPTION';

export class SwarmdropError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A peer broke the wire protocol; the connection it came from must close. */
export class WireError extends SwarmdropError {}

/** A metainfo (.torrent) is malformed or dangerous; `field` names the culprit. */
export class MetainfoError extends SwarmdropError {
  readonly field: string;
  constructor(field: string, message: string) {
    super('ERR_METAINFO', `metainfo ${field}: ${message}`);
    this.field = field;
  }
}

/** A chunk or the merged file does not match its hash, or is not held. */
export class ChunkError extends SwarmdropError {}

/** A bad command-line value or option; `field` names it. */
export class OptionError extends SwarmdropError {
  readonly field: string;
  constructor(field: string, message: string, code: 'ERR_OPTION' | 'ERR_ADDRESS' = 'ERR_OPTION') {
    super(code, `${field}: ${message}`);
    this.field = field;
  }
}
