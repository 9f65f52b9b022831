/** Shared helpers for the process-worker tests. */
import { readFileSync, readdirSync } from 'node:fs';
import type { WorkerEntry } from '../../src/index.js';
import type { Logger } from '../../src/logger.js';
import { BUILTIN_PROFILES, type SandboxProfile } from '../../src/isolation/sandbox/sandbox-profile.js';

export const fixture = (name: string): URL => new URL(`../fixtures/workers/${name}.js`, import.meta.url);

export const processWorker = (name: string, extra: Partial<WorkerEntry> = {}): WorkerEntry => ({ module: fixture(name), strategy: 'process', ...extra });

/** A custom profile: strict with changes (custom profiles need a name of their own). */
export function customProfile(name: string, change: (p: SandboxProfile) => Partial<SandboxProfile>): SandboxProfile {
  const base = structuredClone(BUILTIN_PROFILES.strict) as SandboxProfile;
  return { ...base, ...change(base), name };
}

/** Child processes of this process (Linux /proc), with their state letter ('Z' for a zombie). */
export function children(): { pid: number; state: string }[] {
  const out: { pid: number; state: string }[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === process.pid) out.push({ pid: Number(name), state: fields[0]! });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** A logger that keeps what it is told, for assertions. */
export function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const at = (level: string) => (message: string) => void lines.push(`${level} ${message}`);
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}
