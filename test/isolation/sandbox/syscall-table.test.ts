import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { SYSCALLS, syscallName, type SyscallName } from '../../../src/isolation/sandbox/syscall-table.js';

/** `#define __NR_name 123` (and asm-generic's `__NR3264_name`) from a uapi header. */
function parseHeader(file: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of readFileSync(file, 'utf8').matchAll(/^#define __NR(?:3264)?_(\w+)\s+(\d+)\s*$/gm)) {
    if (!out.has(m[1]!)) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

const X86_HEADER = '/usr/include/x86_64-linux-gnu/asm/unistd_64.h';
// arm64 uses the generic table; on an x86_64 host it is still installed with the kernel headers.
const GENERIC_HEADER = ['/usr/include/asm-generic/unistd.h', '/usr/include/aarch64-linux-gnu/asm/unistd.h'].find(existsSync);

/**
 * Calls newer than the uapi headers some distributions still ship: fchmodat2 (Linux 6.6) and
 * setxattrat/removexattrat (6.13). They use the shared numbering from 424 on, the same on every
 * architecture; a header that has them must agree, one that lacks them is not a mismatch.
 */
const NEWER_THAN_SOME_HEADERS: ReadonlySet<string> = new Set(['fchmodat2', 'setxattrat', 'removexattrat']);

describe('syscall table', () => {
  it('gives the calls newer than the installed headers their shared numbers', () => {
    assert.deepEqual(SYSCALLS.fchmodat2, { x86_64: 452, aarch64: 452 });
    assert.deepEqual(SYSCALLS.setxattrat, { x86_64: 463, aarch64: 463 });
    assert.deepEqual(SYSCALLS.removexattrat, { x86_64: 466, aarch64: 466 });
  });

  it('has no duplicate numbers within an architecture', () => {
    for (const arch of ['x86_64', 'aarch64'] as const) {
      const nrs = Object.values(SYSCALLS).map((n) => n[arch]).filter((n) => n !== null);
      assert.equal(new Set(nrs).size, nrs.length, arch);
    }
    assert.equal(syscallName(59, 'x86_64'), 'execve');
    assert.equal(syscallName(221, 'aarch64'), 'execve');
  });

  it('matches the x86_64 uapi header', { skip: existsSync(X86_HEADER) ? false : `${X86_HEADER} not installed` }, () => {
    const header = parseHeader(X86_HEADER);
    for (const name of Object.keys(SYSCALLS) as SyscallName[]) {
      if (!header.has(name) && NEWER_THAN_SOME_HEADERS.has(name)) continue;
      assert.equal(SYSCALLS[name].x86_64, header.get(name) ?? null, name);
    }
  });

  it('matches the generic (aarch64) uapi header', { skip: GENERIC_HEADER ? false : 'no asm-generic/unistd.h installed' }, () => {
    const header = parseHeader(GENERIC_HEADER!);
    for (const name of Object.keys(SYSCALLS) as SyscallName[]) {
      if (!header.has(name) && NEWER_THAN_SOME_HEADERS.has(name)) continue;
      // The generic header also defines calls arm64 leaves out behind __ARCH_WANT_*; none of ours are.
      assert.equal(SYSCALLS[name].aarch64, header.get(name) ?? null, name);
    }
  });
});
