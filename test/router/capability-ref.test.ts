import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CaphostError, ErrorCode } from '../../src/errors.js';
import {
  type CapabilityId,
  formatCapabilityId,
  formatCapabilityRequest,
  parseCapabilityId,
  parseCapabilityRequest,
  satisfies,
} from '../../src/router/capability-ref.js';

const id = (name: string, major: number, minor: number): CapabilityId => ({ name, major, minor });

/** Asserts `fn` throws INVALID_ARGUMENT whose message names the ref and contains `why`. */
function assertInvalid(fn: () => unknown, ref: string, why: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof CaphostError, `expected CaphostError, got ${String(error)}`);
    assert.equal(error.code, ErrorCode.INVALID_ARGUMENT);
    assert.ok(error.message.includes(`"${ref}"`), `message should name ${ref}: ${error.message}`);
    assert.match(error.message, why);
    assert.deepEqual(error.details, { capability: ref });
    return true;
  });
}

describe('parseCapabilityRequest', () => {
  it('parses name@major as any minor', () => {
    assert.deepEqual(parseCapabilityRequest('echo.bytes@1'), { name: 'echo.bytes', major: 1, minor: undefined });
  });

  it('parses name@major.minor', () => {
    assert.deepEqual(parseCapabilityRequest('echo.bytes@1.2'), { name: 'echo.bytes', major: 1, minor: 2 });
    assert.deepEqual(parseCapabilityRequest('embed.text@0.0'), { name: 'embed.text', major: 0, minor: 0 });
  });

  it('parses a bare name with no version', () => {
    assert.deepEqual(parseCapabilityRequest('echo.bytes'), { name: 'echo.bytes', major: undefined, minor: undefined });
    assert.deepEqual(parseCapabilityRequest('Echo_x-y.b-2'), { name: 'Echo_x-y.b-2', major: undefined, minor: undefined });
  });

  it('accepts versions up to nine digits', () => {
    assert.deepEqual(parseCapabilityRequest('a@999999999.123456789'), { name: 'a', major: 999999999, minor: 123456789 });
  });

  it('rejects bad names with INVALID_ARGUMENT naming the problem', () => {
    for (const ref of ['', '@1', '1echo@1', 'echo..bytes@1', 'echo.@1', '.echo@1', 'echo bytes@1', 'échо@1']) {
      assertInvalid(() => parseCapabilityRequest(ref), ref, /the name must be dot-separated words/);
    }
  });

  it('rejects bad versions with INVALID_ARGUMENT naming the problem', () => {
    for (const ref of ['echo@', 'echo@x', 'echo@1.', 'echo@.1', 'echo@01', 'echo@1.02', 'echo@1.2.3', 'echo@-1', 'echo@1@2', 'echo@1234567890', 'echo@ 1']) {
      assertInvalid(() => parseCapabilityRequest(ref), ref, /the version must be major or major\.minor/);
    }
  });

  it('rejects a non-string with INVALID_ARGUMENT', () => {
    assertInvalid(() => parseCapabilityRequest(42 as unknown as string), '42', /it must be a string/);
    assertInvalid(() => parseCapabilityRequest(undefined as unknown as string), 'undefined', /it must be a string/);
  });

  it('says how to write a valid ref', () => {
    assert.throws(() => parseCapabilityRequest('echo@x'), /write it as name@major or name@major\.minor/);
  });
});

describe('parseCapabilityId', () => {
  it('parses name@major.minor', () => {
    assert.deepEqual(parseCapabilityId('echo.bytes@1.2'), { name: 'echo.bytes', major: 1, minor: 2 });
  });

  it('requires both major and minor', () => {
    assertInvalid(() => parseCapabilityId('echo.bytes@1'), 'echo.bytes@1', /a provided capability must state major\.minor/);
    assertInvalid(() => parseCapabilityId('echo.bytes'), 'echo.bytes', /a provided capability must state major\.minor/);
  });

  it('passes through request syntax errors', () => {
    assertInvalid(() => parseCapabilityId('echo@1.x'), 'echo@1.x', /the version must be/);
  });
});

describe('formatCapabilityId / formatCapabilityRequest', () => {
  it('round-trips through the parsers', () => {
    for (const text of ['echo.bytes@1.2', 'a@0.0', 'x-y_z.q@10.20']) assert.equal(formatCapabilityId(parseCapabilityId(text)), text);
    for (const text of ['echo.bytes', 'echo.bytes@3', 'echo.bytes@3.4']) assert.equal(formatCapabilityRequest(parseCapabilityRequest(text)), text);
  });
});

describe('satisfies', () => {
  it('name@1 matches any 1.x and no other major', () => {
    const request = parseCapabilityRequest('echo.bytes@1');
    for (const minor of [0, 1, 2, 9, 100]) assert.equal(satisfies(id('echo.bytes', 1, minor), request), true, `1.${minor}`);
    assert.equal(satisfies(id('echo.bytes', 0, 9), request), false);
    assert.equal(satisfies(id('echo.bytes', 2, 0), request), false);
  });

  it('name@1.2 needs 1.2 or later within major 1', () => {
    const request = parseCapabilityRequest('echo.bytes@1.2');
    assert.equal(satisfies(id('echo.bytes', 1, 0), request), false);
    assert.equal(satisfies(id('echo.bytes', 1, 1), request), false);
    assert.equal(satisfies(id('echo.bytes', 1, 2), request), true);
    assert.equal(satisfies(id('echo.bytes', 1, 3), request), true);
    assert.equal(satisfies(id('echo.bytes', 1, 42), request), true);
    assert.equal(satisfies(id('echo.bytes', 2, 5), request), false);
    assert.equal(satisfies(id('echo.bytes', 0, 5), request), false);
  });

  it('name@1.0 matches every 1.x', () => {
    const request = parseCapabilityRequest('echo.bytes@1.0');
    assert.equal(satisfies(id('echo.bytes', 1, 0), request), true);
    assert.equal(satisfies(id('echo.bytes', 1, 7), request), true);
  });

  it('a bare name matches any version of that name', () => {
    const request = parseCapabilityRequest('echo.bytes');
    for (const [major, minor] of [[0, 0], [1, 2], [7, 3]] as const) assert.equal(satisfies(id('echo.bytes', major, minor), request), true);
  });

  it('never matches a different name, even a prefix or suffix', () => {
    for (const text of ['echo.bytes', 'echo.bytes@1', 'echo.bytes@1.0']) {
      const request = parseCapabilityRequest(text);
      assert.equal(satisfies(id('echo', 1, 0), request), false);
      assert.equal(satisfies(id('echo.bytes2', 1, 0), request), false);
      assert.equal(satisfies(id('ECHO.BYTES', 1, 0), request), false);
    }
  });
});
