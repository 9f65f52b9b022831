import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { batchPolicyProblem, normaliseBatchPolicy } from '../../src/router/batch-policy.js';
import { decideBatch } from '../../src/scheduler/decide-batch.js';

const policy = (maxSize: number, maxQueueDelayUs: number, preferredSizes: number[] = []) => normaliseBatchPolicy({ maxSize, maxQueueDelayUs, preferredSizes });

describe('decideBatch (Triton dynamic batcher rule)', () => {
  it('without a delay sends what is queued, up to maxSize', () => {
    const p = policy(8, 0);
    assert.deepEqual(decideBatch(p, 1, 0, 256), { size: 1, waitUs: 0 });
    assert.deepEqual(decideBatch(p, 5, 0, 256), { size: 5, waitUs: 0 });
    assert.deepEqual(decideBatch(p, 20, 0, 256), { size: 8, waitUs: 0 });
  });

  it('with a delay waits for the oldest call to have waited it, unless maxSize is reached', () => {
    const p = policy(8, 1000);
    assert.deepEqual(decideBatch(p, 3, 200, 256), { size: 0, waitUs: 800 });
    assert.deepEqual(decideBatch(p, 3, 1000, 256), { size: 3, waitUs: 0 });
    assert.deepEqual(decideBatch(p, 3, 5000, 256), { size: 3, waitUs: 0 });
    assert.deepEqual(decideBatch(p, 8, 0, 256), { size: 8, waitUs: 0 });
    assert.deepEqual(decideBatch(p, 11, 0, 256), { size: 8, waitUs: 0 });
  });

  it('sends the largest preferred size the queue fills at once; the largest preferred size caps a batch', () => {
    const p = policy(16, 1000, [2, 4, 8]);
    assert.deepEqual(decideBatch(p, 1, 10, 256), { size: 0, waitUs: 990 });
    assert.deepEqual(decideBatch(p, 3, 10, 256), { size: 2, waitUs: 0 });
    assert.deepEqual(decideBatch(p, 7, 10, 256), { size: 4, waitUs: 0 });
    assert.deepEqual(decideBatch(p, 12, 10, 256), { size: 8, waitUs: 0 });
    // Past the delay, everything queued goes (up to the largest preferred size).
    assert.deepEqual(decideBatch(p, 3, 1000, 256), { size: 3, waitUs: 0 });
    assert.deepEqual(decideBatch(p, 1, 1000, 256), { size: 1, waitUs: 0 });
  });

  it('with preferred sizes and no delay still prefers them (as Triton does)', () => {
    const p = policy(8, 0, [4]);
    assert.deepEqual(decideBatch(p, 5, 0, 256), { size: 4, waitUs: 0 });
    assert.deepEqual(decideBatch(p, 3, 0, 256), { size: 3, waitUs: 0 });
  });

  it('never exceeds the room the replica has', () => {
    assert.deepEqual(decideBatch(policy(8, 0), 8, 0, 3), { size: 3, waitUs: 0 });
    assert.deepEqual(decideBatch(policy(8, 1000, [4, 8]), 8, 0, 5), { size: 4, waitUs: 0 });
    assert.deepEqual(decideBatch(policy(8, 0), 8, 0, 0), { size: 0, waitUs: 0 });
    assert.deepEqual(decideBatch(policy(8, 0), 0, 0, 8), { size: 0, waitUs: 0 });
  });
});

describe('batch policy validation', () => {
  it('accepts a policy and normalises preferred sizes', () => {
    assert.equal(batchPolicyProblem({ maxSize: 8, maxQueueDelayUs: 100 }, 'batch'), undefined);
    assert.deepEqual(policy(8, 100, [8, 2, 4, 2]).preferredSizes, [2, 4, 8]);
  });

  it('names the field that is wrong', () => {
    assert.match(batchPolicyProblem(null, 'batch')!, /^batch must be an object/);
    assert.match(batchPolicyProblem({ maxSize: 0, maxQueueDelayUs: 0 }, 'b')!, /^b\.maxSize must be an integer from 1/);
    assert.match(batchPolicyProblem({ maxSize: 4.5, maxQueueDelayUs: 0 }, 'b')!, /^b\.maxSize/);
    assert.match(batchPolicyProblem({ maxSize: 4, maxQueueDelayUs: -1 }, 'b')!, /^b\.maxQueueDelayUs/);
    assert.match(batchPolicyProblem({ maxSize: 4, maxQueueDelayUs: 0, preferredSizes: [2, 5] }, 'b')!, /^b\.preferredSizes holds 5/);
    assert.match(batchPolicyProblem({ maxSize: 4, maxQueueDelayUs: 0, preferredSizes: 2 }, 'b')!, /^b\.preferredSizes must be an array/);
  });
});
