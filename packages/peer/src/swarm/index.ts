/**
 * Swarm mode's building blocks: pure parts on an injected clock and RNG, wired
 * into the peer by its scheduler. Invariants: STATE.md next to this file.
 */

export * from './min-rate-policy.js';
export * from './rarity-order.js';
export * from './redialer.js';
export * from './swarm-log.js';
export * from './swarm-picker.js';
export * from './swarm-scheduler.js';
export * from './swarm-session.js';
