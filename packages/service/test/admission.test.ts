/**
 * A private swarm's admission, which the owner and the peer share. Before it
 * was one function, the owner only unmapped IPv4 while the peer also put
 * IPv6 in its short form, so the two could disagree on one address.
 */

import { ANNOUNCE_EXPIRY_MS, canonicalHost, ManualClock } from '@swarmdrop/protocol';
import { describe, expect, it } from 'vitest';
import { Admission } from '../src/index.js';

describe('canonicalHost', () => {
  it('gives every spelling of an address one form', () => {
    expect(canonicalHost('::ffff:1.2.3.4')).toBe('1.2.3.4');
    expect(canonicalHost('[::1]')).toBe('::1');
    expect(canonicalHost('0:0:0:0:0:0:0:1')).toBe('::1');
    expect(canonicalHost('2001:DB8:0:0:0:0:0:1')).toBe('2001:db8::1');
    expect(canonicalHost('fe80::1%eth0')).toBe('fe80::1');
    expect(canonicalHost('1.2.3.4')).toBe('1.2.3.4');
    expect(canonicalHost('example.org')).toBe('example.org');
  });
});

describe('Admission', () => {
  it('admits an IPv4-mapped socket address that announced as plain IPv4', () => {
    const admission = new Admission({ clock: new ManualClock() });
    admission.admit(['1.2.3.4']);
    expect(admission.isAdmitted('::ffff:1.2.3.4')).toBe(true);
    expect(admission.isAdmitted('1.2.3.5')).toBe(false);
  });

  it('admits [::1] when the tracker listed it in full (peers6), and the reverse', () => {
    const admission = new Admission({ clock: new ManualClock() });
    admission.admit(['0:0:0:0:0:0:0:1']);
    expect(admission.isAdmitted('[::1]')).toBe(true);
    expect(admission.isAdmitted('::1')).toBe(true);
    const reverse = new Admission({ clock: new ManualClock() });
    reverse.admit(['[::1]']);
    expect(reverse.isAdmitted('0:0:0:0:0:0:0:1')).toBe(true);
  });

  it('lasts the announce expiry on the injected clock, and a new admit renews it', () => {
    const clock = new ManualClock();
    const admission = new Admission({ clock });
    admission.admit(['10.0.0.1']);
    clock.advance(ANNOUNCE_EXPIRY_MS);
    expect(admission.isAdmitted('10.0.0.1')).toBe(true);
    clock.advance(1);
    expect(admission.isAdmitted('10.0.0.1')).toBe(false);
    admission.admit(['10.0.0.1']);
    expect(admission.isAdmitted('10.0.0.1')).toBe(true);
  });
});
