/**
 * The same SandboxProfile as an SBPL (Seatbelt) profile for macOS sandbox-exec.
 *
 * Default deny, then the fewest allows a Node worker needs: read its runtime,
 * its module and the profile's read-only paths; write only its scratch folder;
 * no network (unless the profile says 'unix-only'), no IOKit, no fork. Seatbelt
 * has no syscall filter, so seccomp settings do not apply here, and Landlock's
 * role is played by the file rules themselves.
 *
 * Paths are embedded as SBPL string literals: only '\' and '"' need escaping,
 * and every control character (NUL above all) is refused, since TinyScheme's
 * reader would either end the string early or read an escape we did not mean.
 * Seatbelt matches resolved paths, so the /tmp, /var and /etc symlinks are
 * rewritten to their /private targets; other symlinks must be resolved by the
 * caller (pass realpath()s).
 *
 * Not verified on a Mac in this repository's CI (Linux only); the macOS launcher's
 * break-out test is where these rules meet the real kernel.
 */
import path from 'node:path';
import { CaphostError, ErrorCode } from '../../errors.js';
import { checkAbsolutePath, validateProfile, type SandboxProfile } from './sandbox-profile.js';

export interface SbplOptions {
  /** The worker's own writable folder. */
  readonly scratchDir: string;
  /** The folder holding the worker module; readable, not writable, not mappable as code. */
  readonly moduleDir: string;
  /** The Node executable sandbox-exec will exec (a resolved path). */
  readonly nodeBinary: string;
  /** More read-only folders, on top of the profile's. */
  readonly extraReadOnly?: readonly string[];
  /** Folders with the Node binary's own dylibs (e.g. a Homebrew lib dir): readable and mappable as code. */
  readonly libraryDirs?: readonly string[];
}

/** Where the system's libraries and dyld's shared cache live across macOS 10.15-15. */
const SYSTEM_CODE_DIRS = [
  '/usr/lib',
  '/System/Library',
  '/System/Cryptexes/OS',
  '/System/Volumes/Preboot/Cryptexes/OS',
  '/private/var/db/dyld',
];

/** Time-zone data that libc and ICU read for Date. */
const SYSTEM_DATA_DIRS = ['/usr/share/zoneinfo', '/private/var/db/timezone'];
const SYSTEM_DATA_FILES = ['/private/etc/localtime'];

/**
 * The only Mach service a plain Node process looks up by itself: libc's
 * time-zone code registers for change notifications through notifyd. Left out
 * on purpose: opendirectoryd (user and group lookups; os.userInfo() fails
 * instead of revealing the directory), trustd/securityd (Node carries its own CA
 * store), logd and diagnosticd (workers log through their ring).
 */
const MACH_SERVICES = ['com.apple.system.notification_center'];

const PRIVATE_SYMLINKS = ['/tmp', '/var', '/etc'];

