/**
 * The controller's half of the sandbox: turns a profile and one worker's folders into the
 * exact rules its child applies (apply-sandbox.ts). Computed in trusted code, per start.
 *
 * What a Linux worker may read, beyond the profile's own list:
 * - the Node binary, the system's shared-library folders and ld.so.cache (dlopen of an addon
 *   that links libstdc++), time-zone data (Date);
 * - caphost's own dist/, node_modules/ and package.json (the worker runtime, already loaded,
 *   plus protobufjs's lazy requires);
 * - the worker module's folder, and the node_modules/ folders and package.json files on the
 *   way up from it: Node's resolver reads them to import the module's dependencies and to learn
 *   whether a .js file is ESM ("type" in the nearest package.json; an unreadable one would be
 *   taken as absent, and the module misparsed).
 * It may write only its scratch folder (and the profile's extra folders), and open only the
 * profile's device files. Everything else, /proc included, is denied.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CaphostError, ErrorCode } from '../../errors.js';
import type { SandboxPlan } from './apply-sandbox.js';
import type { SandboxProfile } from './sandbox-profile.js';
import { LANDLOCK_ABI_NET, type SandboxSupport } from './sandbox-support.js';
import { compileSeccompProgram, currentSeccompArch } from './seccomp-bpf.js';

/** Compiled to dist/src/isolation/sandbox/: the package root is four levels up. */
export const PACKAGE_ROOT = fileURLToPath(new URL('../../../../', import.meta.url)).replace(/\/$/, '');

const SYSTEM_READ_ONLY = [
  '/lib',
  '/lib64',
  '/usr/lib',
  '/usr/lib64',
  '/usr/local/lib',
  '/etc/ld.so.cache',
  '/etc/localtime',
  '/usr/share/zoneinfo',
];

export interface PlanInput {
  readonly profile: SandboxProfile;
  readonly support: SandboxSupport;
  /** Resolved (realpath) folders. */
  readonly scratchDir: string;
  readonly moduleDir: string;
  readonly nodeBinary: string;
  /** Whether the launcher passes --disable-sigusr1 (Node >= 22.14), so no thread escapes Landlock. */
  readonly sigusr1Disabled: boolean;
}

/** node_modules folders and package.json files Node's resolver reads from `dir` up to the root. */
export function resolverPaths(dir: string): string[] {
  const out: string[] = [];
  for (let at = dir; ; at = path.dirname(at)) {
    for (const candidate of [path.join(at, 'node_modules'), path.join(at, 'package.json')]) {
      if (existsSync(candidate)) out.push(candidate);
    }
    if (at === path.dirname(at)) return out;
  }
}

export function moduleFolderProblem(moduleDir: string): string | undefined {
  if (moduleDir === '/' || moduleDir === path.dirname(moduleDir)) {
    return `the worker module lies in ${moduleDir}, and its folder is granted to the worker: move it into a folder of its own`;
  }
  return undefined;
}

export function planSandbox(input: PlanInput): SandboxPlan {
  const { profile, support } = input;
  const problem = moduleFolderProblem(input.moduleDir);
  if (problem !== undefined) throw new CaphostError(ErrorCode.INVALID_ARGUMENT, problem, { details: { module: input.moduleDir } });
  if (support.platform === 'darwin') {
    return { profile: profile.name, platform: 'darwin', landlock: null, seccomp: '', toleratedUnrestrictedThreads: 0 };
  }
  const readOnly = unique([
    input.nodeBinary,
    ...SYSTEM_READ_ONLY,
    path.join(PACKAGE_ROOT, 'dist'),
    path.join(PACKAGE_ROOT, 'node_modules'),
    path.join(PACKAGE_ROOT, 'package.json'),
    input.moduleDir,
    ...resolverPaths(input.moduleDir),
    ...profile.filesystem.readOnly,
  ]);
  const readWrite = unique([input.scratchDir, ...profile.filesystem.readWrite.extra, ...profile.devices]);
  const landlock = support.landlockAbi > 0 ? { readOnly, readWrite, denyTcp: support.landlockAbi >= LANDLOCK_ABI_NET } : null;
  return {
    profile: profile.name,
    platform: 'linux',
    landlock,
    seccomp: Buffer.from(compileSeccompProgram(profile, currentSeccompArch())).toString('base64'),
    toleratedUnrestrictedThreads: input.sigusr1Disabled ? 0 : 1,
  };
}

function unique(paths: readonly string[]): string[] {
  return [...new Set(paths)];
}
