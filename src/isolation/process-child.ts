/**
 * The pieces of a process worker's launch that are not the strategy itself: the child's Node
 * flags and environment, its output turned into log lines, and its exit put into words.
 */
import type { Readable } from 'node:stream';
import type { ResourceLimits } from 'node:worker_threads';
import type { Logger } from '../logger.js';

/** Node >= 22.14 can skip the SIGUSR1 watchdog thread, the one thread Landlock cannot reach. */
export const SIGUSR1_DISABLED = process.allowedNodeEnvironmentFlags.has('--disable-sigusr1');

/**
 * Node flags of the child. Never the controller's execArgv (an --inspect or --require there
 * must not reach untrusted code); heap limits from resourceLimits, as a thread worker gets them.
 */
export function childNodeFlags(limits: ResourceLimits | undefined): string[] {
  const flags: string[] = [];
  if (SIGUSR1_DISABLED) flags.push('--disable-sigusr1');
  if (limits?.maxOldGenerationSizeMb !== undefined) flags.push(`--max-old-space-size=${Math.max(1, Math.floor(limits.maxOldGenerationSizeMb))}`);
  // V8 sizes the young generation as three semi-spaces.
  if (limits?.maxYoungGenerationSizeMb !== undefined) flags.push(`--max-semi-space-size=${Math.max(1, Math.floor(limits.maxYoungGenerationSizeMb / 3))}`);
  return flags;
}

/** Passed through when set: they change formatting, not trust. */
const PASSED_ENV = ['TZ', 'LANG', 'LC_ALL', 'NODE_ENV'];

/**
 * The child's whole environment: never the controller's (it may hold credentials, and NODE_OPTIONS
 * would run code before the sandbox). HOME and TMPDIR point at scratch, so os.tmpdir() and
 * libraries that cache under $HOME write where the worker may write.
 */
export function childEnv(scratchDir: string): Record<string, string> {
  const env: Record<string, string> = { HOME: scratchDir, TMPDIR: scratchDir };
  for (const name of PASSED_ENV) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  return env;
}

/**
 * Calls onLine for each line of a text stream. A line longer than maxLength is cut there: the
 * cut part goes to onLine with `whole` false, the rest of it is dropped, so a peer that never
 * sends a newline costs at most maxLength of memory.
 */
export function splitLines(stream: Readable | null, maxLength: number, onLine: (line: string, whole: boolean) => void): void {
  if (stream === null) return;
  let pending = '';
  let skipping = false;
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    let from = 0;
    let at: number;
    while ((at = chunk.indexOf('\n', from)) >= 0) {
      if (!skipping) onLine(pending + chunk.slice(from, at), true);
      pending = '';
      skipping = false;
      from = at + 1;
    }
    if (skipping) return;
    pending += chunk.slice(from);
    if (pending.length > maxLength) {
      onLine(pending.slice(0, maxLength), false);
      pending = '';
      skipping = true;
    }
  });
  stream.on('end', () => {
    if (pending !== '' && !skipping) onLine(pending, true);
    pending = '';
  });
}

const MAX_OUTPUT_LINE = 8192;
const TAIL_LINES = 8;

/** Lines that say why a process is about to die (V8's fatal errors, process-entry's last words). */
const LAST_WORDS = /^(FATAL ERROR: |caphost-worker: )/;

/**
 * Turns a child's stdout or stderr into log lines. Keeps the last few, and the last "last words"
 * line, for crash messages (V8 prints a long native stack after its FATAL ERROR line).
 */
export function forwardOutput(stream: Readable | null, log: (line: string) => void): { tail(): string[] } {
  const tail: string[] = [];
  let lastWords: string | undefined;
  splitLines(stream, MAX_OUTPUT_LINE, (line, whole) => {
    const text = whole ? line : `${line}…`;
    if (text.trim() === '') return;
    log(text);
    if (LAST_WORDS.test(text)) lastWords = text;
    tail.push(text);
    if (tail.length > TAIL_LINES) tail.shift();
  });
  return { tail: () => (lastWords === undefined || tail.includes(lastWords) ? tail : [lastWords, ...tail]) };
}

export interface ExitFacts {
  readonly label: string;
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stderr: readonly string[];
  readonly profile: string;
  readonly limits: ResourceLimits | undefined;
}

/** Why a process worker ended, in words a person can act on. */
export function describeExit(f: ExitFacts): string {
  const said = [...f.stderr].reverse().find((l) => l.startsWith('caphost-worker: '));
  if (f.stderr.some((l) => /heap out of memory|Reached heap limit/.test(l))) {
    return `worker ${f.label} ran out of memory (resourceLimits ${JSON.stringify(f.limits ?? {})}); raise its resourceLimits or lower its memory use`;
  }
  if (f.signal === 'SIGSYS') {
    return `worker ${f.label} was killed by SIGSYS: it made a system call that sandbox profile '${f.profile}' forbids (seccomp defaultAction 'kill')`;
  }
  if (f.signal !== null) {
    const why = f.signal === 'SIGSEGV' || f.signal === 'SIGBUS' ? ' (a memory fault, often in a native addon)' : '';
    return `worker ${f.label} was killed by ${f.signal}${why}`;
  }
  if (said !== undefined) return `worker ${f.label} exited with code ${f.code}: ${said.slice('caphost-worker: '.length)}`;
  return `worker ${f.label} exited with code ${f.code}`;
}

/** Log sink of one worker's output stream. */
export const outputLog = (log: Logger, label: string, stream: 'stdout' | 'stderr') => (line: string) =>
  (stream === 'stdout' ? log.info : log.warn)(`[${label}] ${line}`, { stream });
