/**
 * The sandbox profile of a process worker, as typed, frozen data.
 *
 * One profile feeds every platform compiler (seccomp-bpf here, Landlock in the
 * launcher, SBPL on macOS), so it says what a worker may do, never how a
 * platform enforces it. Profiles are resolved and validated in the controller
 * before any child is spawned; a bad option is an INVALID_ARGUMENT naming it.
 *
 * Weaker profiles exist, but only by name: overrides may add paths or devices
 * and may tighten a profile, never loosen its network, Landlock or exec stance,
 * so a log line that says 'strict' always means at least strict.
 */
import path from 'node:path';
import { CaphostError, ErrorCode } from '../../errors.js';

export type NetworkPolicy = 'none' | 'unix-only';
export type LandlockRequirement = 'required' | 'best-effort';
export type SeccompDenyAction = 'errno' | 'kill';
export type SeccompErrnoName = 'EPERM' | 'EACCES';

export interface SandboxFilesystem {
  /** Absolute paths the worker may read, beyond the Node runtime and its own module folder (which the launcher always grants). */
  readonly readOnly: readonly string[];
  /** Write access: the worker's own scratch folder always, plus `extra` absolute folders (none in any built-in profile). */
  readonly readWrite: { readonly scratch: true; readonly extra: readonly string[] };
}

export interface SeccompSettings {
  /**
   * What a call in a denied family gets: 'errno' fails it (the worker sees an
   * error and goes on), 'kill' ends the worker (SECCOMP_RET_KILL_PROCESS), which
   * turns even a harmless probe such as a DNS lookup into a crash. Calls outside
   * the denied families are allowed either way; a wrong architecture is always killed.
   */
  readonly defaultAction: SeccompDenyAction;
  /** The errno of a denied call when defaultAction is 'errno'. */
  readonly errno: SeccompErrnoName;
  /**
   * Deny execve/execveat. The filter is installed by the already-running Node
   * child, so every exec it could block happens after start. Turning this off
   * does not leave the sandbox (filters, Landlock and no_new_privs survive exec),
   * but it does break the design's "no exec" promise, so it is never a default.
   */
  readonly denyExecAfterStart: boolean;
}

export interface SandboxProfile {
  readonly name: string;
  readonly filesystem: SandboxFilesystem;
  /** 'none': no socket() at all, only unnamed AF_UNIX stream pairs; 'unix-only': AF_UNIX sockets and connect(). See seccomp-bpf.ts. */
  readonly network: NetworkPolicy;
  /** Device files the worker may open; only the harmless character devices in ALLOWED_DEVICES. */
  readonly devices: readonly string[];
  readonly seccomp: SeccompSettings;
  /** 'best-effort' starts the worker without Landlock where the kernel lacks it (and says so); seccomp applies regardless. */
  readonly landlock: LandlockRequirement;
}

export interface SandboxProfileOverrides {
  readonly filesystem?: {
    readonly readOnly?: readonly string[];
    readonly readWrite?: { readonly extra?: readonly string[] };
  };
  readonly network?: NetworkPolicy;
  readonly devices?: readonly string[];
  readonly seccomp?: Partial<SeccompSettings>;
  readonly landlock?: LandlockRequirement;
}

export const BUILTIN_PROFILE_NAMES = ['strict', 'standard', 'landlock-optional', 'permissive'] as const;
export type BuiltinProfileName = (typeof BUILTIN_PROFILE_NAMES)[number];
export const DEFAULT_PROFILE_NAME: BuiltinProfileName = 'strict';

export const DEFAULT_DEVICES: readonly string[] = Object.freeze(['/dev/null', '/dev/zero', '/dev/urandom']);
/** GPU, memory, tty and kernel-interface devices are never grantable: the controller alone owns devices. */
export const ALLOWED_DEVICES: readonly string[] = Object.freeze([
  '/dev/null',
  '/dev/zero',
  '/dev/full',
  '/dev/random',
  '/dev/urandom',
]);