export function compileSbplProfile(profile: SandboxProfile, options: SbplOptions): string {
  const checked = validateProfile(profile, 'profile');
  if (typeof options !== 'object' || options === null) {
    invalid('options', 'options must be an object with scratchDir, moduleDir and nodeBinary');
  }
  const scratch = macPath(options.scratchDir, 'options.scratchDir');
  if (scratch === '/' || scratch === '/private') invalid('options.scratchDir', `options.scratchDir must be a folder of its own, got ${JSON.stringify(scratch)}`);
  const moduleDir = macPath(options.moduleDir, 'options.moduleDir');
  const node = macPath(options.nodeBinary, 'options.nodeBinary');
  const extraReadOnly = pathArray(options.extraReadOnly, 'options.extraReadOnly');
  const libraryDirs = pathArray(options.libraryDirs, 'options.libraryDirs');
  const profileReadOnly = checked.filesystem.readOnly.map((p, i) => macPath(p, `profile.filesystem.readOnly[${i}]`));
  const extraWritable = checked.filesystem.readWrite.extra.map((p, i) => macPath(p, `profile.filesystem.readWrite.extra[${i}]`));
  const devices = checked.devices.map((p, i) => macPath(p, `profile.devices[${i}]`));

  const readOnly = unique([moduleDir, ...profileReadOnly, ...extraReadOnly]);
  const writable = unique([scratch, ...extraWritable]);
  const code = unique([...SYSTEM_CODE_DIRS, ...libraryDirs]);
  const granted = [node, ...readOnly, ...writable, ...code, ...SYSTEM_DATA_DIRS, ...SYSTEM_DATA_FILES, ...devices];

  const lines: string[] = [
    `;; caphost process-worker sandbox, profile '${checked.name}' (generated; do not edit)`,
    '(version 1)',
    '(deny default)',
    '',
    ';; Spelled out although (deny default) covers them, so a reader need not prove a negative.',
    '(deny process-fork)',
    '(deny iokit-open)',
  ];

  if (checked.network === 'none') {
    lines.push('(deny network*)');
  } else {
    lines.push(
      '',
      ";; network 'unix-only': AF_UNIX sockets may connect to local unix sockets; no IP, no bind, no inbound.",
      '(allow system-socket (socket-domain AF_UNIX))',
      '(allow network-outbound (remote unix-socket (path-regex #"^/")))',
    );
  }

  lines.push(
    '',
    ';; sandbox-exec applies this profile and then execs Node, so exactly that binary may be executed;',
    ';; a re-exec of Node inherits this same profile.',
    `(allow process-exec ${literal(node)})`,
    `(allow file-read* ${literal(node)})`,
    '',
    ";; Node's libraries and the system's (dyld and its shared cache): read and map as code.",
    ...allow('file-read* file-map-executable', code.map(subpath)),
    '',
    ';; Time-zone data.',
    ...allow('file-read*', [...SYSTEM_DATA_DIRS.map(subpath), ...SYSTEM_DATA_FILES.map(literal)]),
    '',
    ';; The worker module and the read-only paths of the profile.',
    ...allow('file-read*', readOnly.map(subpath)),
    '',
    ';; Writes: the scratch folder only (plus any extra the profile names).',
    ...allow('file-read* file-write*', writable.map(subpath)),
    '',
    ';; Devices the profile grants.',
    ...allow('file-read* file-write-data file-ioctl', devices.map(literal)),
    '',
    ';; realpath() and module resolution lstat every ancestor of a granted path, and the /tmp, /var',
    ';; and /etc links that lead to /private; metadata only, no listing.',
    ...allow('file-read-metadata', unique([...ancestors(granted), ...PRIVATE_SYMLINKS]).sort().map(literal)),
    '',
    ';; Hardware and OS facts (CPU count, page size, OS version) that libuv and V8 query.',
    '(allow sysctl-read)',
    '',
    ...allow('mach-lookup', MACH_SERVICES.map((s) => `(global-name ${quote(s)})`)),
    '',
    ';; Signals and process information about itself only.',
    '(allow signal (target self))',
    '(allow process-info* (target self))',
    '',
  );
  return lines.join('\n');
}

/** An SBPL string literal; refuses what cannot be written safely (see the file comment). */
export function quoteSbplString(value: string): string {
  if (typeof value !== 'string') invalid('value', `an SBPL string must be a string, got ${typeof value}`);
  if (/[\u0000-\u001f\u007f]/.test(value)) {
    invalid('value', `an SBPL string cannot carry control characters (NUL, newline, ...): ${JSON.stringify(value)}`);
  }
  return `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/**
 * One allow rule over the given filters. An allow with no filter would allow the
 * operation everywhere, so an empty list (e.g. a profile with no devices) yields
 * no rule at all, never a bare one.
 */
function allow(operations: string, filters: readonly string[]): string[] {
  if (filters.length === 0) return [`;; (no ${operations} grants)`];
  return [`(allow ${operations}${filters.map((f) => `\n  ${f}`).join('')})`];
}

const quote = quoteSbplString;
const literal = (p: string): string => `(literal ${quote(p)})`;
const subpath = (p: string): string => `(subpath ${quote(p)})`;

/** Validate an absolute path and rewrite /tmp, /var and /etc to the /private paths Seatbelt sees. */
function macPath(value: unknown, option: string): string {
  checkAbsolutePath(value, option);
  const link = PRIVATE_SYMLINKS.find((l) => value === l || value.startsWith(`${l}/`));
  return link === undefined ? value : `/private${value}`;
}

function pathArray(value: unknown, option: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) invalid(option, `${option} must be an array of absolute paths, got ${typeof value}`);
  return value.map((p: unknown, i: number) => macPath(p, `${option}[${i}]`));
}

/** Every proper ancestor of the given paths, root included, sorted. */
function ancestors(paths: readonly string[]): string[] {
  const out = new Set<string>();
  for (const p of paths) {
    for (let dir = path.posix.dirname(p); ; dir = path.posix.dirname(dir)) {
      out.add(dir);
      if (dir === '/') break;
    }
  }
  return [...out].sort();
}

function unique(items: readonly string[]): string[] {
  return [...new Set(items)];
}

function invalid(option: string, message: string): never {
  throw new CaphostError(ErrorCode.INVALID_ARGUMENT, message, { details: { option } });
}
