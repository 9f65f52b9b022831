import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type CapabilityRequest, parseCapabilityRequest, satisfies } from '../../src/router/capability-ref.js';
import { type RouteEntry, candidatesFor, pickRoute, resolveRoute } from '../../src/router/route-table.js';
import { mulberry32 } from '../support/prng.js';


const entry = (provider: number, name: string, major: number, minor: number, remote = false): RouteEntry => ({
  provider,
  capability: { name, major, minor },
  remote,
});

const loadsOf = (map: Record<number, number>) => (provider: number): number => map[provider] ?? 0;
const req = (text: string): CapabilityRequest => parseCapabilityRequest(text);

describe('resolveRoute', () => {
  it('prefers a local provider over a remote one, even a remote with a higher minor and lower load', () => {
    const table = [entry(1, 'e', 1, 9, true), entry(2, 'e', 1, 0, false)];
    assert.equal(resolveRoute(table, req('e@1'), loadsOf({ 1: 0, 2: 100 }))?.provider, 2);
  });

  it('prefers the highest minor within a locality, whatever the load', () => {
    const table = [entry(1, 'e', 1, 1), entry(2, 'e', 1, 3), entry(3, 'e', 1, 2)];
    assert.equal(resolveRoute(table, req('e@1'), loadsOf({ 1: 0, 2: 50, 3: 0 }))?.provider, 2);
  });

  it('picks the least loaded within a tier', () => {
    const table = [entry(1, 'e', 1, 0), entry(2, 'e', 1, 0), entry(3, 'e', 1, 0)];
    assert.equal(resolveRoute(table, req('e@1'), loadsOf({ 1: 5, 2: 2, 3: 4 }))?.provider, 2);
  });

  it('breaks load ties to the lowest provider id, whatever the table order', () => {
    const table = [entry(9, 'e', 1, 0), entry(4, 'e', 1, 0), entry(7, 'e', 1, 0), entry(5, 'e', 1, 0)];
    assert.equal(resolveRoute(table, req('e@1'), loadsOf({ 9: 1, 4: 3, 7: 1, 5: 1 }))?.provider, 5);
    assert.equal(resolveRoute([...table].reverse(), req('e@1'), loadsOf({ 9: 1, 4: 3, 7: 1, 5: 1 }))?.provider, 5);
  });

  it('skips providers at Infinity and falls through to the next tier', () => {
    const table = [entry(1, 'e', 1, 2), entry(2, 'e', 1, 2), entry(3, 'e', 1, 1), entry(4, 'e', 1, 1, true)];
    assert.equal(resolveRoute(table, req('e@1'), loadsOf({ 1: Infinity, 2: 3 }))?.provider, 2);
    assert.equal(resolveRoute(table, req('e@1'), loadsOf({ 1: Infinity, 2: Infinity, 3: 9 }))?.provider, 3);
    assert.equal(resolveRoute(table, req('e@1'), loadsOf({ 1: Infinity, 2: Infinity, 3: Infinity, 4: 99 }))?.provider, 4);
  });

  it('returns undefined when every candidate is at Infinity', () => {
    const table = [entry(1, 'e', 1, 2), entry(2, 'e', 1, 1, true)];
    assert.equal(resolveRoute(table, req('e@1'), () => Infinity), undefined);
  });

  it('returns undefined when nothing matches', () => {
    assert.equal(resolveRoute([entry(1, 'e', 1, 0)], req('e@2'), () => 0), undefined);
    assert.equal(resolveRoute([entry(1, 'e', 1, 0)], req('e@1.1'), () => 0), undefined);
    assert.equal(resolveRoute([entry(1, 'e', 1, 0)], req('other'), () => 0), undefined);
    assert.equal(resolveRoute([], req('e'), () => 0), undefined);
  });

  it('respects a minimum minor', () => {
    const table = [entry(1, 'e', 1, 1), entry(2, 'e', 1, 2, true)];
    assert.equal(resolveRoute(table, req('e@1.2'), () => 0)?.provider, 2);
    assert.equal(resolveRoute(table, req('e@1.1'), () => 0)?.provider, 1);
  });

  it('a bare name takes the highest major, even if only remote or loaded', () => {
    const table = [entry(1, 'e', 1, 5), entry(2, 'e', 2, 0, true), entry(3, 'e', 3, 0, true), entry(4, 'e', 3, 1, true), entry(5, 'other', 9, 0)];
    assert.equal(resolveRoute(table, req('e'), loadsOf({ 3: 0, 4: 100 }))?.provider, 4);
    // The highest major at Infinity does not fall back to a lower major.
    assert.equal(resolveRoute(table, req('e'), loadsOf({ 3: Infinity, 4: Infinity })), undefined);
  });

  it('does not read loads of providers that cannot serve the request (pure: only the loads function is consulted)', () => {
    const table = [entry(1, 'e', 1, 0), entry(2, 'f', 1, 0)];
    const asked: number[] = [];
    resolveRoute(table, req('e@1'), (p) => {
      asked.push(p);
      return 0;
    });
    assert.deepEqual(asked, [1]);
  });

  it('does not mutate the table', () => {
    const table = [entry(3, 'e', 1, 0, true), entry(2, 'e', 1, 1), entry(1, 'e', 1, 0)];
    const copy = JSON.stringify(table);
    resolveRoute(table, req('e@1'), () => 0);
    assert.equal(JSON.stringify(table), copy);
  });
});

