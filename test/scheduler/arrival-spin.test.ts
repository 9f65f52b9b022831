import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ArrivalSpin } from '../../src/scheduler/arrival-spin.js';

function feed(spin: ArrivalSpin, gaps: readonly number[], times: number): void {
  for (let i = 0; i < times; i++) for (const gap of gaps) spin.observe(gap);
}

describe('ArrivalSpin', () => {
  it('starts at the maximum', () => {
    assert.equal(new ArrivalSpin(2, 500).us, 500);
  });

  it('spins through regular gaps: one client waiting for each answer', () => {
    const spin = new ArrivalSpin(2, 500);
    feed(spin, [45, 50, 55, 60, 48, 52, 70, 47], 40);
    assert.ok(spin.us >= 64, `budget ${spin.us} µs does not cover 45-70 µs gaps`);
  });

  it('spins up to the maximum for a peer one network round trip away', () => {
    const spin = new ArrivalSpin(2, 500);
    feed(spin, [280, 300, 320, 310, 290, 350, 300, 330], 40);
    assert.equal(spin.us, 500);
  });

  it('stops short of the maximum when gaps are mostly short with a long tail', () => {
    // 64 connections on two CPUs: most requests come within tens of µs, 6% after the event loop's I/O.
    const spin = new ArrivalSpin(2, 500);
    const gaps = [...Array.from({ length: 47 }, (_, i) => 10 + (i % 5) * 8), 90, 120, 2000, 2500, 3000];
    feed(spin, gaps, 20);
    assert.ok(spin.us >= 32 && spin.us <= 128, `budget ${spin.us} µs`);
  });

  it('prices a park lower while the caller is behind: a busy event loop waits on throughput', () => {
    const gaps = [...Array.from({ length: 8 }, () => 20), 600, 700];
    const waiting = new ArrivalSpin(2, 2000, 500);
    feed(waiting, gaps, 20);
    assert.ok(waiting.us >= 1024, `budget ${waiting.us} µs does not cover 600-700 µs gaps of a caller waiting on each answer`);
    const busy = new ArrivalSpin(2, 2000, 500);
    for (let i = 0; i < 20; i++) {
      for (const gap of gaps) {
        busy.behind(3);
        busy.observe(gap);
      }
    }
    assert.ok(busy.us <= 32, `budget ${busy.us} µs spins through the long gaps of a caller that is behind`);
    // One answer waiting is the normal hand-off, not a caller behind.
    const handOff = new ArrivalSpin(2, 2000, 500);
    for (let i = 0; i < 20; i++) {
      for (const gap of gaps) {
        handOff.behind(1);
        handOff.observe(gap);
      }
    }
    assert.equal(handOff.us, waiting.us);
  });

  it('parks at once when every gap is past the maximum (an idle worker)', () => {
    const spin = new ArrivalSpin(2, 500);
    feed(spin, [10_000, 800, 50_000, 1_000_000], 8);
    assert.equal(spin.us, 2);
  });

  it('comes back from idle within a window once requests come regularly', () => {
    const spin = new ArrivalSpin(2, 500);
    feed(spin, [10_000], 200);
    assert.equal(spin.us, 2);
    feed(spin, [50], 64);
    assert.ok(spin.us >= 64, `budget ${spin.us} µs after 64 gaps of 50 µs`);
  });

  it('stays within [min, max] under any sequence', () => {
    const spin = new ArrivalSpin(5, 100);
    for (let i = 0; i < 5000; i++) {
      spin.observe((i * 37) % 250);
      assert.ok(spin.us >= 5 && spin.us <= 100, `${spin.us}`);
    }
  });
});