/** Writable grants under these trees would let a worker plant code or reach kernel interfaces. */
const NEVER_WRITABLE = ['/bin', '/boot', '/dev', '/etc', '/lib', '/lib32', '/lib64', '/proc', '/sbin', '/sys', '/usr'];

function makeProfile(
  name: BuiltinProfileName,
  network: NetworkPolicy,
  landlock: LandlockRequirement,
): SandboxProfile {
  const profile: SandboxProfile = {
    name,
    filesystem: { readOnly: [], readWrite: { scratch: true, extra: [] } },
    network,
    devices: [...DEFAULT_DEVICES],
    seccomp: { defaultAction: 'errno', errno: 'EPERM', denyExecAfterStart: true },
    landlock,
  };
  return deepFreeze(profile);
}

export const BUILTIN_PROFILES: Readonly<Record<BuiltinProfileName, SandboxProfile>> = Object.freeze({
  /** The default: no sockets of its own, Landlock required, denied calls fail with EPERM. */
  strict: makeProfile('strict', 'none', 'required'),
  /** For workers that connect to a local AF_UNIX service by path. */
  standard: makeProfile('standard', 'unix-only', 'required'),
  /** strict, but starts on kernels without Landlock (seccomp still applies; the launcher reports the gap). */
  'landlock-optional': makeProfile('landlock-optional', 'none', 'best-effort'),
  /** standard without the Landlock requirement: the weakest built-in. */
  permissive: makeProfile('permissive', 'unix-only', 'best-effort'),
});

/** Which built-in loosens a given stance, for messages that tell the user what to pick instead. */
const LOOSER_PROFILE_HINT = {
  network: "the 'standard' profile",
  landlock: "the 'landlock-optional' profile",
  'seccomp.denyExecAfterStart': 'a custom profile with its own name',
} as const;

export function isBuiltinProfileName(value: unknown): value is BuiltinProfileName {
  return typeof value === 'string' && (BUILTIN_PROFILE_NAMES as readonly string[]).includes(value);
}

/**
 * Resolve a profile name (default 'strict') or a complete custom profile, apply
 * overrides, validate everything, and return a deeply frozen copy.
 */
export function resolveProfile(
  nameOrProfile: BuiltinProfileName | SandboxProfile = DEFAULT_PROFILE_NAME,
  overrides?: SandboxProfileOverrides,
): SandboxProfile {
  let base: SandboxProfile;
  if (typeof nameOrProfile === 'string') {
    if (!isBuiltinProfileName(nameOrProfile)) {
      invalid('profile', `profile must be one of ${quoteList(BUILTIN_PROFILE_NAMES)} or a profile object, got ${show(nameOrProfile)}`);
    }
    base = BUILTIN_PROFILES[nameOrProfile];
  } else if (isRecord(nameOrProfile)) {
    base = validateProfile(nameOrProfile, 'profile');
    if (isBuiltinProfileName(base.name)) {
      invalid('profile.name', `profile.name ${show(base.name)} is reserved for the built-in profile; give a custom profile its own name`);
    }
  } else {
    invalid('profile', `profile must be a profile name or a profile object, got ${show(nameOrProfile)}`);
  }
  if (overrides === undefined) return base;
  return applyOverrides(base, overrides);
}