describe('candidatesFor / pickRoute', () => {
  it('orders candidates local first, then highest minor, then lowest id', () => {
    const table = [entry(5, 'e', 1, 0, true), entry(4, 'e', 1, 1), entry(3, 'e', 1, 0), entry(2, 'e', 1, 1, true), entry(1, 'e', 1, 1)];
    assert.deepEqual(candidatesFor(table, req('e@1')).map((e) => e.provider), [1, 4, 3, 2, 5]);
  });

  it('pickRoute on an empty list is undefined', () => {
    assert.equal(pickRoute([], () => 0), undefined);
  });
});

/** Tier rank: lower is better. */
const tierKey = (e: RouteEntry): [number, number] => [e.remote ? 1 : 0, -e.capability.minor];
const better = (a: RouteEntry, b: RouteEntry): boolean => {
  const [ar, am] = tierKey(a);
  const [br, bm] = tierKey(b);
  return ar !== br ? ar < br : am < bm;
};
const sameTier = (a: RouteEntry, b: RouteEntry): boolean => a.remote === b.remote && a.capability.minor === b.capability.minor;

describe('resolveRoute (property: random tables, seeded)', () => {
  it('chooses a satisfying entry, from the best eligible tier, with minimal load and lowest id; deterministic', () => {
    const random = mulberry32(0xc0ffee);
    const int = (n: number): number => Math.floor(random() * n);
    let chosenCount = 0;
    let undefinedCount = 0;
    for (let iteration = 0; iteration < 2000; iteration++) {
      const names = ['a', 'b'];
      const size = int(12);
      const ids = new Set<number>();
      const table: RouteEntry[] = [];
      for (let i = 0; i < size; i++) {
        let provider = int(1000);
        while (ids.has(provider)) provider = int(1000);
        ids.add(provider);
        table.push(entry(provider, names[int(2)]!, int(3), int(4), random() < 0.4));
      }
      const loadMap = new Map<number, number>();
      for (const p of ids) loadMap.set(p, random() < 0.2 ? Infinity : int(4));
      const loads = (p: number): number => loadMap.get(p)!;
      const major = random() < 0.25 ? undefined : int(3);
      const minor = major === undefined || random() < 0.5 ? undefined : int(4);
      const request: CapabilityRequest = { name: names[int(2)]!, major, minor };

      const chosen = resolveRoute(table, request, loads);
      // Same inputs, same output (also with a shuffled copy of the table).
      assert.equal(resolveRoute(table, request, loads), chosen);
      const shuffled = [...table].sort(() => random() - 0.5);
      assert.equal(resolveRoute(shuffled, request, loads), chosen);

      let eligible = table.filter((e) => satisfies(e.capability, request));
      if (request.major === undefined && eligible.length > 0) {
        const top = Math.max(...eligible.map((e) => e.capability.major));
        eligible = eligible.filter((e) => e.capability.major === top);
      }
      const finite = eligible.filter((e) => loads(e.provider) !== Infinity);
      const context = JSON.stringify({ iteration, table, request, loads: [...loadMap] });
      if (chosen === undefined) {
        undefinedCount++;
        assert.equal(finite.length, 0, `undefined although a provider could take the call: ${context}`);
        continue;
      }
      chosenCount++;
      assert.ok(table.includes(chosen), context);
      assert.ok(satisfies(chosen.capability, request), `chosen does not satisfy: ${context}`);
      assert.ok(eligible.includes(chosen), `chosen not of the top major: ${context}`);
      assert.notEqual(loads(chosen.provider), Infinity, context);
      for (const other of finite) {
        assert.ok(!better(other, chosen), `provider ${other.provider} is in a better tier: ${context}`);
        if (sameTier(other, chosen)) {
          const lo = loads(other.provider);
          const lc = loads(chosen.provider);
          assert.ok(lc < lo || (lc === lo && chosen.provider <= other.provider), `provider ${other.provider} beats it in its tier: ${context}`);
        }
      }
    }
    // The generator exercised both outcomes.
    assert.ok(chosenCount > 500 && undefinedCount > 100, `${chosenCount} chosen, ${undefinedCount} undefined`);
  });
});
