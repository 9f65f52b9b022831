import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ControllerChannel } from '../../src/scheduler/controller-channel.js';
import { type ChannelConfig, Slot, computeLayout } from '../../src/scheduler/ring-layout.js';
import { COMPLETIONS, SlotRing } from '../../src/scheduler/slot-ring.js';

const CONFIG: ChannelConfig = { slots: 4, slotBytes: 128, overflowBytes: 4096 };

describe('ControllerChannel and a malformed completion', () => {
  it('delivers honest completions, then stops at a malformed one and reports it once', () => {
    const layout = computeLayout(CONFIG);
    const sab = new SharedArrayBuffer(layout.totalBytes);
    const seen: number[] = [];
    const corrupt: string[] = [];
    const channel = new ControllerChannel(
      sab,
      layout,
      (message, ch) => {
        seen.push(message.ticket);
        ch.release();
      },
      undefined,
      (reason) => corrupt.push(reason),
    );
    // The worker's side: a producer over the completion ring.
    const worker = new SlotRing(sab, layout, COMPLETIONS(layout));
    assert.equal(worker.write(1, 0, 0, new Uint8Array(4), null), true);
    assert.equal(worker.write(2, 0, 0, new Uint8Array(4), null), true);
    assert.equal(worker.write(3, 0, 0, new Uint8Array(4), null), true);
    // Slot 1 (ticket 2) claims more references than a slot can hold.
    new Uint32Array(sab)[(layout.completionOffset + CONFIG.slotBytes + Slot.REF_COUNT) >> 2] = 1000;
    assert.equal(channel.drain(), 1);
    assert.deepEqual(seen, [1]);
    assert.equal(channel.corrupt, true);
    assert.equal(corrupt.length, 1);
    assert.match(corrupt[0]!, /too many arena references/);
    assert.equal(channel.drain(), 0, 'nothing more is read');
    assert.equal(corrupt.length, 1, 'reported once');
    assert.deepEqual(seen, [1]);
  });
});

describe('ControllerChannel watch', () => {
  /** A Wake whose notifications are lost and whose async waits never settle, timeout or not. */
  const deaf = {
    notified: 0,
    wait(): void {},
    waitAsync(): Promise<unknown> {
      return new Promise(() => {});
    },
    notify(): void {
      this.notified++;
    },
  };

  it('delivers completions whose wake-up was lost, within a few watch periods, and counts the loss', async () => {
    const layout = computeLayout(CONFIG);
    const sab = new SharedArrayBuffer(layout.totalBytes);
    const seen: number[] = [];
    const channel = new ControllerChannel(sab, layout, (message, ch) => {
      seen.push(message.ticket);
      ch.release();
    }, deaf);
    try {
      assert.equal(channel.place(7, 0, 0, new Uint8Array(4), null), true);
      // The pump spins briefly, then parks on a wait that will never settle.
      await new Promise((r) => setTimeout(r, 5));
      const worker = new SlotRing(sab, layout, COMPLETIONS(layout));
      assert.equal(worker.write(7, 0, 0, new Uint8Array(4), null), true);
      const until = Date.now() + 2000;
      while (seen.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
      assert.deepEqual(seen, [7]);
      assert.equal(channel.stalledParks, 1);
      assert.equal(channel.inFlight, 0);
    } finally {
      channel.close();
    }
  });

  it('wakes a worker that sleeps on requests again, once they have waited two looks', async () => {
    const layout = computeLayout(CONFIG);
    const sab = new SharedArrayBuffer(layout.totalBytes);
    const wake = { ...deaf, notified: 0 };
    const channel = new ControllerChannel(sab, layout, (_message, ch) => ch.release(), wake);
    try {
      assert.equal(channel.place(1, 0, 0, new Uint8Array(4), null), true);
      // No worker takes it: the watch sends the wake-up again (its first look only notes the head).
      await new Promise((r) => setTimeout(r, 60));
      assert.ok(channel.workerNudges >= 1, `nudges ${channel.workerNudges}`);
      assert.ok(wake.notified >= 1);
    } finally {
      channel.close();
    }
  });
});
