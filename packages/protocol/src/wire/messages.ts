/** BEP 3 message ids and BEP 6's (13-17), one table for encoder and decoder. */
export const MESSAGE_ID = {
  choke: 0,
  unchoke: 1,
  interested: 2,
  notInterested: 3,
  have: 4,
  bitfield: 5,
  request: 6,
  piece: 7,
  cancel: 8,
  /** BEP 10: every extension message, its own id in the first payload byte. */
  extended: 20,
  /** BEP 6 (fast extension): only where both handshakes set its bit (wire/fast.ts). */
  suggest: 13,
  haveAll: 14,
  haveNone: 15,
  reject: 16,
  allowedFast: 17,
} as const;

export type MessageType = keyof typeof MESSAGE_ID;

export interface Handshake {
  readonly type: 'handshake';
  /** 8 reserved bytes: swarmdrop sets BEP 10's bit (see wire/extended.ts) and reads only the bits it knows. */
  readonly reserved: Uint8Array;
  readonly infoHash: Uint8Array;
  readonly peerId: Uint8Array;
}

/** Everything that can cross the wire, discriminated on `type`. */
export type Message =
  | Handshake
  | { readonly type: 'keepAlive' }
  | { readonly type: 'choke' }
  | { readonly type: 'unchoke' }
  | { readonly type: 'interested' }
  | { readonly type: 'notInterested' }
  | { readonly type: 'have'; readonly index: number }
  | { readonly type: 'bitfield'; readonly bytes: Uint8Array }
  | {
      readonly type: 'request';
      readonly index: number;
      readonly begin: number;
      readonly length: number;
    }
  | {
      readonly type: 'piece';
      readonly index: number;
      readonly begin: number;
      readonly block: Uint8Array;
    }
  | {
      readonly type: 'cancel';
      readonly index: number;
      readonly begin: number;
      readonly length: number;
    }
  | {
      readonly type: 'extended';
      /** The extension's id as the receiver announced it (0: the extended handshake). */
      readonly id: number;
      readonly payload: Uint8Array;
    }
  | { readonly type: 'suggest'; readonly index: number }
  | { readonly type: 'haveAll' }
  | { readonly type: 'haveNone' }
  | {
      readonly type: 'reject';
      readonly index: number;
      readonly begin: number;
      readonly length: number;
    }
  | { readonly type: 'allowedFast'; readonly index: number };

export type MessageOf<T extends Message['type']> = Extract<Message, { type: T }>;
