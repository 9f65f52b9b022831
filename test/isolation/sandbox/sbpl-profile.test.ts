import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCode, isCaphostError } from '../../../src/errors.js';
import { resolveProfile, type SandboxProfile } from '../../../src/isolation/sandbox/sandbox-profile.js';
import { compileSbplProfile, quoteSbplString, type SbplOptions } from '../../../src/isolation/sandbox/sbpl-profile.js';

const options: SbplOptions = {
  scratchDir: '/var/folders/ab/xyz/T/caphost-w1',
  moduleDir: '/Users/dev/app/workers/embed',
  nodeBinary: '/opt/homebrew/Cellar/node/20.19.0/bin/node',
  libraryDirs: ['/opt/homebrew/lib'],
  extraReadOnly: ['/Users/dev/models'],
};
const strictText = compileSbplProfile(resolveProfile('strict'), options);
const invalid = (option: string) => (e: unknown) => isCaphostError(e, ErrorCode.INVALID_ARGUMENT) && e.details?.option === option;

/** The s-expressions of the text, comments removed, one rule per entry. */
function rules(text: string): string[] {
  return text
    .split('\n')
    .filter((l) => !l.startsWith(';;'))
    .join('\n')
    .split(/\n(?=\()/)
    .map((r) => r.trim())
    .filter(Boolean);
}

describe('compileSbplProfile', () => {
  it('starts with version 1 and deny default', () => {
    assert.deepEqual(rules(strictText).slice(0, 2), ['(version 1)', '(deny default)']);
  });

  it('has no network allow and denies network, IOKit and fork', () => {
    assert.doesNotMatch(strictText, /\(allow[^)]*network/);
    assert.doesNotMatch(strictText, /\(allow system-socket/);
    for (const r of ['(deny network*)', '(deny iokit-open)', '(deny process-fork)']) assert.ok(rules(strictText).includes(r), r);
    assert.doesNotMatch(strictText, /\(allow[^)]*(iokit|process-fork)/);
  });

  it("allows AF_UNIX outbound only under 'unix-only'", () => {
    const text = compileSbplProfile(resolveProfile('standard'), options);
    assert.ok(text.includes('(allow system-socket (socket-domain AF_UNIX))'));
    assert.ok(text.includes('(allow network-outbound (remote unix-socket'));
    assert.doesNotMatch(text, /network-bind|network-inbound|remote ip|remote tcp/);
  });

  it('writes only to the scratch folder (resolved through /private)', () => {
    const writes = rules(strictText).filter((r) => r.includes('file-write*'));
    assert.deepEqual(writes, ['(allow file-read* file-write*\n  (subpath "/private/var/folders/ab/xyz/T/caphost-w1"))']);
    const writeData = rules(strictText).filter((r) => r.includes('file-write-data'));
    assert.equal(writeData.length, 1);
    assert.doesNotMatch(writeData[0]!, /subpath/, 'device writes are literals, never subtrees');
  });

  it('reads the module, node, its libraries and the extra read-only paths; maps code only from library dirs', () => {
    assert.ok(strictText.includes('(subpath "/Users/dev/app/workers/embed")'));
    assert.ok(strictText.includes('(subpath "/Users/dev/models")'));
    assert.ok(strictText.includes('(allow process-exec (literal "/opt/homebrew/Cellar/node/20.19.0/bin/node"))'));
    const mapRule = rules(strictText).find((r) => r.includes('file-map-executable'))!;
    assert.ok(mapRule.includes('(subpath "/opt/homebrew/lib")'));
    assert.ok(!mapRule.includes('/Users/dev'), 'worker code is never mapped executable');
    assert.ok(strictText.includes('(literal "/Users/dev/app")'), 'ancestor metadata for realpath');
    assert.ok(strictText.includes('(allow sysctl-read)'));
    assert.ok(strictText.includes('(allow signal (target self))'));
    assert.match(strictText, /\(allow mach-lookup\n {2}\(global-name "com\.apple\.system\.notification_center"\)\)/);
  });

  it('never emits an allow without a filter', () => {
    const noDevices = resolveProfile('strict', { devices: [] });
    for (const text of [strictText, compileSbplProfile(noDevices, options)]) {
      // sysctl-read is the one deliberate unfiltered allow (read-only facts about the machine).
      const bare = rules(text).filter((r) => /^\(allow [a-z*\- ]+\)$/.test(r));
      assert.deepEqual(bare, ['(allow sysctl-read)']);
    }
  });

  it('escapes quotes and backslashes in paths', () => {
    const text = compileSbplProfile(resolveProfile('strict'), { ...options, scratchDir: '/tmp/we"ird\\name' });
    assert.ok(text.includes('(subpath "/private/tmp/we\\"ird\\\\name")'));
    assert.equal(quoteSbplString('a"b\\c'), '"a\\"b\\\\c"');
  });

  it('rejects NUL and other control characters, relative and unnormalised paths, naming the option', () => {
    assert.throws(() => compileSbplProfile(resolveProfile('strict'), { ...options, scratchDir: '/tmp/a\u0000b' }), invalid('options.scratchDir'));
    assert.throws(() => compileSbplProfile(resolveProfile('strict'), { ...options, moduleDir: '/x\ny' }), invalid('options.moduleDir'));
    assert.throws(() => compileSbplProfile(resolveProfile('strict'), { ...options, nodeBinary: 'node' }), invalid('options.nodeBinary'));
    assert.throws(() => compileSbplProfile(resolveProfile('strict'), { ...options, extraReadOnly: ['/a/../b'] }), invalid('options.extraReadOnly[0]'));
    assert.throws(() => compileSbplProfile(resolveProfile('strict'), { ...options, scratchDir: '/' }), invalid('options.scratchDir'));
    assert.throws(() => quoteSbplString('a\u0000'), /control characters/);
    const bad = { ...resolveProfile('strict'), name: 'x', network: 'all' } as unknown as SandboxProfile;
    assert.throws(() => compileSbplProfile(bad, options), invalid('profile.network'));
  });

  it('is balanced and deterministic', () => {
    let depth = 0;
    let inString = false;
    for (let i = 0; i < strictText.length; i++) {
      const c = strictText[i];
      if (inString) {
        if (c === '\\') i++;
        else if (c === '"') inString = false;
      } else if (c === ';' && strictText[i + 1] === ';') {
        i = strictText.indexOf('\n', i);
      } else if (c === '"') inString = true;
      else if (c === '(') depth++;
      else if (c === ')') assert.ok(--depth >= 0);
    }
    assert.equal(depth, 0);
    assert.equal(compileSbplProfile(resolveProfile('strict'), options), strictText);
  });
});
