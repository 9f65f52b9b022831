/**
 * Constants shared by the seccomp compiler and the test interpreter. Values are
 * the Linux uapi ones (linux/filter.h, linux/bpf_common.h, linux/seccomp.h,
 * linux/audit.h); they are part of the kernel ABI and never change.
 */

/** Classic BPF instruction classes and fields (linux/bpf_common.h). */
export const BPF = {
  LD: 0x00,
  LDX: 0x01,
  ST: 0x02,
  STX: 0x03,
  ALU: 0x04,
  JMP: 0x05,
  RET: 0x06,
  MISC: 0x07,
  // sizes
  W: 0x00,
  H: 0x08,
  B: 0x10,
  // modes
  IMM: 0x00,
  ABS: 0x20,
  IND: 0x40,
  MEM: 0x60,
  LEN: 0x80,
  MSH: 0xa0,
  // alu ops
  ADD: 0x00,
  SUB: 0x10,
  MUL: 0x20,
  DIV: 0x30,
  OR: 0x40,
  AND: 0x50,
  LSH: 0x60,
  RSH: 0x70,
  NEG: 0x80,
  MOD: 0x90,
  XOR: 0xa0,
  // jump ops
  JA: 0x00,
  JEQ: 0x10,
  JGT: 0x20,
  JGE: 0x30,
  JSET: 0x40,
  // operand source
  K: 0x00,
  X: 0x08,
  // return value source
  A: 0x10,
  // misc ops
  TAX: 0x00,
  TXA: 0x80,
} as const;

/** The kernel refuses longer classic programs (BPF_MAXINSNS). */
export const BPF_MAXINSNS = 4096;
/** Scratch memory words of classic BPF (BPF_MEMWORDS). */
export const BPF_MEMWORDS = 16;
/** sizeof(struct sock_filter): u16 code, u8 jt, u8 jf, u32 k. */
export const SOCK_FILTER_SIZE = 8;

/** Offsets into struct seccomp_data. */
export const SECCOMP_DATA = {
  NR: 0,
  ARCH: 4,
  INSTRUCTION_POINTER: 8,
  ARGS: 16,
  /** sizeof(struct seccomp_data): 4 + 4 + 8 + 6 * 8. */
  SIZE: 64,
} as const;

/** Filter return values; the top 16 bits are the action, the low 16 its data. */
export const SECCOMP_RET = {
  KILL_PROCESS: 0x80000000,
  KILL_THREAD: 0x00000000,
  TRAP: 0x00030000,
  ERRNO: 0x00050000,
  USER_NOTIF: 0x7fc00000,
  TRACE: 0x7ff00000,
  LOG: 0x7ffc0000,
  ALLOW: 0x7fff0000,
  ACTION_FULL: 0xffff0000,
  DATA: 0x0000ffff,
} as const;

/** AUDIT_ARCH_* values as seccomp_data.arch reports them (little-endian, 64-bit). */
export const AUDIT_ARCH = {
  X86_64: 0xc000003e,
  AARCH64: 0xc00000b7,
  I386: 0x40000003,
  ARM: 0x40000028,
} as const;

/** x32 syscalls are x86_64 numbers with this bit set (__X32_SYSCALL_BIT). */
export const X32_SYSCALL_BIT = 0x40000000;

/** errno values the filter returns; identical on x86_64 and aarch64 (asm-generic/errno*.h). */
export const ERRNO = {
  EPERM: 1,
  EACCES: 13,
  ENOSYS: 38,
} as const;

export const AF_UNIX = 1;
export const AF_INET = 2;
export const AF_INET6 = 10;
export const AF_NETLINK = 16;

export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const SOCK_SEQPACKET = 5;
/** socket(2) packs SOCK_NONBLOCK|SOCK_CLOEXEC above the type; the kernel masks with this. */
export const SOCK_TYPE_MASK = 0xf;

export const CLONE = {
  NEWTIME: 0x00000080,
  VM: 0x00000100,
  FS: 0x00000200,
  FILES: 0x00000400,
  SIGHAND: 0x00000800,
  PTRACE: 0x00002000,
  VFORK: 0x00004000,
  THREAD: 0x00010000,
  NEWNS: 0x00020000,
  SYSVSEM: 0x00040000,
  SETTLS: 0x00080000,
  PARENT_SETTID: 0x00100000,
  CHILD_CLEARTID: 0x00200000,
  NEWCGROUP: 0x02000000,
  NEWUTS: 0x04000000,
  NEWIPC: 0x08000000,
  NEWUSER: 0x10000000,
  NEWPID: 0x20000000,
  NEWNET: 0x40000000,
} as const;

/**
 * Every namespace-creating clone flag. CLONE_NEWTIME sits inside the CSIGNAL byte
 * of clone(2) (the exit signal), where the kernel does not read it as a flag; a
 * valid exit signal is below 65 and never has bit 0x80 set, so including it here
 * only refuses malformed calls and keeps the mask identical to unshare's.
 */
export const CLONE_NAMESPACE_FLAGS =
  CLONE.NEWNS |
  CLONE.NEWCGROUP |
  CLONE.NEWUTS |
  CLONE.NEWIPC |
  CLONE.NEWUSER |
  CLONE.NEWPID |
  CLONE.NEWNET |
  CLONE.NEWTIME;

/** Terminal ioctls that push input into a tty or poke the console (asm-generic/ioctls.h). */
export const TIOCSTI = 0x5412;
export const TIOCLINUX = 0x541c;
