/**
 * CPU seconds (utime + stime) of every descendant of a process, read from
 * /proc/<pid>/stat (Linux only). process.cpuUsage() covers the calling
 * process alone, so process workers need this to be counted at all.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

let clockTicks: number | undefined;

function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

interface Stat {
  ppid: number;
  cpuTicks: number;
}

/** Fields after the `(comm)`, which may itself hold spaces and parentheses. */
function readStat(pid: number): Stat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined; // gone between readdir and read
  }
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
  return { ppid: Number(rest[1]), cpuTicks: Number(rest[11]) + Number(rest[12]) };
}

/** pid -> CPU seconds for every live descendant of `root` (children, grandchildren...). */
export function childrenCpuSeconds(root: number): Map<number, number> {
  if (process.platform !== 'linux') throw new Error('counting worker-process CPU needs /proc (Linux)');
  const stats = new Map<number, Stat>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = readStat(Number(name));
    if (s) stats.set(Number(name), s);
  }
  const hz = ticksPerSecond();
  const out = new Map<number, number>();
  const walk = (parent: number): void => {
    for (const [pid, s] of stats) {
      if (s.ppid === parent && !out.has(pid)) {
        out.set(pid, s.cpuTicks / hz);
        walk(pid);
      }
    }
  };
  walk(root);
  return out;
}