function applyOverrides(base: SandboxProfile, overrides: unknown): SandboxProfile {
  if (!isRecord(overrides)) invalid('overrides', `overrides must be an object, got ${show(overrides)}`);
  checkKeys(overrides, ['filesystem', 'network', 'devices', 'seccomp', 'landlock'], 'overrides');
  const fs = optionalRecord(overrides.filesystem, 'overrides.filesystem');
  if (fs) checkKeys(fs, ['readOnly', 'readWrite'], 'overrides.filesystem');
  const rw = optionalRecord(fs?.readWrite, 'overrides.filesystem.readWrite');
  if (rw) checkKeys(rw, ['extra'], 'overrides.filesystem.readWrite');
  const sc = optionalRecord(overrides.seccomp, 'overrides.seccomp');
  if (sc) checkKeys(sc, ['defaultAction', 'errno', 'denyExecAfterStart'], 'overrides.seccomp');

  const merged = validateProfile(
    {
      name: base.name,
      filesystem: {
        readOnly: fs?.readOnly ?? base.filesystem.readOnly,
        readWrite: { scratch: true, extra: rw?.extra ?? base.filesystem.readWrite.extra },
      },
      network: overrides.network ?? base.network,
      devices: overrides.devices ?? base.devices,
      seccomp: { ...base.seccomp, ...(sc ?? {}) },
      landlock: overrides.landlock ?? base.landlock,
    },
    'overrides',
  );
  if (base.network === 'none' && merged.network !== 'none') weaken('network', base.name, base.network, merged.network);
  if (base.landlock === 'required' && merged.landlock !== 'required') weaken('landlock', base.name, base.landlock, merged.landlock);
  if (base.seccomp.denyExecAfterStart && !merged.seccomp.denyExecAfterStart) {
    weaken('seccomp.denyExecAfterStart', base.name, true, false);
  }
  return merged;
}

function weaken(option: keyof typeof LOOSER_PROFILE_HINT, profile: string, from: unknown, to: unknown): never {
  invalid(
    `overrides.${option}`,
    `overrides.${option} cannot loosen profile '${profile}' from ${show(from)} to ${show(to)}; ` +
      `weaker sandboxes are chosen by name: use ${LOOSER_PROFILE_HINT[option]}`,
  );
}

/**
 * Validate a complete profile. `where` prefixes option names in messages
 * ('profile' for a custom profile, 'overrides' when checking merged overrides).
 */
export function validateProfile(value: unknown, where = 'profile'): SandboxProfile {
  if (!isRecord(value)) invalid(where, `${where} must be an object, got ${show(value)}`);
  checkKeys(value, ['name', 'filesystem', 'network', 'devices', 'seccomp', 'landlock'], where);

  const name = value.name;
  if (typeof name !== 'string' || !/^[a-z0-9][a-z0-9._-]{0,63}$/i.test(name)) {
    invalid(`${where}.name`, `${where}.name must be 1-64 letters, digits, '.', '_' or '-', got ${show(name)}`);
  }

  const fs = requiredRecord(value.filesystem, `${where}.filesystem`);
  checkKeys(fs, ['readOnly', 'readWrite'], `${where}.filesystem`);
  const readOnly = pathList(fs.readOnly, `${where}.filesystem.readOnly`, (p, opt) => {
    if (p === '/') invalid(opt, `${opt} must not be '/': that would grant the whole filesystem`);
  });
  const rw = requiredRecord(fs.readWrite, `${where}.filesystem.readWrite`);
  checkKeys(rw, ['scratch', 'extra'], `${where}.filesystem.readWrite`);
  if (rw.scratch !== true) {
    invalid(`${where}.filesystem.readWrite.scratch`, `${where}.filesystem.readWrite.scratch must be true: every worker writes to its own scratch folder`);
  }
  const extra = pathList(rw.extra, `${where}.filesystem.readWrite.extra`, (p, opt) => {
    const tree = NEVER_WRITABLE.find((t) => p === t || p.startsWith(`${t}/`));
    if (p === '/' || tree !== undefined) {
      invalid(opt, `${opt} must not grant writes to ${show(p)} (${p === '/' ? 'the whole filesystem' : `inside ${tree}`})`);
    }
  });

  const network = oneOf(value.network, ['none', 'unix-only'] as const, `${where}.network`);
  const devices = pathList(value.devices, `${where}.devices`, (p, opt) => {
    if (!ALLOWED_DEVICES.includes(p)) {
      invalid(opt, `${opt} must be one of ${quoteList(ALLOWED_DEVICES)}, got ${show(p)}: workers never open GPU or other device files; the controller owns devices`);
    }
  });

  const sc = requiredRecord(value.seccomp, `${where}.seccomp`);
  checkKeys(sc, ['defaultAction', 'errno', 'denyExecAfterStart'], `${where}.seccomp`);
  const defaultAction = oneOf(sc.defaultAction, ['errno', 'kill'] as const, `${where}.seccomp.defaultAction`);
  const errno = oneOf(sc.errno, ['EPERM', 'EACCES'] as const, `${where}.seccomp.errno`);
  if (typeof sc.denyExecAfterStart !== 'boolean') {
    invalid(`${where}.seccomp.denyExecAfterStart`, `${where}.seccomp.denyExecAfterStart must be a boolean, got ${show(sc.denyExecAfterStart)}`);
  }
  const landlock = oneOf(value.landlock, ['required', 'best-effort'] as const, `${where}.landlock`);

  const profile: SandboxProfile = {
    name,
    filesystem: { readOnly, readWrite: { scratch: true, extra } },
    network,
    devices,
    seccomp: { defaultAction, errno, denyExecAfterStart: sc.denyExecAfterStart },
    landlock,
  };
  return deepFreeze(profile);
}

