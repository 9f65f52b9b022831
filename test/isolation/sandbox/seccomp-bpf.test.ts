import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isCaphostError, ErrorCode } from '../../../src/errors.js';
import { evaluateSeccomp, disassembleSeccomp, type SeccompVerdict } from '../../../src/isolation/sandbox/bpf-interpreter.js';
import { resolveProfile, type SandboxProfile } from '../../../src/isolation/sandbox/sandbox-profile.js';
import {
  AF_INET,
  AF_INET6,
  AF_NETLINK,
  AF_UNIX,
  AUDIT_ARCH,
  BPF_MAXINSNS,
  CLONE,
  ERRNO,
  SOCK_DGRAM,
  SOCK_SEQPACKET,
  SOCK_STREAM,
  SOCK_FILTER_SIZE,
  TIOCLINUX,
  TIOCSTI,
  X32_SYSCALL_BIT,
} from '../../../src/isolation/sandbox/seccomp-constants.js';
import { compileSeccompProgram, currentSeccompArch, seccompRules } from '../../../src/isolation/sandbox/seccomp-bpf.js';
import { SYSCALLS, type SeccompArch, type SyscallName } from '../../../src/isolation/sandbox/syscall-table.js';

const ARCHES: readonly SeccompArch[] = ['x86_64', 'aarch64'];
const AUDIT: Record<SeccompArch, number> = { x86_64: AUDIT_ARCH.X86_64, aarch64: AUDIT_ARCH.AARCH64 };
const SOCK_NONBLOCK = 0x800;
const SOCK_CLOEXEC = 0x80000;
const THREAD_FLAGS =
  CLONE.VM | CLONE.FS | CLONE.FILES | CLONE.SIGHAND | CLONE.THREAD | CLONE.SYSVSEM | CLONE.SETTLS | CLONE.PARENT_SETTID | CLONE.CHILD_CLEARTID;
const SIGCHLD = 17;

/** Every call the brief names as denied outright (arguments do not matter). */
const DENIED: readonly SyscallName[] = [
  'bind', 'listen', 'execve', 'execveat', 'ptrace', 'process_vm_readv', 'process_vm_writev',
  'io_uring_setup', 'io_uring_enter', 'io_uring_register', 'bpf', 'perf_event_open', 'userfaultfd',
  'unshare', 'setns', 'mount', 'umount2', 'pivot_root', 'chroot', 'open_tree', 'move_mount', 'fsopen',
  'fsconfig', 'fsmount', 'fspick', 'mount_setattr', 'kexec_load', 'kexec_file_load', 'init_module',
  'finit_module', 'delete_module', 'keyctl', 'add_key', 'request_key', 'personality', 'acct', 'swapon',
  'swapoff', 'reboot', 'settimeofday', 'clock_settime', 'iopl', 'ioperm',
  // beyond the brief: same families
  'process_madvise', 'pidfd_getfd', 'open_by_handle_at', 'syslog', 'adjtimex', 'clock_adjtime', 'uselib',
];

/** File metadata calls: Landlock does not mediate them, so the filter denies them all. */
const METADATA: readonly SyscallName[] = [
  'chmod', 'fchmod', 'fchmodat', 'fchmodat2', 'chown', 'fchown', 'lchown', 'fchownat',
  'utime', 'utimes', 'futimesat', 'utimensat',
  'setxattr', 'lsetxattr', 'fsetxattr', 'removexattr', 'lremovexattr', 'fremovexattr', 'setxattrat', 'removexattrat',
];
/** The forms each architecture has (aarch64 has no legacy path-based calls). */
const METADATA_ON: Record<SeccompArch, number> = { x86_64: 20, aarch64: 14 };

const cache = new Map<string, Uint8Array>();
function program(profile: SandboxProfile, arch: SeccompArch): Uint8Array {
  const key = `${JSON.stringify(profile)}/${arch}`;
  let p = cache.get(key);
  if (!p) cache.set(key, (p = compileSeccompProgram(profile, arch)));
  return p;
}

function decide(profile: SandboxProfile, arch: SeccompArch, name: SyscallName, args: readonly (bigint | number)[] = []): SeccompVerdict {
  const nr = SYSCALLS[name][arch];
  assert.notEqual(nr, null, `${name} has no number on ${arch}`);
  return evaluateSeccomp(program(profile, arch), { nr: nr!, arch: AUDIT[arch], args: args.map((a) => BigInt(a)) });
}

