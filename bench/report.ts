/**
 * Output: one aligned table per suite on stdout, and the JSON record of the
 * whole run (machine, versions, every figure with unit, ratios and verdicts)
 * that later runs and CI compare against.
 */
import os from 'node:os';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { evaluateTarget, metricOf, ratiosOf, type SuiteResult } from './suite.js';

export function machineInfo(): Record<string, unknown> {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cpus: cpus.length,
    availableParallelism: os.availableParallelism(),
    totalMemoryBytes: os.totalmem(),
    platform: process.platform,
    arch: process.arch,
    kernelRelease: os.release(),
  };
}

/** The JSON form of one suite: each figure carries its unit, ratios and target verdicts. */
export function suiteRecord(s: SuiteResult, error?: unknown): Record<string, unknown> {
  const targets = s.targets.map((t) => evaluateTarget(s, t));
  return {
    suite: s.suite,
    title: s.title,
    ok: error === undefined,
    ...(error === undefined ? {} : { error: errorText(error) }),
    baselines: s.baselines,
    figures: s.figures.map((f) => {
      const m = metricOf(s, f.metric);
      return {
        metric: f.metric,
        label: m.label,
        subject: f.subject,
        value: f.value,
        unit: m.unit,
        better: m.better,
        vs: ratiosOf(s, f),
        targets: targets.filter((t) => t.metric === f.metric && t.subject === f.subject),
        ...(f.detail ? { detail: f.detail } : {}),
      };
    }),
    targets,
    notes: s.notes,
  };
}

export async function writeJson(path: string, record: unknown): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, JSON.stringify(record, null, 2) + '\n');
}

export function errorText(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause instanceof Error ? `\n  caused by: ${err.cause.stack ?? err.cause.message}` : '';
  return `${err.message}${cause}`;
}

export function formatValue(v: number, unit: string): string {
  if (!Number.isFinite(v)) return String(v);
  if (unit === 'calls/s') return Math.round(v).toLocaleString('en-US');
  if (unit.startsWith('%')) return v.toFixed(2);
  if (v < 10) return v.toFixed(2);
  if (v < 1000) return v.toFixed(1);
  return Math.round(v).toLocaleString('en-US');
}

function formatSpeedup(x: number): string {
  return `${x >= 10 ? x.toFixed(0) : x.toFixed(2)}x`;
}

/**
 * Rows are metrics, columns are subjects; the first subject (the one under
 * test) also gets its speedup over each baseline and its targets.
 */
export function renderTable(s: SuiteResult): string {
  const [primary] = s.subjects;
  const verdicts = s.targets.map((t) => evaluateTarget(s, t));
  const header = [
    'figure',
    'unit',
    ...s.subjects,
    ...s.baselines.map((b) => `${primary} vs ${b}`),
    'target',
    'result',
  ];
  const rows: string[][] = [header];
  for (const m of s.metrics) {
    const cells = s.subjects.map((subj) => s.figures.find((f) => f.metric === m.key && f.subject === subj));
    if (cells.every((c) => c === undefined)) continue;
    const mine = cells[0];
    const ratios = mine ? ratiosOf(s, mine) : {};
    const own = verdicts.filter((v) => v.metric === m.key && v.subject === primary);
    rows.push([
      m.label,
      m.unit,
      ...cells.map((c) => (c ? formatValue(c.value, m.unit) : '—')),
      ...s.baselines.map((b) => (ratios[b] ? formatSpeedup(ratios[b].speedup) : '—')),
      own.map((v) => v.text).join('; '),
      own.length === 0 ? '' : own.every((v) => v.pass) ? 'PASS' : 'FAIL',
    ]);
  }
  const widths = header.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  // Text columns left-aligned, numbers right-aligned so digits line up.
  const leftAligned = new Set([0, 1, header.length - 2, header.length - 1]);
  const line = (r: string[]): string =>
    r.map((c, i) => (leftAligned.has(i) ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  const rule = '-'.repeat(widths.reduce((a, w) => a + w + 2, -2));
  const passed = verdicts.filter((v) => v.pass).length;
  return [
    `\n${s.title}`,
    rule,
    line(rows[0]!),
    rule,
    ...rows.slice(1).map(line),
    rule,
    ...(verdicts.length ? [`targets: ${passed}/${verdicts.length} met`] : []),
    ...s.notes.map((n) => `note: ${n}`),
  ].join('\n');
}
