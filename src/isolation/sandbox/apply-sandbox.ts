/**
 * The child's half of the sandbox: it applies a plan the controller computed (sandbox-plan.ts)
 * and decides nothing itself, so the policy lives in trusted code and the worker only runs
 * the native steps. Order: no_new_privs (set by each native step), Landlock on every thread,
 * then seccomp-bpf with TSYNC. Any failure throws and the child must exit: it never goes on
 * with less than the plan.
 */
import { CaphostError, ErrorCode } from '../../errors.js';
import type { CoreBinding, LandlockRestrictResult } from '../../native/core-binding.js';

/** JSON-safe: it travels to the child in its boot data. */
export interface SandboxPlan {
  /** The profile's name, for messages. */
  readonly profile: string;
  readonly platform: 'linux' | 'darwin';
  /** Landlock rules; null when a best-effort profile runs on a kernel without Landlock. */
  readonly landlock: {
    readonly readOnly: readonly string[];
    readonly readWrite: readonly string[];
    readonly denyTcp: boolean;
  } | null;
  /** The seccomp program (struct sock_filter array), base64; empty on macOS. */
  readonly seccomp: string;
  /**
   * Threads Landlock may leave unrestricted because they block every signal. Node 20 starts one
   * (the SIGUSR1 inspector watchdog: it only waits on a semaphore and runs no JavaScript);
   * where Node has --disable-sigusr1 the launcher passes it and this is 0.
   */
  readonly toleratedUnrestrictedThreads: number;
}

export interface SandboxReport {
  readonly landlockAbi: number;
  /** Landlock scopes applied (signal, abstract unix socket); 0 below ABI 6, a gap the launcher warns about. */
  readonly landlockScoped: number;
  readonly threads: number;
  readonly unrestrictedThreads: LandlockRestrictResult['unrestrictedThreads'];
  readonly skipped: readonly string[];
  readonly seccompMode: number;
  readonly ms: number;
}

const unavailable = (message: string, cause?: unknown): CaphostError =>
  new CaphostError(ErrorCode.SANDBOX_UNAVAILABLE, message, cause === undefined ? {} : { cause });

/** Applies `plan` to this whole process, irreversibly. Throws SANDBOX_UNAVAILABLE on any shortfall. */
export function applySandbox(plan: SandboxPlan, core: CoreBinding): SandboxReport {
  const started = performance.now();
  if (plan.platform === 'darwin') {
    // sandbox-exec confined this process before node started; there is nothing left to apply.
    return { landlockAbi: 0, landlockScoped: 0, threads: 0, unrestrictedThreads: [], skipped: [], seccompMode: 0, ms: 0 };
  }
  let landlock: LandlockRestrictResult = { abi: 0, scoped: 0, skipped: [], threads: 0, unrestrictedThreads: [] };
  if (plan.landlock !== null) {
    try {
      landlock = core.landlockRestrict({ ...plan.landlock, allThreads: true });
    } catch (err) {
      throw unavailable(`Landlock could not be applied (profile '${plan.profile}'): ${(err as Error).message}`, err);
    }
    if (landlock.unrestrictedThreads.length > plan.toleratedUnrestrictedThreads) {
      const threads = landlock.unrestrictedThreads.map((t) => `${t.tid} (${t.name})`).join(', ');
      throw unavailable(
        `Landlock could not reach ${landlock.unrestrictedThreads.length} thread(s) that block signals: ${threads}; ` +
          `at most ${plan.toleratedUnrestrictedThreads} (Node's SIGUSR1 watchdog) is expected`,
      );
    }
  }
  try {
    core.installSeccompFilter(Buffer.from(plan.seccomp, 'base64'));
  } catch (err) {
    throw unavailable(`the seccomp filter could not be installed (profile '${plan.profile}'): ${(err as Error).message}`, err);
  }
  const seccompMode = core.seccompSupport().mode;
  if (seccompMode !== 2) throw unavailable(`the seccomp filter reported installed, but this thread is in seccomp mode ${seccompMode}`);
  return {
    landlockAbi: landlock.abi,
    landlockScoped: landlock.scoped,
    threads: landlock.threads,
    unrestrictedThreads: landlock.unrestrictedThreads,
    skipped: landlock.skipped,
    seccompMode,
    ms: performance.now() - started,
  };
}
