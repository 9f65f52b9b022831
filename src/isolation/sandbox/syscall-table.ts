/**
 * Syscall numbers for the two architectures caphost confines. x86_64 numbers come
 * from arch/x86/entry/syscalls/syscall_64.tbl, aarch64 numbers from the generic
 * table (include/uapi/asm-generic/unistd.h) that arm64 uses. `null` marks a call
 * the architecture does not have (aarch64 dropped the legacy ones), so a rule
 * for it is simply absent from that architecture's program.
 *
 * Only the calls the sandbox names (denied, conditional, or probed by tests) are
 * listed: the filter allows everything else by number range, never by name.
 */

export type SeccompArch = 'x86_64' | 'aarch64';

export interface SyscallNumbers {
  readonly x86_64: number | null;
  readonly aarch64: number | null;
}

export const SYSCALLS = {
  // Ordinary calls a Node worker makes all the time (used by the allow tests).
  read: { x86_64: 0, aarch64: 63 },
  write: { x86_64: 1, aarch64: 64 },
  close: { x86_64: 3, aarch64: 57 },
  openat: { x86_64: 257, aarch64: 56 },
  mmap: { x86_64: 9, aarch64: 222 },
  futex: { x86_64: 202, aarch64: 98 },
  epoll_wait: { x86_64: 232, aarch64: null },
  epoll_pwait: { x86_64: 281, aarch64: 22 },
  getpid: { x86_64: 39, aarch64: 172 },
  exit_group: { x86_64: 231, aarch64: 94 },
  sendmsg: { x86_64: 46, aarch64: 211 },
  recvmsg: { x86_64: 47, aarch64: 212 },
  accept4: { x86_64: 288, aarch64: 242 },
  landlock_create_ruleset: { x86_64: 444, aarch64: 444 },
  ioctl: { x86_64: 16, aarch64: 29 },

  // Sockets.
  socket: { x86_64: 41, aarch64: 198 },
  socketpair: { x86_64: 53, aarch64: 199 },
  connect: { x86_64: 42, aarch64: 203 },
  bind: { x86_64: 49, aarch64: 200 },
  listen: { x86_64: 50, aarch64: 201 },

  // Program execution.
  execve: { x86_64: 59, aarch64: 221 },
  execveat: { x86_64: 322, aarch64: 281 },

  // Reaching into other processes.
  ptrace: { x86_64: 101, aarch64: 117 },
  process_vm_readv: { x86_64: 310, aarch64: 270 },
  process_vm_writev: { x86_64: 311, aarch64: 271 },
  process_madvise: { x86_64: 440, aarch64: 440 },
  pidfd_getfd: { x86_64: 438, aarch64: 438 },

  // Kernel attack surface with a record of escapes.
  io_uring_setup: { x86_64: 425, aarch64: 425 },
  io_uring_enter: { x86_64: 426, aarch64: 426 },
  io_uring_register: { x86_64: 427, aarch64: 427 },
  bpf: { x86_64: 321, aarch64: 280 },
  perf_event_open: { x86_64: 298, aarch64: 241 },
  userfaultfd: { x86_64: 323, aarch64: 282 },

  // Namespaces and process creation.
  unshare: { x86_64: 272, aarch64: 97 },
  setns: { x86_64: 308, aarch64: 268 },
  clone: { x86_64: 56, aarch64: 220 },
  clone3: { x86_64: 435, aarch64: 435 },

  // Mounts, old and new API.
  mount: { x86_64: 165, aarch64: 40 },
  umount2: { x86_64: 166, aarch64: 39 },
  pivot_root: { x86_64: 155, aarch64: 41 },
  chroot: { x86_64: 161, aarch64: 51 },
  open_tree: { x86_64: 428, aarch64: 428 },
  move_mount: { x86_64: 429, aarch64: 429 },
  fsopen: { x86_64: 430, aarch64: 430 },
  fsconfig: { x86_64: 431, aarch64: 431 },
  fsmount: { x86_64: 432, aarch64: 432 },
  fspick: { x86_64: 433, aarch64: 433 },
  mount_setattr: { x86_64: 442, aarch64: 442 },
  open_by_handle_at: { x86_64: 304, aarch64: 265 },

  // File metadata (mode, owner, times, extended attributes): Landlock does not
  // mediate these, so the filter must. aarch64 has only the *at/f* forms.
  chmod: { x86_64: 90, aarch64: null },
  fchmod: { x86_64: 91, aarch64: 52 },
  fchmodat: { x86_64: 268, aarch64: 53 },
  fchmodat2: { x86_64: 452, aarch64: 452 },
  chown: { x86_64: 92, aarch64: null },
  fchown: { x86_64: 93, aarch64: 55 },
  lchown: { x86_64: 94, aarch64: null },
  fchownat: { x86_64: 260, aarch64: 54 },
  utime: { x86_64: 132, aarch64: null },
  utimes: { x86_64: 235, aarch64: null },
  futimesat: { x86_64: 261, aarch64: null },
  utimensat: { x86_64: 280, aarch64: 88 },
  setxattr: { x86_64: 188, aarch64: 5 },
  lsetxattr: { x86_64: 189, aarch64: 6 },
  fsetxattr: { x86_64: 190, aarch64: 7 },
  removexattr: { x86_64: 197, aarch64: 14 },
  lremovexattr: { x86_64: 198, aarch64: 15 },
  fremovexattr: { x86_64: 199, aarch64: 16 },
  setxattrat: { x86_64: 463, aarch64: 463 },
  removexattrat: { x86_64: 466, aarch64: 466 },

  // Kernel images and modules.
  kexec_load: { x86_64: 246, aarch64: 104 },
  kexec_file_load: { x86_64: 320, aarch64: 294 },
  init_module: { x86_64: 175, aarch64: 105 },
  finit_module: { x86_64: 313, aarch64: 273 },
  delete_module: { x86_64: 176, aarch64: 106 },

  // Kernel keyrings.
  keyctl: { x86_64: 250, aarch64: 219 },
  add_key: { x86_64: 248, aarch64: 217 },
  request_key: { x86_64: 249, aarch64: 218 },

  // Whole-system state.
  personality: { x86_64: 135, aarch64: 92 },
  acct: { x86_64: 163, aarch64: 89 },
  swapon: { x86_64: 167, aarch64: 224 },
  swapoff: { x86_64: 168, aarch64: 225 },
  reboot: { x86_64: 169, aarch64: 142 },
  syslog: { x86_64: 103, aarch64: 116 },
  settimeofday: { x86_64: 164, aarch64: 170 },
  clock_settime: { x86_64: 227, aarch64: 112 },
  adjtimex: { x86_64: 159, aarch64: 171 },
  clock_adjtime: { x86_64: 305, aarch64: 266 },
  iopl: { x86_64: 172, aarch64: null },
  ioperm: { x86_64: 173, aarch64: null },
  uselib: { x86_64: 134, aarch64: null },
} as const satisfies Record<string, SyscallNumbers>;

export type SyscallName = keyof typeof SYSCALLS;

export function syscallNumber(name: SyscallName, arch: SeccompArch): number | null {
  return SYSCALLS[name][arch];
}

const reverse: Record<SeccompArch, Map<number, SyscallName>> = { x86_64: new Map(), aarch64: new Map() };
for (const name of Object.keys(SYSCALLS) as SyscallName[]) {
  for (const arch of ['x86_64', 'aarch64'] as const) {
    const nr = SYSCALLS[name][arch];
    if (nr !== null) reverse[arch].set(nr, name);
  }
}

/** The name of a listed syscall number, for messages; undefined when unlisted. */
export function syscallName(nr: number, arch: SeccompArch): SyscallName | undefined {
  return reverse[arch].get(nr);
}