/** Absolute, normalised, printable paths; duplicates dropped, order kept. */
function pathList(value: unknown, option: string, extraCheck: (p: string, opt: string) => void): string[] {
  if (!Array.isArray(value)) invalid(option, `${option} must be an array of absolute paths, got ${show(value)}`);
  const out: string[] = [];
  value.forEach((p: unknown, i: number) => {
    const opt = `${option}[${i}]`;
    checkAbsolutePath(p, opt);
    extraCheck(p, opt);
    if (!out.includes(p)) out.push(p);
  });
  return out;
}

/** Shared with the SBPL compiler so every path that reaches a profile text passed the same gate. */
export function checkAbsolutePath(p: unknown, option: string): asserts p is string {
  if (typeof p !== 'string' || p.length === 0) invalid(option, `${option} must be a non-empty string, got ${show(p)}`);
  // Control characters (NUL above all) cannot be carried safely into a kernel
  // path, an SBPL string or a log line.
  if (/[\u0000-\u001f\u007f]/.test(p)) invalid(option, `${option} must not contain control characters (NUL, newline, ...), got ${show(p)}`);
  if (!p.startsWith('/')) invalid(option, `${option} must be an absolute path, got ${show(p)}`);
  if (p.length > 4095) invalid(option, `${option} is longer than PATH_MAX (4095 bytes)`);
  if (path.posix.normalize(p) !== p || (p.length > 1 && p.endsWith('/'))) {
    invalid(option, `${option} must be normalised (no '.', '..', '//' or trailing '/'), got ${show(p)}`);
  }
}

function oneOf<const T extends readonly string[]>(value: unknown, allowed: T, option: string): T[number] {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    invalid(option, `${option} must be one of ${quoteList(allowed)}, got ${show(value)}`);
  }
  return value as T[number];
}

function checkKeys(obj: Record<string, unknown>, known: readonly string[], where: string): void {
  for (const key of Object.keys(obj)) {
    if (!known.includes(key)) invalid(`${where}.${key}`, `${where}.${key} is not a known option (known: ${known.join(', ')})`);
  }
}

function requiredRecord(value: unknown, option: string): Record<string, unknown> {
  if (!isRecord(value)) invalid(option, `${option} must be an object, got ${show(value)}`);
  return value;
}

function optionalRecord(value: unknown, option: string): Record<string, unknown> | undefined {
  return value === undefined ? undefined : requiredRecord(value, option);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function invalid(option: string, message: string): never {
  throw new CaphostError(ErrorCode.INVALID_ARGUMENT, message, { details: { option } });
}

function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (value === undefined || typeof value === 'function' || typeof value === 'symbol') return String(value);
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}

function quoteList(items: readonly string[]): string {
  return items.map((s) => `'${s}'`).join(', ');
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
