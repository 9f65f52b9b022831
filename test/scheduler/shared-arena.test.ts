import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CaphostError, ErrorCode } from '../../src/errors.js';
import { SharedArena } from '../../src/scheduler/shared-arena.js';
import { mulberry32 } from '../support/prng.js';


function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

const invalid = (message: RegExp) => (error: unknown): boolean => {
  assert.ok(error instanceof CaphostError, String(error));
  assert.equal(error.code, ErrorCode.INVALID_ARGUMENT);
  assert.match(error.message, message);
  return true;
};

describe('SharedArena', () => {
  it('rounds its size down to 64 bytes', () => {
    assert.equal(new SharedArena(1000).byteLength, 960);
    assert.equal(new SharedArena(63).byteLength, 0);
    assert.ok(new SharedArena(128).buffer instanceof SharedArrayBuffer);
  });

  it('allocates 64-byte aligned views of the requested length, without overlap', () => {
    const arena = new SharedArena(4096);
    const views = [1, 63, 64, 65, 200, 7].map((n) => arena.alloc(n));
    assert.deepEqual(views.map((v) => v.byteLength), [1, 63, 64, 65, 200, 7]);
    assert.deepEqual(views.map((v) => v.byteOffset), [0, 64, 128, 192, 320, 576]);
    for (const v of views) {
      assert.equal(v.byteOffset % 64, 0);
      assert.equal(v.buffer, arena.buffer);
      assert.equal(arena.owns(v), true);
    }
    assert.equal(arena.bytesInUse, 640);
  });

  it('allocArray gives a typed array over the arena', () => {
    const arena = new SharedArena(4096);
    arena.alloc(10);
    const floats = arena.allocArray(Float32Array, 100);
    assert.ok(floats instanceof Float32Array);
    assert.equal(floats.length, 100);
    assert.equal(floats.buffer, arena.buffer);
    assert.equal(floats.byteOffset, 64);
    assert.equal(arena.bytesInUse, 64 + 448);
    floats[99] = 1.5;
    assert.equal(new Float32Array(arena.buffer, 64, 100)[99], 1.5);
    arena.free(floats);
    assert.equal(arena.bytesInUse, 64);
  });

  it('rejects a non-positive or non-integer size', () => {
    const arena = new SharedArena(4096);
    for (const n of [0, -1, 1.5, NaN, Infinity]) assert.throws(() => arena.alloc(n), invalid(/byteLength must be a positive integer/));
  });

  it('reports exhaustion with sizes and what to do', () => {
    const arena = new SharedArena(256);
    arena.alloc(100);
    assert.throws(() => arena.alloc(129), (error: unknown) => {
      invalid(/^the shared arena has no free block of 192 bytes \(128 of 256 in use\); free unused views or raise arenaBytes$/)(error);
      assert.deepEqual((error as CaphostError).details, { requested: 129, inUse: 128, arenaBytes: 256 });
      return true;
    });
    assert.equal(arena.alloc(128).byteOffset, 128);
    assert.throws(() => arena.alloc(1), invalid(/no free block of 64 bytes \(256 of 256 in use\)/));
  });

  it('rejects a double free and a foreign view', () => {
    const arena = new SharedArena(1024);
    const view = arena.alloc(64);
    arena.free(view);
    assert.throws(() => arena.free(view), invalid(/does not start a live block/));
    const other = new SharedArena(1024);
    assert.throws(() => arena.free(other.alloc(64)), invalid(/does not start a live block/));
    assert.throws(() => arena.free(new Uint8Array(64)), invalid(/does not start a live block/));
    // A view into the middle of a live block does not free it.
    const block = arena.alloc(256);
    assert.throws(() => arena.free(new Uint8Array(arena.buffer, block.byteOffset + 64, 8)), invalid(/does not start a live block/));
    assert.equal(arena.bytesInUse, 256);
  });

  it('reuses freed space first-fit', () => {
    const arena = new SharedArena(1024);
    const a = arena.alloc(128);
    arena.alloc(64);
    arena.free(a);
    assert.equal(arena.alloc(64).byteOffset, 0);
    assert.equal(arena.alloc(64).byteOffset, 64);
    assert.equal(arena.alloc(64).byteOffset, 192);
  });

  it('coalesces: alloc all, free in random order, then the whole size is one block again (seeded)', () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const random = mulberry32(seed);
      const arena = new SharedArena(64 * 500);
      const views: Uint8Array[] = [];
      for (;;) {
        const size = 1 + Math.floor(random() * 64 * 6);
        try {
          views.push(arena.alloc(size));
        } catch {
          break;
        }
      }
      // Fill the rest with single lines so the arena is exactly full.
      for (;;) {
        try {
          views.push(arena.alloc(64));
        } catch {
          break;
        }
      }
      assert.equal(arena.bytesInUse, arena.byteLength, `seed ${seed}`);
      for (const view of shuffle(views, random)) arena.free(view);
      assert.equal(arena.bytesInUse, 0);
      const whole = arena.alloc(arena.byteLength);
      assert.equal(whole.byteOffset, 0);
      assert.equal(whole.byteLength, arena.byteLength);
    }
  });

  it('coalesces under random interleaved alloc/free, matching a byte-map model (seeded)', () => {
    const random = mulberry32(99);
    const arena = new SharedArena(64 * 256);
    const owner = new Int32Array(256).fill(-1);
    const live = new Map<number, Uint8Array>();
    let id = 0;
    for (let step = 0; step < 5000; step++) {
      if (random() < 0.55) {
        const size = 1 + Math.floor(random() * 64 * 8);
        const lines = Math.ceil(size / 64);
        // Model: first-fit over free lines.
        let expected = -1;
        for (let i = 0, run = 0; i < 256; i++) {
          run = owner[i] === -1 ? run + 1 : 0;
          if (run === lines) {
            expected = i - lines + 1;
            break;
          }
        }
        if (expected < 0) {
          assert.throws(() => arena.alloc(size), { code: ErrorCode.INVALID_ARGUMENT }, `step ${step}`);
          continue;
        }
        const view = arena.alloc(size);
        assert.equal(view.byteOffset, expected * 64, `step ${step}`);
        owner.fill(id, expected, expected + lines);
        live.set(id++, view);
      } else if (live.size > 0) {
        const keys = [...live.keys()];
        const key = keys[Math.floor(random() * keys.length)]!;
        arena.free(live.get(key)!);
        live.delete(key);
        for (let i = 0; i < 256; i++) if (owner[i] === key) owner[i] = -1;
      }
      assert.equal(arena.bytesInUse, owner.filter((o) => o !== -1).length * 64);
    }
  });
});
