/** futexWake over a memfd mapping (an ArrayBuffer, where Atomics.wait cannot park). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadCoreBinding } from '../../src/native/core-binding.js';
import { futexWake, watchedWake } from '../../src/isolation/futex-wake.js';

const core = loadCoreBinding();

function words(): { words: Int32Array; close(): void } {
  const shm = core.createSharedMemory(4096);
  // An offset view: the wake must address words relative to the view, not the mapping.
  return { words: new Int32Array(shm.buffer, 64, 8), close: () => core.closeFd(shm.fd) };
}

test('wait returns at once when the word differs, and after its timeout otherwise', () => {
  const w = words();
  try {
    Atomics.store(w.words, 2, 5);
    let t = performance.now();
    futexWake.wait(w.words, 2, 4);
    assert.ok(performance.now() - t < 50);
    t = performance.now();
    futexWake.wait(w.words, 2, 5, 20);
    assert.ok(performance.now() - t >= 15);
  } finally {
    w.close();
  }
});

test('waitAsync is null when the word already differs, and settles on notify', async () => {
  const w = words();
  try {
    Atomics.store(w.words, 3, 1);
    assert.equal(futexWake.waitAsync(w.words, 3, 0), null);
    const pending = futexWake.waitAsync(w.words, 3, 1);
    assert.ok(pending);
    let settled = false;
    void pending.then(() => (settled = true));
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(settled, false, 'parked while the word is unchanged');
    Atomics.store(w.words, 3, 2);
    // The waiter may not be parked yet; keep notifying until it settles.
    while (!settled) {
      futexWake.notify(w.words, 3);
      await new Promise((r) => setTimeout(r, 1));
    }
  } finally {
    w.close();
  }
});

test('watchedWake bounds every wait and runs its check after each', () => {
  const w = words();
  try {
    let checks = 0;
    const wake = watchedWake(futexWake, 10, () => checks++);
    const t = performance.now();
    wake.wait(w.words, 0, 0);
    assert.ok(performance.now() - t < 1000, 'an unbounded wait became a bounded one');
    assert.equal(checks, 1);
  } finally {
    w.close();
  }
});
