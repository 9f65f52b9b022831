import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Histogram, Registry } from 'prom-client';
import { BucketHistogram } from '../../src/server/bucket-histogram.js';

const BOUNDS = [0.001, 0.01, 0.1, 1];

describe('BucketHistogram', () => {
  it('scrapes to the same text as prom-client\'s Histogram given the same observations', async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const h = new BucketHistogram('x_seconds', 'Help text', 'capability', BOUNDS, ours);
    const p = new Histogram({ name: 'x_seconds', help: 'Help text', labelNames: ['capability'] as const, buckets: BOUNDS, registers: [theirs] });
    const values = [0, 0.001, 0.0011, 0.05, 0.1, 0.5, 1, 3, 1e9];
    for (const [label, scale] of [['a@1', 1], ['b@2', 0.01]] as const) {
      const s = h.seriesFor(label);
      for (const v of values) {
        h.observe(s, v * scale);
        p.labels({ capability: label }).observe(v * scale);
      }
    }
    assert.equal(await ours.metrics(), await theirs.metrics());
  });

  it('counts a value equal to a bound in that bound\'s bucket, and one above every bound in +Inf only', async () => {
    const r = new Registry();
    const h = new BucketHistogram('y', 'y', 'capability', BOUNDS, r);
    const s = h.seriesFor('c');
    h.observe(s, 0.01);
    h.observe(s, 2);
    const text = await r.metrics();
    assert.match(text, /y_bucket\{le="0\.001",capability="c"\} 0\n/);
    assert.match(text, /y_bucket\{le="0\.01",capability="c"\} 1\n/);
    assert.match(text, /y_bucket\{le="1",capability="c"\} 1\n/);
    assert.match(text, /y_bucket\{le="\+Inf",capability="c"\} 2\n/);
    assert.match(text, /y_sum\{capability="c"\} 2\.01\n/);
    assert.match(text, /y_count\{capability="c"\} 2\n?/);
  });

  it('refuses bounds that do not increase', () => {
    assert.throws(() => new BucketHistogram('z', 'z', 'capability', [1, 1], new Registry()), RangeError);
  });
});
