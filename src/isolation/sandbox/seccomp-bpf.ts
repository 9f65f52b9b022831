/**
 * Compile a SandboxProfile into the seccomp-bpf program a process worker installs.
 *
 * The policy is a denylist over named families, not an allowlist: Node, V8 and
 * libuv use a broad and version-dependent set of syscalls, and an allowlist that
 * lags a Node upgrade fails workers in ways nobody can act on. Files are
 * Landlock's job (except metadata: mode, owner, times and xattrs, which Landlock does not
 * mediate and this filter denies); it also removes the kernel surfaces that let code leave
 * the process (exec, ptrace, namespaces, mounts, modules, raw network...).
 * Every listed family gets an explicit rule; nothing on the list is decided by
 * falling through to the final allow.
 *
 * The program is compiled here, in the trusted controller, and handed to the
 * child as bytes; the native step only sets no_new_privs and installs it with
 * TSYNC (Node already runs threads), as bubblewrap does.
 *
 * Layout: check arch (anything else, including the i386 and x32 ABIs on an
 * x86_64 kernel, is killed or denied), load nr, then a binary search over the
 * sorted rule numbers. Unlisted numbers reach `ret ALLOW` having read only arch
 * and nr, which lets the kernel's per-syscall action cache (5.11+) skip the
 * filter for them entirely.
 */
import os from 'node:os';
import { CaphostError, ErrorCode } from '../../errors.js';
import { BpfAssembler, type Label } from './bpf-assembler.js';
import {
  AF_UNIX,
  AUDIT_ARCH,
  BPF,
  CLONE_NAMESPACE_FLAGS,
  ERRNO,
  SECCOMP_DATA,
  SECCOMP_RET,
  SOCK_SEQPACKET,
  SOCK_STREAM,
  SOCK_TYPE_MASK,
  TIOCLINUX,
  TIOCSTI,
  X32_SYSCALL_BIT,
} from './seccomp-constants.js';
import { validateProfile, type SandboxProfile } from './sandbox-profile.js';
import { SYSCALLS, type SeccompArch, type SyscallName } from './syscall-table.js';

export type { SeccompArch } from './syscall-table.js';

/**
 * A test on the low 32 bits of one argument. Every argument tested here is an
 * `int` or `unsigned int` in the kernel's prototype (socket domain and type,
 * ioctl cmd) or is explicitly truncated by it (clone: `lower_32_bits(flags)`),
 * so the high word cannot change what the kernel does and ignoring it is exact,
 * not a bypass. seccomp_data.args are u64 in native (little-endian) order, so
 * the low word of args[i] is at 16 + 8 * i.
 */
export type ArgRequirement =
  | { readonly arg: number; readonly test: 'in'; readonly values: readonly number[]; readonly mask?: number }
  | { readonly arg: number; readonly test: 'notIn'; readonly values: readonly number[] }
  | { readonly arg: number; readonly test: 'bitsClear'; readonly bits: number };

export type SyscallDecision =
  /** The profile's deny action (errno or kill). */
  | { readonly kind: 'deny' }
  /** Allowed, stated explicitly because the call is in a listed family. */
  | { readonly kind: 'allow' }
  /** A fixed errno whatever the deny action: a fallback protocol, not a denial. */
  | { readonly kind: 'errno'; readonly errno: number }
  /** Allowed only when every requirement holds; otherwise the deny action. */
  | { readonly kind: 'conditional'; readonly requires: readonly ArgRequirement[] };

export interface SeccompRule {
  readonly syscall: SyscallName;
  readonly decision: SyscallDecision;
  readonly why: string;
}

const DENY = { kind: 'deny' } as const;
const ALLOW = { kind: 'allow' } as const;

