import assert from 'node:assert/strict';
import { test } from 'node:test';
import { scanInferRequest } from '../../src/server/infer-request-scan.js';
import { mulberry32 } from '../support/prng.js';

function generator(random: () => number): () => { text: string; duplicate: boolean } {
  let duplicate = false;
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const digits = (n: number, first = '0123456789') => {
    let out = pick([...first]);
    for (let i = 1; i < n; i++) out += pick([...'0123456789']);
    return out;
  };
  const ws = () => (random() < 0.7 ? '' : pick([' ', '\n', '\t', '\r\n  ', '   ']));
  const number = (): string => {
    if (random() < 0.03) return pick(['01', '1.', '.5', '-', '+1', '1e', '1e+', '--1', '0x10', 'NaN', 'Infinity', '1.5.2', '00']);
    let n = random() < 0.3 ? '-' : '';
    n += random() < 0.2 ? '0' : digits(1 + Math.floor(random() * (random() < 0.1 ? 22 : 6)), '123456789');
    if (random() < 0.6) n += `.${digits(1 + Math.floor(random() * (random() < 0.1 ? 22 : 5)))}`;
    if (random() < 0.08) n += `${pick(['e', 'E'])}${pick(['', '+', '-'])}${digits(1 + Math.floor(random() * 3))}`;
    return n;
  };
  const string = (): string => {
    const r = random();
    if (r < 0.8) return JSON.stringify(pick(['values', 'x', 'input_ids', 'FP32', 'INT32', 'BYTES', 'a b', '', 'm-1']));
    if (r < 0.9) return JSON.stringify(pick(['caf\u00e9', 'tab\there', 'quote"d', 'back\\slash', '\u2028', 'emoji \u{1f600}']));
    return pick(['"unterminated', "'single'", '"\\u0041"', '"ctl\u0001"']);
  };
  const array = (item: () => string, max: number) => `[${ws()}${Array.from({ length: Math.floor(random() * max) }, () => `${ws()}${item()}${ws()}`).join(',')}]`;
  const value = (): string => {
    const r = random();
    if (r < 0.85) return array(number, 20);
    if (r < 0.9) return array(() => array(number, 3), 3);
    if (r < 0.95) return array(() => pick(['true', 'false', 'null', '"s"']), 3);
    return pick(['{}', '"x"', '3', 'null']);
  };
  const tensor = (): string => {
    const fields = [
      ['name', string()],
      ['shape', random() < 0.9 ? array(() => String(Math.floor(random() * 20)), 3) : value()],
      ['datatype', string()],
      ['data', value()],
    ];
    if (random() < 0.05) fields.push(['parameters', '{"binary_data_size":4}']);
    if (random() < 0.05) fields.splice(Math.floor(random() * fields.length), 1);
    if (random() < 0.03) {
      fields.push(['name', string()]);
      duplicate = true;
    }
    for (let i = fields.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [fields[i], fields[j]] = [fields[j]!, fields[i]!];
    }
    return `{${ws()}${fields.map(([k, v]) => `${JSON.stringify(k)}${ws()}:${ws()}${v}`).join(`${ws()},${ws()}`)}${ws()}}`;
  };
  return () => {
    duplicate = false;
    const fields: string[] = [`"inputs":${ws()}${array(tensor, 3)}`];
    if (random() < 0.3) fields.push(`"id":${ws()}${random() < 0.9 ? string() : '7'}`);
    if (random() < 0.05) fields.push('"parameters":{}');
    if (random() < 0.05) fields.push('"outputs":[{"name":"x"}]');
    if (random() < 0.5) fields.reverse();
    let text = `${ws()}{${ws()}${fields.join(`${ws()},${ws()}`)}${ws()}}${ws()}`;
    const r = random();
    if (r < 0.03) text = text.slice(0, Math.floor(random() * text.length));
    else if (r < 0.05) text += pick(['x', '}', ',', '{}']);
    return { text, duplicate };
  };
}

test('what the scan reads is exactly what JSON.parse reads; everything else is left to JSON.parse', () => {
  const random = mulberry32(20261207);
  const next = generator(random);
  let scanned = 0;
  let usual = 0;
  for (let i = 0; i < 20_000; i++) {
    const { text, duplicate } = next();
    let ref: { id?: unknown; inputs?: unknown[] } | undefined;
    try {
      ref = JSON.parse(text) as typeof ref;
    } catch {
      ref = undefined;
    }
    const got = scanInferRequest(Buffer.from(text, 'utf8'));
    // The form the scan promises to take: it must not leave these to JSON.parse.
    if (ref !== undefined && !duplicate && !text.includes('\\') && isUsual(ref)) {
      usual++;
      assert.ok(got !== null, `the usual form was not scanned: ${JSON.stringify(text)}`);
    }
    if (got === null) continue;
    scanned++;
    assert.ok(ref !== undefined, `scanned text JSON.parse refuses: ${JSON.stringify(text)}`);
    assert.deepEqual(Object.keys(ref).sort(), got.id === undefined ? ['inputs'] : ['id', 'inputs'], text);
    assert.deepStrictEqual({ id: got.id, inputs: got.inputs }, { id: ref.id, inputs: ref.inputs }, text);
    for (const t of ref.inputs!) assert.deepEqual(Object.keys(t as object).sort(), ['data', 'datatype', 'name', 'shape'], text);
  }
  assert.ok(usual > 2000 && scanned >= usual, `scanned ${scanned}, usual ${usual}`);
});

const plain = (v: unknown) => typeof v === 'string' && /^[\x20-\x7e]*$/.test(v) && !/["\\]/.test(v);

function isUsual(ref: unknown): boolean {
  if (ref === null || typeof ref !== 'object' || Array.isArray(ref)) return false;
  const r = ref as Record<string, unknown>;
  if (Object.keys(r).some((k) => k !== 'inputs' && k !== 'id') || (r['id'] !== undefined && !plain(r['id']))) return false;
  const inputs = r['inputs'];
  return (
    Array.isArray(inputs) &&
    inputs.length > 0 &&
    inputs.every((t: unknown) => {
      if (t === null || typeof t !== 'object' || Array.isArray(t)) return false;
      const o = t as Record<string, unknown>;
      const keys = Object.keys(o).sort().join();
      const numbers = (a: unknown) => Array.isArray(a) && a.every((x) => typeof x === 'number');
      return keys === 'data,datatype,name,shape' && plain(o['name']) && plain(o['datatype']) && numbers(o['shape']) && numbers(o['data']);
    })
  );
}

test('numbers: signs, zeros, long fractions and exponents come out as JSON.parse makes them', () => {
  const numbers = ['0', '-0', '-0.0', '1', '-3.25', '0.1', '0.30000000000000004', '123456789012345', '1234567890123456789', '0.000001', '1e-7', '2.5E+3', '-1e308', '9007199254740993', '3.4028234663852886e38', '1.17549435e-38'];
  const got = scanInferRequest(Buffer.from(`{"inputs":[{"name":"x","shape":[${numbers.length}],"datatype":"FP64","data":[${numbers.join(',')}]}]}`));
  assert.ok(got !== null);
  assert.deepStrictEqual(got.inputs[0]!.data, numbers.map((n) => JSON.parse(n) as number));
});
