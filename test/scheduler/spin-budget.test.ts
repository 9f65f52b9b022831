import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SpinBudget, spinUntil } from '../../src/scheduler/spin-budget.js';

describe('SpinBudget', () => {
  it('starts at the maximum', () => {
    assert.equal(new SpinBudget(10, 200).us, 200);
  });

  it('halves on each gap beyond the maximum, down to the minimum', () => {
    const b = new SpinBudget(10, 200);
    const seen: number[] = [];
    for (let i = 0; i < 7; i++) {
      b.observe(201);
      seen.push(b.us);
    }
    assert.deepEqual(seen, [100, 50, 25, 12.5, 10, 10, 10]);
  });

  it('grows to cover a gap within the maximum (twice the gap plus the minimum), capped at the maximum', () => {
    const b = new SpinBudget(10, 200);
    b.observe(1000);
    b.observe(1000);
    b.observe(1000);
    assert.equal(b.us, 25);
    b.observe(20); // 2 * 20 + 10 = 50
    assert.equal(b.us, 50);
    b.observe(5); // 20 < 50: never shrinks on a covered gap
    assert.equal(b.us, 50);
    b.observe(80); // 170
    assert.equal(b.us, 170);
    b.observe(150); // 310, capped
    assert.equal(b.us, 200);
    b.observe(200); // exactly the maximum still counts as covered
    assert.equal(b.us, 200);
  });

  it('stays within [min, max] under any sequence', () => {
    const b = new SpinBudget(5, 100);
    for (let i = 0; i < 1000; i++) {
      b.observe((i * 37) % 250);
      assert.ok(b.us >= 5 && b.us <= 100, `${b.us}`);
    }
  });
});

describe('spinUntil', () => {
  it('returns true at once when already ready, even with no budget', () => {
    assert.equal(spinUntil(() => true, 0), true);
    assert.equal(spinUntil(() => true, -5), true);
  });

  it('returns false at once with no budget when not ready', () => {
    let polls = 0;
    assert.equal(spinUntil(() => (polls++, false), 0), false);
    assert.equal(polls, 1);
  });

  it('returns true as soon as ready() turns true', () => {
    let polls = 0;
    const start = performance.now();
    assert.equal(spinUntil(() => ++polls >= 1000, 5_000_000), true);
    assert.equal(polls, 1000);
    assert.ok(performance.now() - start < 1000);
  });

  it('returns false only after the budget has passed', () => {
    const start = performance.now();
    assert.equal(spinUntil(() => false, 20_000), false);
    const ms = performance.now() - start;
    assert.ok(ms >= 20, `spun ${ms} ms`);
    assert.ok(ms < 500, `spun ${ms} ms`);
  });

  it('reports a ready() that turned true on the last check', () => {
    const end = performance.now() + 5;
    assert.equal(spinUntil(() => performance.now() >= end, 5000), true);
  });

  it('with yields, still returns as soon as ready() turns true, and only after the budget when it never does', () => {
    let polls = 0;
    assert.equal(spinUntil(() => ++polls >= 100_000, 5_000_000, 20), true);
    assert.equal(polls, 100_000);
    const start = performance.now();
    assert.equal(spinUntil(() => false, 20_000, 20), false);
    const ms = performance.now() - start;
    assert.ok(ms >= 20 && ms < 500, `spun ${ms} ms`);
  });
});