/** Families denied by every profile, with the reason a worker never needs them. */
const ALWAYS_DENIED: ReadonlyArray<readonly [readonly SyscallName[], string]> = [
  [['bind', 'listen'], 'a worker never serves: bind/listen would open an endpoint that others can reach'],
  [
    ['ptrace', 'process_vm_readv', 'process_vm_writev', 'process_madvise', 'pidfd_getfd'],
    "reading or steering another process's memory or fds crosses the process boundary",
  ],
  [['io_uring_setup', 'io_uring_enter', 'io_uring_register'], 'io_uring performs I/O the filter never sees, and is a frequent kernel escape'],
  [['bpf', 'perf_event_open', 'userfaultfd'], 'kernel attack surface with no use in a worker (userfaultfd widens race windows)'],
  [['unshare', 'setns'], 'new or foreign namespaces would give the worker its own view of users, mounts or network'],
  [
    ['mount', 'umount2', 'pivot_root', 'chroot', 'open_tree', 'move_mount', 'fsopen', 'fsconfig', 'fsmount', 'fspick', 'mount_setattr'],
    "mount changes (old and new API) could reshape the worker's file view",
  ],
  [
    [
      'chmod', 'fchmod', 'fchmodat', 'fchmodat2', 'chown', 'fchown', 'lchown', 'fchownat',
      'utime', 'utimes', 'futimesat', 'utimensat',
      'setxattr', 'lsetxattr', 'fsetxattr', 'removexattr', 'lremovexattr', 'fremovexattr', 'setxattrat', 'removexattrat',
    ],
    // Landlock (through ABI 7) has no right for mode, owner, times or xattrs, so
    // without these rules a worker could chmod/utimes any file it can name,
    // outside scratch included. EPERM (the profile errno) is safe for Node:
    // libuv's copyfile ignores EPERM from its fchmod.
    'file metadata (mode, owner, times, xattrs) is not mediated by Landlock, so a worker may change none of it',
  ],
  [['open_by_handle_at'], 'file handles skip path resolution and so path-based confinement'],
  [['kexec_load', 'kexec_file_load', 'init_module', 'finit_module', 'delete_module'], 'loading kernels or kernel modules'],
  [['keyctl', 'add_key', 'request_key'], 'kernel keyrings are not namespaced and hold other users\u2019 secrets'],
  [['personality'], 'execution domains can switch off ASLR and other hardening'],
  [['acct', 'swapon', 'swapoff', 'reboot', 'syslog'], 'whole-system state, or the kernel log and the addresses in it'],
  [['settimeofday', 'clock_settime', 'adjtimex', 'clock_adjtime'], 'the system clock belongs to the host'],
  [['iopl', 'ioperm'], 'raw I/O port access (x86 only)'],
  [['uselib'], 'obsolete library loader (x86 only)'],
];

