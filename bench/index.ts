/**
 * `npm run bench`: runs the chosen scopes in this one process (so every
 * baseline is measured on the same machine state as caphost), prints a table
 * per suite and writes the JSON record. Exits non-zero when any suite fails:
 * a bench that quietly skips caphost would report baselines as if all was well.
 *
 *   node dist/bench/index.js [--scope core[,gpu]]... [--quick] [--json PATH] [--list]
 */
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';
import { defaultScopes, SCOPES } from './scopes.js';
import { SuiteFailure } from './suite.js';
import { errorText, machineInfo, renderTable, suiteRecord, writeJson } from './report.js';

// dist/bench/index.js -> repository root; the default JSON path does not depend on cwd.
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const USAGE = `usage: npm run bench -- [--scope NAME[,NAME]]... [--quick] [--json PATH] [--list]
  --scope NAME  scope to run (repeatable, or a comma list; 'all' for every scope).
                Default: ${defaultScopes().join(', ')}
  --quick       short durations: a smoke run, not figures to quote
  --json PATH   where to write the JSON record (default bench/results/latest.json)
  --list        list the scopes and exit`;

function parse(): { scopes: string[]; quick: boolean; json: string; list: boolean } {
  const { values } = parseArgs({
    options: {
      scope: { type: 'string', multiple: true },
      quick: { type: 'boolean', default: false },
      json: { type: 'string' },
      list: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const requested = (values.scope ?? []).flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean);
  let scopes = requested.length === 0 ? defaultScopes() : requested;
  if (scopes.includes('all')) scopes = Object.keys(SCOPES);
  const unknown = scopes.filter((s) => !(s in SCOPES));
  if (unknown.length) throw new Error(`unknown scope ${unknown.join(', ')}; known: ${Object.keys(SCOPES).join(', ')}`);
  return {
    scopes: [...new Set(scopes)],
    quick: values.quick,
    json: values.json ? resolve(values.json) : resolve(ROOT, 'bench/results/latest.json'),
    list: values.list,
  };
}

async function main(): Promise<number> {
  let args: ReturnType<typeof parse>;
  try {
    args = parse();
  } catch (err) {
    console.error(`bench: ${err instanceof Error ? err.message : String(err)}\n${USAGE}`);
    return 2;
  }
  if (args.list) {
    for (const [name, s] of Object.entries(SCOPES)) {
      console.log(`${name.padEnd(8)} ${s.inDefault ? '[default]' : '         '} ${s.description}`);
    }
    return 0;
  }

  const pkg = JSON.parse(readFileSync(resolve(ROOT, 'package.json'), 'utf8')) as { version: string };
  const ctx = { quick: args.quick, log: (line: string) => console.error(`[bench] ${line}`) };
  const suites: Record<string, unknown>[] = [];
  const errors: string[] = [];
  const started = Date.now();

  for (const name of args.scopes) {
    try {
      const result = await SCOPES[name]!.run(ctx);
      console.log(renderTable(result));
      suites.push(suiteRecord(result));
    } catch (err) {
      // Print what was measured before the failure, then the failure itself.
      if (err instanceof SuiteFailure) {
        console.log(renderTable(err.partial));
        suites.push(suiteRecord(err.partial, err));
      } else {
        suites.push({ suite: name, ok: false, error: errorText(err) });
      }
      const text = `scope ${name} failed: ${errorText(err)}`;
      console.error(`\nbench: ${text}`);
      errors.push(text);
    }
  }

  await writeJson(args.json, {
    timestamp: new Date(started).toISOString(),
    ok: errors.length === 0,
    mode: args.quick ? 'quick' : 'full',
    scopes: args.scopes,
    durationMs: Date.now() - started,
    machine: machineInfo(),
    node: process.version,
    caphost: pkg.version,
    suites,
    errors,
  });
  console.log(`\nresults: ${args.json}`);
  return errors.length === 0 ? 0 : 1;
}

process.exitCode = await main();
// Every suite closes what it started; if something still holds the event loop
// open (a worker that did not stop), say so and fail rather than hang CI.
setTimeout(() => {
  console.error('bench: handles still open 5 s after the run ended (a worker or pool did not close); exiting');
  process.exit(1);
}, 5000).unref();