const EPERM = { action: 'errno', errno: ERRNO.EPERM } as const;
function assertVerdict(v: SeccompVerdict, expected: { action: string; errno?: number }, what: string): void {
  assert.deepEqual({ action: v.action, errno: v.errno }, { action: expected.action, errno: expected.errno }, what);
}

const strict = resolveProfile('strict');
const standard = resolveProfile('standard');
const killing = resolveProfile('strict', { seccomp: { defaultAction: 'kill' } });
const eacces = resolveProfile('strict', { seccomp: { errno: 'EACCES' } });

for (const arch of ARCHES) {
  describe(`seccomp program (${arch})`, () => {
    it('denies every listed family with EPERM under strict', () => {
      for (const name of DENIED) {
        if (SYSCALLS[name][arch] === null) continue; // iopl/ioperm/uselib exist only on x86_64
        assertVerdict(decide(strict, arch, name, [0, 0, 0]), EPERM, `${name} on ${arch}`);
        assertVerdict(decide(standard, arch, name), EPERM, `${name} on ${arch} (standard)`);
      }
    });

    it('kills on every listed family in the kill variant, and honours EACCES', () => {
      for (const name of DENIED) {
        if (SYSCALLS[name][arch] === null) continue;
        assertVerdict(decide(killing, arch, name), { action: 'kill' }, `${name} on ${arch}`);
        assertVerdict(decide(eacces, arch, name), { action: 'errno', errno: ERRNO.EACCES }, `${name} on ${arch}`);
      }
      assertVerdict(decide(killing, arch, 'socket', [AF_INET, SOCK_STREAM]), { action: 'kill' }, 'socket(AF_INET) in kill mode');
      assertVerdict(decide(killing, arch, 'clone', [CLONE.NEWUSER | SIGCHLD]), { action: 'kill' }, 'clone(NEWUSER) in kill mode');
    });

    it('denies every file metadata change (mode, owner, times, xattrs) with the profile errno', () => {
      const present = METADATA.filter((name) => SYSCALLS[name][arch] !== null);
      assert.equal(present.length, METADATA_ON[arch], `metadata calls numbered on ${arch}`);
      for (const name of present) {
        for (const profile of [strict, standard]) {
          assertVerdict(decide(profile, arch, name, [-100, 0, 0o777, 0]), EPERM, `${name} on ${arch} (${profile.name})`);
        }
        assertVerdict(decide(killing, arch, name), { action: 'kill' }, `${name} on ${arch} (kill)`);
        assertVerdict(decide(eacces, arch, name), { action: 'errno', errno: ERRNO.EACCES }, `${name} on ${arch} (EACCES)`);
        const rule = seccompRules(strict).find((r) => r.syscall === name);
        assert.equal(rule?.decision.kind, 'deny', `${name} has an explicit deny rule`);
      }
      // The numbers that matter most on each arch, spelled out against the kernel tables.
      const expected: Array<[SyscallName, number]> =
        arch === 'x86_64'
          ? [['chmod', 90], ['fchmod', 91], ['fchmodat', 268], ['fchmodat2', 452], ['utimensat', 280], ['utimes', 235], ['fsetxattr', 190], ['setxattrat', 463]]
          : [['fchmod', 52], ['fchmodat', 53], ['fchownat', 54], ['fchown', 55], ['utimensat', 88], ['setxattr', 5], ['fremovexattr', 16], ['removexattrat', 466]];
      for (const [name, nr] of expected) {
        assert.equal(SYSCALLS[name][arch], nr, `${name} number on ${arch}`);
        assertVerdict(evaluateSeccomp(program(strict, arch), { nr, arch: AUDIT[arch] }), EPERM, `nr ${nr} (${name})`);
      }
    });

    it('allows the calls Node lives on', () => {
      const allowed: Array<[SyscallName, (number | bigint)[]]> = [
        ['read', [0, 0, 10]],
        ['write', [1, 0, 10]],
        ['close', [3]],
        ['openat', [-100, 0, 0]],
        ['mmap', [0, 4096, 3, 0x22, -1, 0]],
        ['futex', [0, 0, 1]],
        [arch === 'x86_64' ? 'epoll_wait' : 'epoll_pwait', [3, 0, 64, -1]],
        ['getpid', []],
        ['exit_group', [0]],
        ['sendmsg', [3, 0, 0]],
        ['recvmsg', [3, 0, 0]],
        ['accept4', [3, 0, 0, 0]],
        ['landlock_create_ruleset', [0, 0, 1]],
        ['clone', [THREAD_FLAGS]],
        ['clone', [SIGCHLD]], // fork
        ['ioctl', [1, 0x541b /* FIONREAD */, 0]],
        ['socketpair', [AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, 0]],
        ['socketpair', [AF_UNIX, SOCK_SEQPACKET, 0, 0]],
      ];
      for (const profile of [strict, standard, killing]) {
        for (const [name, args] of allowed) {
          assertVerdict(decide(profile, arch, name, args), { action: 'allow' }, `${name}(${args.join(', ')}) under ${profile.name}`);
        }
      }
    });

    it('allows numbers it has no rule for, across the whole range', () => {
      const listed = new Set<number | null>(Object.values(SYSCALLS).map((n) => n[arch]));
      for (let nr = 0; nr < 600; nr++) {
        if (listed.has(nr)) continue;
        const v = evaluateSeccomp(program(strict, arch), { nr, arch: AUDIT[arch] });
        assert.equal(v.action, 'allow', `unlisted nr ${nr}`);
      }
    });

    it("network 'unix-only': socket() makes AF_UNIX sockets only and connect is allowed", () => {
      for (const type of [SOCK_STREAM, SOCK_DGRAM, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC]) {
        assertVerdict(decide(standard, arch, 'socket', [AF_UNIX, type, 0]), { action: 'allow' }, `socket(AF_UNIX, ${type})`);
      }
      for (const domain of [AF_INET, AF_INET6, AF_NETLINK, 17 /* AF_PACKET */, 0, 0xffffffff]) {
        assertVerdict(decide(standard, arch, 'socket', [domain, SOCK_STREAM, 0]), EPERM, `socket(${domain})`);
        assertVerdict(decide(standard, arch, 'socketpair', [domain, SOCK_STREAM, 0, 0]), EPERM, `socketpair(${domain})`);
      }
      assertVerdict(decide(standard, arch, 'connect', [3, 0, 110]), { action: 'allow' }, 'connect');
      assertVerdict(decide(standard, arch, 'socketpair', [AF_UNIX, SOCK_DGRAM, 0, 0]), { action: 'allow' }, 'socketpair(DGRAM)');
    });

    it("network 'none' (strict): no socket() at all, only unnamed stream pairs, no connect", () => {
      for (const domain of [AF_UNIX, AF_INET, AF_INET6, AF_NETLINK]) {
        assertVerdict(decide(strict, arch, 'socket', [domain, SOCK_STREAM, 0]), EPERM, `socket(${domain})`);
      }
      assertVerdict(decide(strict, arch, 'socketpair', [AF_UNIX, SOCK_DGRAM, 0, 0]), EPERM, 'socketpair(AF_UNIX, DGRAM)');
      assertVerdict(decide(strict, arch, 'socketpair', [AF_UNIX, 3 /* SOCK_RAW: AF_UNIX makes it DGRAM */, 0, 0]), EPERM, 'socketpair(RAW)');
      assertVerdict(decide(strict, arch, 'socketpair', [AF_INET, SOCK_STREAM, 0, 0]), EPERM, 'socketpair(AF_INET)');
      assertVerdict(decide(strict, arch, 'connect', [3, 0, 110]), EPERM, 'connect');
    });

    it('reads only the low word of int arguments, as the kernel does', () => {
      // The kernel truncates these to 32 bits, so junk in the high word changes nothing.
      assertVerdict(decide(standard, arch, 'socket', [0xffffffff_00000000n | BigInt(AF_UNIX), SOCK_STREAM]), { action: 'allow' }, 'hi|AF_UNIX');
      assertVerdict(decide(standard, arch, 'socket', [0x1_00000000n | BigInt(AF_INET), SOCK_STREAM]), EPERM, 'hi|AF_INET');
      assertVerdict(decide(strict, arch, 'clone', [0xffffffff_00000000n | BigInt(THREAD_FLAGS)]), { action: 'allow' }, 'hi|threads');
    });

    it('denies clone with any namespace flag, and clone3 with ENOSYS so libc falls back', () => {
      for (const flag of ['NEWNS', 'NEWCGROUP', 'NEWUTS', 'NEWIPC', 'NEWUSER', 'NEWPID', 'NEWNET', 'NEWTIME'] as const) {
        assertVerdict(decide(strict, arch, 'clone', [CLONE[flag] | SIGCHLD]), EPERM, `clone(CLONE_${flag})`);
        assertVerdict(decide(strict, arch, 'clone', [THREAD_FLAGS | CLONE[flag]]), EPERM, `clone(threads|CLONE_${flag})`);
      }
      for (const profile of [strict, killing]) {
        assertVerdict(decide(profile, arch, 'clone3', [0, 88]), { action: 'errno', errno: ERRNO.ENOSYS }, `clone3 under ${profile.seccomp.defaultAction}`);
      }
    });

    it('denies the terminal-injection ioctls only', () => {
      for (const cmd of [TIOCSTI, TIOCLINUX]) {
        assertVerdict(decide(strict, arch, 'ioctl', [0, cmd, 0]), EPERM, `ioctl(0x${cmd.toString(16)})`);
        assertVerdict(decide(strict, arch, 'ioctl', [0, 0xdead_00000000n | BigInt(cmd), 0]), EPERM, 'ioctl high word');
      }
    });

    it('kills any other architecture, whatever the profile says', () => {
      const others = [AUDIT_ARCH.I386, AUDIT_ARCH.ARM, arch === 'x86_64' ? AUDIT_ARCH.AARCH64 : AUDIT_ARCH.X86_64, 0];
      for (const other of others) {
        for (const nr of [0, 39, 172]) {
          assertVerdict(evaluateSeccomp(program(strict, arch), { nr, arch: other }), { action: 'kill' }, `arch 0x${other.toString(16)}`);
        }
      }
    });

    it('stays far below the kernel limit and is deterministic', () => {
      const p = program(strict, arch);
      assert.equal(p.byteLength % SOCK_FILTER_SIZE, 0);
      assert.ok(p.byteLength / SOCK_FILTER_SIZE < BPF_MAXINSNS, 'fits BPF_MAXINSNS');
      assert.ok(p.byteLength / SOCK_FILTER_SIZE < 200, `compact: ${p.byteLength / SOCK_FILTER_SIZE} instructions`);
      assert.deepEqual(compileSeccompProgram(strict, arch), p);
      assert.ok(disassembleSeccomp(p).length > 0);
    });
  });
}