/** The policy as data, in the order a reader should meet it. */
export function seccompRules(profile: SandboxProfile): readonly SeccompRule[] {
  const rules: SeccompRule[] = [];
  const add = (syscall: SyscallName, decision: SyscallDecision, why: string): void => {
    rules.push({ syscall, decision, why });
  };

  // Network. Under 'none' a worker has no socket() at all: its channel to the
  // controller is inherited already connected, and Node needs no socket of its
  // own (glibc's nscd and DNS probes fail over cleanly to files). socketpair
  // stays for unnamed AF_UNIX pairs, limited to stream and seqpacket because a
  // datagram AF_UNIX socket honours a destination address on sendto/sendmsg even
  // when connected, which would reach named sockets such as /dev/log; connect is
  // denied since there is nothing legitimate to connect.
  //
  // Under 'unix-only' socket() may create AF_UNIX sockets only, so connect()
  // can only ever target a unix socket (or the controller's inherited one) and
  // is allowed; bind/listen stay denied, so the worker can dial out to a local
  // service but never become one. The filter cannot see the path connect()
  // names (it lives in memory), so reachable socket files are Landlock's and
  // the launcher's business; that is why 'unix-only' is not the default.
  const unixDomain: ArgRequirement = { arg: 0, test: 'in', values: [AF_UNIX] };
  if (profile.network === 'none') {
    add('socket', DENY, "network 'none': the worker creates no sockets; its controller channel is inherited");
    add(
      'socketpair',
      { kind: 'conditional', requires: [unixDomain, { arg: 1, test: 'in', mask: SOCK_TYPE_MASK, values: [SOCK_STREAM, SOCK_SEQPACKET] }] },
      'unnamed AF_UNIX stream/seqpacket pairs only: datagram sockets can address named sockets',
    );
    add('connect', DENY, "network 'none': nothing to connect to");
  } else {
    add('socket', { kind: 'conditional', requires: [unixDomain] }, "network 'unix-only': AF_UNIX sockets only, never IP, netlink or packet");
    add('socketpair', { kind: 'conditional', requires: [unixDomain] }, 'unnamed AF_UNIX pairs only');
    add('connect', ALLOW, 'every socket the worker can hold is AF_UNIX, so connect reaches only local unix sockets');
  }

  const exec = profile.seccomp.denyExecAfterStart ? DENY : ALLOW;
  const execWhy = profile.seccomp.denyExecAfterStart
    ? 'the filter is installed by the running Node child, so any exec is a new program after start'
    : 'exec allowed by this profile; the new program inherits the filter, Landlock and no_new_privs';
  add('execve', exec, execWhy);
  add('execveat', exec, execWhy);

  // Threads are clone() with CLONE_VM|CLONE_THREAD|...; only namespace flags are refused.
  add('clone', { kind: 'conditional', requires: [{ arg: 0, test: 'bitsClear', bits: CLONE_NAMESPACE_FLAGS }] }, 'threads and forks yes, new namespaces no');
  // clone3 passes its flags in a struct the filter cannot read. ENOSYS (not
  // EPERM, and never kill) is the documented signal for glibc (2.34+, which
  // tries clone3 first for every pthread_create) and libuv to fall back to
  // clone(), whose flags the rule above does check.
  add('clone3', { kind: 'errno', errno: ERRNO.ENOSYS }, 'flags live in memory the filter cannot read; ENOSYS makes libc fall back to clone()');
  // The terminal ioctls that inject input into, or drive, a tty the worker
  // might have inherited (bubblewrap's CVE-2017-5226).
  add('ioctl', { kind: 'conditional', requires: [{ arg: 1, test: 'notIn', values: [TIOCSTI, TIOCLINUX] }] }, 'no TIOCSTI/TIOCLINUX terminal injection');

  for (const [names, why] of ALWAYS_DENIED) for (const name of names) add(name, DENY, why);
  return rules;
}

/** The SECCOMP_RET value a denied call gets under this profile. */
export function seccompDenyReturn(profile: SandboxProfile): number {
  if (profile.seccomp.defaultAction === 'kill') return SECCOMP_RET.KILL_PROCESS;
  return (SECCOMP_RET.ERRNO | ERRNO[profile.seccomp.errno]) >>> 0;
}

/** Decision-tree leaves compare up to this many numbers in a row. */
const LEAF_SIZE = 4;

interface Entry {
  readonly nr: number;
  readonly target: Label;
}

export function compileSeccompProgram(profile: SandboxProfile, arch: SeccompArch): Uint8Array {
  if (arch !== 'x86_64' && arch !== 'aarch64') {
    throw new CaphostError(ErrorCode.INVALID_ARGUMENT, `arch must be 'x86_64' or 'aarch64', got ${JSON.stringify(String(arch))}`, {
      details: { option: 'arch' },
    });
  }
  // Re-validate: a hand-built object must not reach the kernel unchecked.
  const checked = validateProfile(profile, 'profile');
  const asm = new BpfAssembler();
  const allow = asm.label('allow');
  const deny = asm.label('deny');
  const kill = asm.label('kill');

  asm.loadWord(SECCOMP_DATA.ARCH);
  asm.jumpK(BPF.JEQ, arch === 'x86_64' ? AUDIT_ARCH.X86_64 : AUDIT_ARCH.AARCH64, null, kill);
  asm.loadWord(SECCOMP_DATA.NR);
  // x32 shares the x86_64 audit arch; its numbers carry bit 30 and reach other
  // syscall entry points, so they must not slip past rules written for x86_64.
  if (arch === 'x86_64') asm.jumpK(BPF.JSET, X32_SYSCALL_BIT, deny, null);

  const entries: Entry[] = [];
  const errnoLabels = new Map<number, Label>();
  const blocks: Array<() => void> = [];
  const seen = new Set<number>();
  for (const rule of seccompRules(checked)) {
    const nr = SYSCALLS[rule.syscall][arch];
    if (nr === null) continue;
    if (seen.has(nr)) throw new Error(`seccomp-bpf: two rules for syscall ${nr} (${rule.syscall}) on ${arch}`);
    seen.add(nr);
    const d = rule.decision;
    let target: Label;
    switch (d.kind) {
      case 'deny':
        target = deny;
        break;
      case 'allow':
        target = allow;
        break;
      case 'errno': {
        const existing = errnoLabels.get(d.errno);
        target = existing ?? asm.label(`errno-${d.errno}`);
        errnoLabels.set(d.errno, target);
        break;
      }
      case 'conditional': {
        const block = asm.label(`check-${rule.syscall}`);
        target = block;
        blocks.push(() => emitConditional(asm, block, d.requires, deny));
        break;
      }
      default:
        throw new Error(`seccomp-bpf: unknown decision ${JSON.stringify(d satisfies never)}`);
    }
    entries.push({ nr, target });
  }
  entries.sort((a, b) => a.nr - b.nr);
  emitSearch(asm, entries);
  // Classic BPF jumps only forward: argument checks come before the shared returns they target.
  for (const emit of blocks) emit();

  asm.bind(allow);
  asm.ret(SECCOMP_RET.ALLOW);
  asm.bind(deny);
  asm.ret(seccompDenyReturn(checked));
  asm.bind(kill);
  asm.ret(SECCOMP_RET.KILL_PROCESS);
  for (const [errno, label] of errnoLabels) {
    asm.bind(label);
    asm.ret((SECCOMP_RET.ERRNO | errno) >>> 0);
  }
  return asm.assemble();
}

