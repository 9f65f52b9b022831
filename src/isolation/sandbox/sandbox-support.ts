/**
 * What this machine can enforce, and whether that keeps a profile's promise.
 *
 * Checked in the controller before any process worker is spawned, so a missing kernel feature
 * is a SANDBOX_UNAVAILABLE at Controller.start naming what is missing and what to choose
 * instead, never a worker that runs with less than its profile says.
 */
import { existsSync } from 'node:fs';
import { CaphostError, ErrorCode } from '../../errors.js';
import { loadCoreBinding } from '../../native/core-binding.js';
import type { SandboxProfile } from './sandbox-profile.js';

export interface SandboxSupport {
  readonly platform: NodeJS.Platform;
  /** seccomp(SECCOMP_SET_MODE_FILTER) works here. */
  readonly seccompFilter: boolean;
  /** SECCOMP_FILTER_FLAG_TSYNC works here (needed: Node runs threads before any sandbox step). */
  readonly seccompTsync: boolean;
  /** 0 when the kernel lacks Landlock or has it switched off. */
  readonly landlockAbi: number;
  /** macOS: /usr/bin/sandbox-exec exists. */
  readonly sandboxExec: boolean;
}

/**
 * Landlock ABI a 'required' profile needs. ABI 1 and 2 handle writes, creation and removal but
 * not truncate(2) or open(O_TRUNC) (ABI 3, Linux 6.2): under them a worker could empty any file it
 * may only read, which breaks "no writes outside scratch".
 */
export const LANDLOCK_ABI_REQUIRED = 3;
/** Landlock ABI that can also refuse TCP bind/connect (Linux 6.7); used when present, on top of seccomp. */
export const LANDLOCK_ABI_NET = 4;
/**
 * Landlock ABI that scopes signals and abstract unix sockets to the worker's domain (Linux 6.12).
 * Used when present; below it a worker can signal same-user processes (the controller too). Not
 * required even by 'required' profiles, so older kernels still start workers: sandboxGaps says so.
 */
export const LANDLOCK_ABI_SCOPED = 6;

export const SANDBOX_EXEC = '/usr/bin/sandbox-exec';

/**
 * Test hook: CAPHOST_SANDBOX_SIMULATE_MISSING=landlock,seccomp,tsync,sandbox-exec or
 * landlock-abi=<n> makes detection report those features as absent or lower. It can only take
 * features away, so it can make start refuse, never make a weaker sandbox pass.
 */
const SIMULATE_ENV = 'CAPHOST_SANDBOX_SIMULATE_MISSING';

function simulated(support: SandboxSupport): SandboxSupport {
  const value = process.env[SIMULATE_ENV];
  if (value === undefined || value === '') return support;
  let { seccompFilter, seccompTsync, landlockAbi, sandboxExec } = support;
  for (const item of value.split(',').map((s) => s.trim())) {
    if (item === 'landlock') landlockAbi = 0;
    else if (item === 'seccomp') seccompFilter = seccompTsync = false;
    else if (item === 'tsync') seccompTsync = false;
    else if (item === 'sandbox-exec') sandboxExec = false;
    else if (/^landlock-abi=\d+$/.test(item)) landlockAbi = Math.min(landlockAbi, Number(item.split('=')[1]));
  }
  return { platform: support.platform, seccompFilter, seccompTsync, landlockAbi, sandboxExec };
}

/** Probes the kernel (Linux) or the system (macOS); installs nothing. */
export function detectSandboxSupport(): SandboxSupport {
  const platform = process.platform;
  let support: SandboxSupport = { platform, seccompFilter: false, seccompTsync: false, landlockAbi: 0, sandboxExec: false };
  if (platform === 'linux') {
    const core = loadCoreBinding();
    const seccomp = core.seccompSupport();
    support = { ...support, seccompFilter: seccomp.filter, seccompTsync: seccomp.tsync, landlockAbi: core.landlockAbiVersion() };
  } else if (platform === 'darwin') {
    support = { ...support, sandboxExec: existsSync(SANDBOX_EXEC) };
  }
  return simulated(support);
}

/** Why `profile` cannot be kept on a machine with `support`, in words; undefined when it can. */
export function sandboxShortfall(profile: SandboxProfile, support: SandboxSupport): string | undefined {
  if (support.platform === 'darwin') {
    return support.sandboxExec ? undefined : `${SANDBOX_EXEC} is missing, so macOS cannot confine a process worker`;
  }
  if (support.platform !== 'linux') {
    return `process workers are sandboxed on Linux (seccomp-bpf + Landlock) and macOS (sandbox-exec) only; this is ${support.platform}`;
  }
  if (!support.seccompFilter) {
    return 'seccomp-bpf is not available (kernel built without CONFIG_SECCOMP_FILTER, or a container runtime forbids it); every profile needs it';
  }
  if (!support.seccompTsync) {
    return 'seccomp SECCOMP_FILTER_FLAG_TSYNC is not available (Linux < 3.17); without it the filter would miss the threads Node already runs';
  }
  if (profile.landlock === 'required' && support.landlockAbi < LANDLOCK_ABI_REQUIRED) {
    const what =
      support.landlockAbi === 0
        ? `Landlock is not available on this kernel (ABI 0: Linux < 5.13, or 'landlock' missing from the lsm= boot list)`
        : `Landlock ABI ${support.landlockAbi} cannot stop truncation of files a worker may read; profile '${profile.name}' needs ABI ${LANDLOCK_ABI_REQUIRED} (Linux 6.2)`;
    return `${what}; choose sandbox: 'landlock-optional' to run with seccomp only and Landlock where the kernel has it`;
  }
  return undefined;
}

/** Gaps a best-effort profile starts with anyway, for a warning at start. */
export function sandboxGaps(profile: SandboxProfile, support: SandboxSupport): string[] {
  if (support.platform !== 'linux') return [];
  const gaps: string[] = [];
  if (profile.landlock === 'best-effort') {
    if (support.landlockAbi === 0) return [`profile '${profile.name}': Landlock is not available, so file access is not confined (seccomp still applies)`];
    if (support.landlockAbi < LANDLOCK_ABI_REQUIRED) gaps.push(`profile '${profile.name}': Landlock ABI ${support.landlockAbi} cannot stop truncation of readable files`);
  }
  if (support.landlockAbi > 0 && support.landlockAbi < LANDLOCK_ABI_SCOPED) {
    gaps.push(
      `profile '${profile.name}': Landlock ABI ${support.landlockAbi} has no scoping (ABI ${LANDLOCK_ABI_SCOPED}, Linux 6.12), ` +
        'so a worker can signal processes of the same user and connect to abstract unix sockets',
    );
  }
  return gaps;
}

/** Throws SANDBOX_UNAVAILABLE when `profile` cannot be kept here; `option` names the entry for the message. */
export function requireSandbox(profile: SandboxProfile, option: string, support: SandboxSupport = detectSandboxSupport()): SandboxSupport {
  const shortfall = sandboxShortfall(profile, support);
  if (shortfall !== undefined) {
    throw new CaphostError(ErrorCode.SANDBOX_UNAVAILABLE, `${option}: sandbox profile '${profile.name}' cannot be enforced here: ${shortfall}`, {
      details: { option, profile: profile.name, support },
    });
  }
  return support;
}
