import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCode, isCaphostError } from '../../../src/errors.js';
import {
  BUILTIN_PROFILES,
  BUILTIN_PROFILE_NAMES,
  DEFAULT_DEVICES,
  resolveProfile,
  type SandboxProfile,
  type SandboxProfileOverrides,
} from '../../../src/isolation/sandbox/sandbox-profile.js';

/** Asserts an INVALID_ARGUMENT whose message and details both name `option`. */
function rejects(fn: () => unknown, option: string, pattern?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(isCaphostError(e, ErrorCode.INVALID_ARGUMENT), `expected INVALID_ARGUMENT, got ${String(e)}`);
    assert.equal(e.details?.option, option);
    assert.ok(e.message.includes(option), `message names ${option}: ${e.message}`);
    if (pattern) assert.match(e.message, pattern);
    return true;
  });
}

const strict = BUILTIN_PROFILES.strict;
const custom = (patch: Record<string, unknown>): SandboxProfile => ({ ...strict, name: 'mine', ...patch }) as SandboxProfile;

describe('built-in profiles', () => {
  it('defaults to strict: no network, Landlock required, EPERM, no exec, three devices', () => {
    const p = resolveProfile();
    assert.equal(p, strict);
    assert.deepEqual(p, {
      name: 'strict',
      filesystem: { readOnly: [], readWrite: { scratch: true, extra: [] } },
      network: 'none',
      devices: ['/dev/null', '/dev/zero', '/dev/urandom'],
      seccomp: { defaultAction: 'errno', errno: 'EPERM', denyExecAfterStart: true },
      landlock: 'required',
    });
    assert.deepEqual(DEFAULT_DEVICES, p.devices);
  });

  it('offers weaker profiles by name only, each still denying exec', () => {
    assert.deepEqual([...BUILTIN_PROFILE_NAMES], ['strict', 'standard', 'landlock-optional', 'permissive']);
    assert.equal(resolveProfile('standard').network, 'unix-only');
    assert.equal(resolveProfile('landlock-optional').landlock, 'best-effort');
    assert.equal(resolveProfile('landlock-optional').network, 'none');
    assert.equal(resolveProfile('permissive').landlock, 'best-effort');
    for (const name of BUILTIN_PROFILE_NAMES) assert.equal(resolveProfile(name).seccomp.denyExecAfterStart, true);
  });

  it('is deeply frozen', () => {
    const p = resolveProfile('strict', { filesystem: { readOnly: ['/opt/models'] } });
    for (const o of [strict, strict.filesystem, strict.filesystem.readOnly, strict.seccomp, strict.devices, p, p.filesystem.readOnly]) {
      assert.ok(Object.isFrozen(o));
    }
  });
});

describe('resolveProfile overrides', () => {
  it('adds paths and devices, and may tighten', () => {
    const p = resolveProfile('standard', {
      filesystem: { readOnly: ['/opt/models', '/opt/models'], readWrite: { extra: ['/srv/cache'] } },
      devices: ['/dev/null'],
      network: 'none',
      seccomp: { defaultAction: 'kill', errno: 'EACCES' },
    });
    assert.equal(p.name, 'standard');
    assert.deepEqual(p.filesystem.readOnly, ['/opt/models']);
    assert.deepEqual(p.filesystem.readWrite.extra, ['/srv/cache']);
    assert.deepEqual(p.devices, ['/dev/null']);
    assert.equal(p.network, 'none');
    assert.deepEqual(p.seccomp, { defaultAction: 'kill', errno: 'EACCES', denyExecAfterStart: true });
  });

  it('never loosens a profile; the message says which profile to pick', () => {
    rejects(() => resolveProfile('strict', { network: 'unix-only' }), 'overrides.network', /'standard'/);
    rejects(() => resolveProfile('strict', { landlock: 'best-effort' }), 'overrides.landlock', /'landlock-optional'/);
    rejects(() => resolveProfile('standard', { seccomp: { denyExecAfterStart: false } }), 'overrides.seccomp.denyExecAfterStart');
  });

  it('names the option in every validation error', () => {
    const bad = (o: unknown) => () => resolveProfile('strict', o as SandboxProfileOverrides);
    rejects(bad({ network: 'tcp' }), 'overrides.network', /'none', 'unix-only'/);
    rejects(bad({ netwrok: 'none' }), 'overrides.netwrok', /not a known option/);
    rejects(bad({ seccomp: { defaultAction: 'allow' } }), 'overrides.seccomp.defaultAction');
    rejects(bad({ seccomp: { errno: 'ENOENT' } }), 'overrides.seccomp.errno');
    rejects(bad({ seccomp: { denyExecAfterStart: 'yes' } }), 'overrides.seccomp.denyExecAfterStart');
    rejects(bad({ seccomp: { action: 'kill' } }), 'overrides.seccomp.action');
    rejects(bad({ landlock: 'off' }), 'overrides.landlock');
    rejects(bad({ filesystem: { readOnly: 'opt' } }), 'overrides.filesystem.readOnly', /array/);
    rejects(bad({ filesystem: { readOnly: ['relative/path'] } }), 'overrides.filesystem.readOnly[0]', /absolute/);
    rejects(bad({ filesystem: { readOnly: ['/opt', '/opt/../etc'] } }), 'overrides.filesystem.readOnly[1]', /normalised/);
    rejects(bad({ filesystem: { readOnly: ['/opt/'] } }), 'overrides.filesystem.readOnly[0]', /normalised/);
    rejects(bad({ filesystem: { readOnly: ['/opt/a\u0000b'] } }), 'overrides.filesystem.readOnly[0]', /control characters/);
    rejects(bad({ filesystem: { readOnly: ['/'] } }), 'overrides.filesystem.readOnly[0]', /whole filesystem/);
    rejects(bad({ filesystem: { readWrite: { extra: ['/etc/cron.d'] } } }), 'overrides.filesystem.readWrite.extra[0]', /inside \/etc/);
    rejects(bad({ filesystem: { readWrite: { extra: ['/'] } } }), 'overrides.filesystem.readWrite.extra[0]');
    rejects(bad({ filesystem: { readWrite: { scratch: false } } }), 'overrides.filesystem.readWrite.scratch', /not a known option/);
    rejects(bad({ devices: ['/dev/nvidia0'] }), 'overrides.devices[0]', /GPU/);
    rejects(bad({ devices: ['/dev/dri/renderD128'] }), 'overrides.devices[0]');
    rejects(bad('strict'), 'overrides', /object/);
  });

  it('rejects unknown names and non-profiles', () => {
    rejects(() => resolveProfile('loose' as 'strict'), 'profile', /'strict', 'standard', 'landlock-optional', 'permissive'/);
    rejects(() => resolveProfile(42 as unknown as SandboxProfile), 'profile');
  });
});

describe('custom profiles', () => {
  it('are validated in full and may not take a built-in name', () => {
    const mine = resolveProfile(custom({ network: 'unix-only', landlock: 'best-effort' }));
    assert.equal(mine.name, 'mine');
    rejects(() => resolveProfile({ ...strict }), 'profile.name', /reserved/);
    rejects(() => resolveProfile(custom({ name: 'has space' })), 'profile.name');
    rejects(() => resolveProfile(custom({ seccomp: undefined })), 'profile.seccomp', /object/);
    rejects(() => resolveProfile(custom({ filesystem: { readOnly: [], readWrite: { scratch: false, extra: [] } } })), 'profile.filesystem.readWrite.scratch');
    rejects(() => resolveProfile(custom({ extra: 1 })), 'profile.extra');
  });
});