/** Binary search on A (= nr) over sorted entries; unmatched numbers are allowed. */
function emitSearch(asm: BpfAssembler, entries: readonly Entry[]): void {
  if (entries.length <= LEAF_SIZE) {
    for (const e of entries) asm.jumpK(BPF.JEQ, e.nr, e.target, null);
    asm.ret(SECCOMP_RET.ALLOW);
    return;
  }
  const mid = entries.length >> 1;
  const upper = asm.label('upper');
  asm.jumpK(BPF.JGE, entries[mid]!.nr, upper, null);
  emitSearch(asm, entries.slice(0, mid));
  asm.bind(upper);
  emitSearch(asm, entries.slice(mid));
}

function emitConditional(asm: BpfAssembler, at: Label, requires: readonly ArgRequirement[], deny: Label): void {
  asm.bind(at);
  for (const req of requires) {
    if (!Number.isInteger(req.arg) || req.arg < 0 || req.arg > 5) throw new Error(`seccomp-bpf: argument index ${req.arg} out of range`);
    asm.loadWord(SECCOMP_DATA.ARGS + 8 * req.arg);
    switch (req.test) {
      case 'in': {
        if (req.mask !== undefined) asm.andK(req.mask);
        const pass = asm.label('pass');
        req.values.forEach((v, i) => asm.jumpK(BPF.JEQ, v, pass, i === req.values.length - 1 ? deny : null));
        if (req.values.length === 0) asm.ja(deny);
        asm.bind(pass);
        break;
      }
      case 'notIn':
        for (const v of req.values) asm.jumpK(BPF.JEQ, v, deny, null);
        break;
      case 'bitsClear':
        asm.jumpK(BPF.JSET, req.bits, deny, null);
        break;
    }
  }
  asm.ret(SECCOMP_RET.ALLOW);
}

/** The seccomp architecture of this process, or SANDBOX_UNAVAILABLE in words. */
export function currentSeccompArch(): SeccompArch {
  if (process.platform !== 'linux') {
    throw new CaphostError(ErrorCode.SANDBOX_UNAVAILABLE, `seccomp-bpf exists only on Linux; this process runs on ${process.platform}`);
  }
  if (os.endianness() !== 'LE') {
    throw new CaphostError(ErrorCode.SANDBOX_UNAVAILABLE, 'seccomp filters are compiled for little-endian x86_64 and aarch64 only; this CPU is big-endian');
  }
  if (process.arch === 'x64') return 'x86_64';
  if (process.arch === 'arm64') return 'aarch64';
  throw new CaphostError(
    ErrorCode.SANDBOX_UNAVAILABLE,
    `no seccomp syscall table for CPU architecture '${process.arch}'; process workers are supported on x64 and arm64`,
  );
}
