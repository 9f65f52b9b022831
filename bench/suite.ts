/**
 * The shape every bench scope returns, and the one place where figures get
 * their ratios and target verdicts. Suites only record raw measurements; the
 * arithmetic that turns them into "3.1x piscina, PASS" lives here so that
 * every scope (core, gpu, serve, mesh, http...) reports the same way.
 */

export type Better = 'lower' | 'higher';

export interface Metric {
  /** Stable key used in JSON, e.g. 'seq64.busy.p50'. */
  key: string;
  label: string;
  unit: string;
  better: Better;
}

export interface Figure {
  metric: string;
  subject: string;
  value: number;
  /** Anything that explains the number (best inFlight, sample count...). */
  detail?: Record<string, unknown>;
}

export interface Target {
  metric: string;
  subject: string;
  op: '<=' | '<' | '>=' | '>';
  threshold: number;
  /**
   * When set, the target is on the speedup against this baseline subject
   * (e.g. ">= 20x piscina") instead of on the raw value.
   */
  against?: string;
}

export interface SuiteResult {
  suite: string;
  title: string;
  /** Column order for the table; the first is the subject under test. */
  subjects: string[];
  /** Subjects the others are compared with, measured in the same process. */
  baselines: string[];
  metrics: Metric[];
  figures: Figure[];
  targets: Target[];
  notes: string[];
}

export interface Ratio {
  baseline: number;
  /** value / baseline, as measured. */
  ratio: number;
  /** >1 means the subject is better than the baseline, whatever the metric's direction. */
  speedup: number;
}

export interface TargetVerdict extends Target {
  text: string;
  actual: number | null;
  pass: boolean;
}

/** Thrown by a suite that failed part-way: keeps what was measured so it still gets printed. */
export class SuiteFailure extends Error {
  constructor(
    readonly partial: SuiteResult,
    cause: unknown,
  ) {
    super(`${partial.suite}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'SuiteFailure';
  }
}

export function newSuite(init: Omit<SuiteResult, 'figures' | 'notes'>): SuiteResult {
  return { ...init, figures: [], notes: [] };
}

/** Records one figure of a suite. */
export function addFigure(s: SuiteResult, metric: string, subject: string, value: number, detail?: Record<string, unknown>): void {
  s.figures.push(detail ? { metric, subject, value, detail } : { metric, subject, value });
}

export function findFigure(s: SuiteResult, metric: string, subject: string): Figure | undefined {
  return s.figures.find((f) => f.metric === metric && f.subject === subject);
}

export function metricOf(s: SuiteResult, key: string): Metric {
  const m = s.metrics.find((x) => x.key === key);
  if (!m) throw new Error(`suite ${s.suite}: figure for unknown metric ${key}`);
  return m;
}

/** Ratios of one figure against every baseline that measured the same metric. */
export function ratiosOf(s: SuiteResult, f: Figure): Record<string, Ratio> {
  const out: Record<string, Ratio> = {};
  const better = metricOf(s, f.metric).better;
  for (const b of s.baselines) {
    if (b === f.subject) continue;
    const base = findFigure(s, f.metric, b);
    if (!base || base.value === 0 || f.value === 0) continue;
    const ratio = f.value / base.value;
    out[b] = { baseline: base.value, ratio, speedup: better === 'lower' ? 1 / ratio : ratio };
  }
  return out;
}

export function evaluateTarget(s: SuiteResult, t: Target): TargetVerdict {
  const unit = metricOf(s, t.metric).unit;
  const sym = { '<=': '≤', '<': '<', '>=': '≥', '>': '>' }[t.op];
  const text = t.against
    ? `${sym} ${t.threshold}x ${t.against}`
    : `${sym} ${t.threshold.toLocaleString('en-US')} ${unit}`;
  const f = findFigure(s, t.metric, t.subject);
  let actual: number | null = null;
  if (f) actual = t.against ? (ratiosOf(s, f)[t.against]?.speedup ?? null) : f.value;
  const pass =
    actual !== null &&
    (t.op === '<=' ? actual <= t.threshold
      : t.op === '<' ? actual < t.threshold
        : t.op === '>=' ? actual >= t.threshold
          : actual > t.threshold);
  return { ...t, text, actual, pass };
}

/** What every scope's runner is given. */
export interface RunContext {
  /** Short durations: a smoke run that proves the suite works, not figures to quote. */
  quick: boolean;
  /** Progress lines (stderr), so a long full run shows where it is. */
  log(line: string): void;
}

export type ScopeRunner = (ctx: RunContext) => Promise<SuiteResult>;