describe('seccomp program (x86_64 only)', () => {
  it('denies the x32 ABI, including x32 numbers of allowed calls', () => {
    for (const nr of [0, 1, 39, 59, 0x200, 0xffffffff]) {
      const v = evaluateSeccomp(program(strict, 'x86_64'), { nr: (nr | X32_SYSCALL_BIT) >>> 0, arch: AUDIT_ARCH.X86_64 });
      assertVerdict(v, EPERM, `x32 nr ${nr}`);
    }
    assertVerdict(evaluateSeccomp(program(killing, 'x86_64'), { nr: X32_SYSCALL_BIT | 39, arch: AUDIT_ARCH.X86_64 }), { action: 'kill' }, 'x32 kill');
  });
});

describe('seccompRules', () => {
  it('gives every rule a reason, and exactly one rule per syscall', () => {
    for (const profile of [strict, standard]) {
      const rules = seccompRules(profile);
      const names = rules.map((r) => r.syscall);
      assert.equal(new Set(names).size, names.length);
      for (const r of rules) assert.ok(r.why.length > 10, r.syscall);
    }
  });

  it('allows exec only in a profile that says so', () => {
    const base = resolveProfile('strict');
    const execOk = resolveProfile({ ...base, name: 'exec-ok', seccomp: { ...base.seccomp, denyExecAfterStart: false } });
    for (const arch of ARCHES) {
      assertVerdict(decide(execOk, arch, 'execve'), { action: 'allow' }, 'execve');
      assertVerdict(decide(execOk, arch, 'ptrace'), EPERM, 'ptrace still denied');
    }
  });
});

describe('compileSeccompProgram arguments', () => {
  it('rejects an unknown architecture and a malformed profile', () => {
    assert.throws(() => compileSeccompProgram(strict, 'riscv64' as SeccompArch), (e) => isCaphostError(e, ErrorCode.INVALID_ARGUMENT) && /arch/.test(e.message));
    const bad = { ...strict, seccomp: { ...strict.seccomp, defaultAction: 'allow' } } as unknown as SandboxProfile;
    assert.throws(() => compileSeccompProgram(bad, 'x86_64'), (e) => isCaphostError(e, ErrorCode.INVALID_ARGUMENT) && /seccomp\.defaultAction/.test(e.message));
  });

  it('names this machine', { skip: process.platform !== 'linux' ? 'seccomp is Linux-only' : false }, () => {
    if (process.arch === 'x64') assert.equal(currentSeccompArch(), 'x86_64');
    else if (process.arch === 'arm64') assert.equal(currentSeccompArch(), 'aarch64');
    else assert.throws(() => currentSeccompArch(), (e) => isCaphostError(e, ErrorCode.SANDBOX_UNAVAILABLE));
  });
});
