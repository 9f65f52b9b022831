/**
 * The usual KServe v2 infer request, `{"inputs":[{"name","shape","datatype","data"}, ...]}` with
 * an optional string "id", flat numeric data, ASCII text and no escapes, read in one pass without
 * JSON.parse. JSON.parse builds a generic object (keys internalised, hidden classes searched,
 * every number through strtod) and was 7% of the event loop's samples per infer call (perf, 64
 * connections), the largest single piece of JavaScript.
 *
 * Anything else (parameters, outputs, nested or non-numeric data, escapes, non-ASCII, duplicate
 * keys, malformed JSON) returns null, and the caller takes the general path, which also words
 * every error. Numbers with exponents or over 15 digits are taken, through Number(). Where the scan succeeds, its fields are exactly what
 * JSON.parse gives for them (test/server/infer-request-scan.test.ts checks that over random input).
 */
import type { WireTensor } from './tensor-mapping.js';

export interface ScannedRequest {
  readonly id: string | undefined;
  readonly inputs: WireTensor[];
}

/** 10^k for k up to 15: a mantissa below 10^15 divided by one of these rounds exactly as strtod does. */
const POW10 = Array.from({ length: 16 }, (_, k) => 10 ** k);
const MAX_FAST_DIGITS = 15;

/** JSON's white space: space, line feed, carriage return, tab. */
const isSpace = (c: number): boolean => c === 32 || c === 10 || c === 13 || c === 9;

class Scanner {
  text = '';
  at = 0;
  bad = false;

  scan(text: string): ScannedRequest | null {
    this.text = text;
    this.at = 0;
    this.bad = false;
    let inputs: WireTensor[] | undefined;
    let id: string | undefined;
    if (!this.open(123 /* { */)) return null;
    for (;;) {
      const key = this.key();
      if (key === 'inputs' && inputs === undefined) inputs = this.tensors();
      else if (key === 'id' && id === undefined) id = this.string();
      else return null;
      if (this.bad) return null;
      const c = this.next();
      if (c === 125 /* } */) break;
      if (c !== 44 /* , */) return null;
    }
    this.space();
    if (this.at !== text.length || inputs === undefined || inputs.length === 0) return null;
    return { id, inputs };
  }

  space(): void {
    let c = this.text.charCodeAt(this.at);
    while (isSpace(c)) c = this.text.charCodeAt(++this.at);
  }

  /** The next character after white space, consumed. */
  next(): number {
    this.space();
    return this.text.charCodeAt(this.at++);
  }

  open(c: number): boolean {
    return this.next() === c;
  }

  /** `"key":` */
  key(): string | undefined {
    this.space();
    const key = this.string();
    if (this.bad || this.next() !== 58 /* : */) {
      this.bad = true;
      return undefined;
    }
    this.space();
    return key;
  }

  string(): string {
    const text = this.text;
    let at = this.at;
    if (text.charCodeAt(at) !== 34 /* " */) return this.fail('');
    const start = ++at;
    for (let c = text.charCodeAt(at); c !== 34; c = text.charCodeAt(++at)) {
      // Escapes, control characters, non-ASCII and the end of the text: the general path's.
      if (c === 92 || !(c >= 32 && c <= 126)) return this.fail('');
    }
    this.at = at + 1;
    return text.slice(start, at);
  }

  tensors(): WireTensor[] {
    const out: WireTensor[] = [];
    if (!this.open(91 /* [ */)) return this.fail(out);
    this.space();
    if (this.text.charCodeAt(this.at) === 93 /* ] */) {
      this.at++;
      return out;
    }
    for (;;) {
      const t = this.tensor();
      if (t === null) return this.fail(out);
      out.push(t);
      const c = this.next();
      if (c === 93) return out;
      if (c !== 44) return this.fail(out);
    }
  }

  tensor(): WireTensor | null {
    if (!this.open(123)) return null;
    let name: string | undefined;
    let datatype: string | undefined;
    let shape: number[] | undefined;
    let data: number[] | undefined;
    for (;;) {
      const key = this.key();
      if (key === 'name' && name === undefined) name = this.string();
      else if (key === 'datatype' && datatype === undefined) datatype = this.string();
      else if (key === 'shape' && shape === undefined) shape = this.numbers();
      else if (key === 'data' && data === undefined) data = this.numbers();
      else return null;
      if (this.bad) return null;
      const c = this.next();
      if (c === 125) break;
      if (c !== 44) return null;
    }
    if (name === undefined || datatype === undefined || shape === undefined || data === undefined) return null;
    return { name, shape, datatype, data };
  }

  /** A flat array of numbers. Locals, not fields, in the loops: this is where the time goes. */
  numbers(): number[] {
    const out: number[] = [];
    const text = this.text;
    let at = this.at;
    if (text.charCodeAt(at) !== 91) return this.fail(out);
    let c = text.charCodeAt(++at);
    while (isSpace(c)) c = text.charCodeAt(++at);
    if (c === 93) {
      this.at = at + 1;
      return out;
    }
    for (;;) {
      while (isSpace(c)) c = text.charCodeAt(++at);
      // A JSON number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
      const start = at;
      const negative = c === 45;
      if (negative) c = text.charCodeAt(++at);
      let mantissa = 0;
      let digits = 0;
      if (c === 48) c = text.charCodeAt(++at);
      else if (c >= 49 && c <= 57) {
        do {
          mantissa = mantissa * 10 + (c - 48);
          digits++;
          c = text.charCodeAt(++at);
        } while (c >= 48 && c <= 57);
      } else return this.fail(out);
      let fraction = 0;
      if (c === 46 /* . */) {
        c = text.charCodeAt(++at);
        if (!(c >= 48 && c <= 57)) return this.fail(out);
        do {
          mantissa = mantissa * 10 + (c - 48);
          digits++;
          fraction++;
          c = text.charCodeAt(++at);
        } while (c >= 48 && c <= 57);
      }
      if (c === 101 || c === 69 /* e E */) {
        c = text.charCodeAt(++at);
        if (c === 43 || c === 45) c = text.charCodeAt(++at);
        if (!(c >= 48 && c <= 57)) return this.fail(out);
        do c = text.charCodeAt(++at);
        while (c >= 48 && c <= 57);
        out.push(Number(text.slice(start, at)));
      } else if (c >= 48 && c <= 57) {
        return this.fail(out); // a leading zero followed by digits is not JSON ("01")
      } else if (digits > MAX_FAST_DIGITS) {
        out.push(Number(text.slice(start, at)));
      } else {
        // Both exact doubles, so the one division rounds as strtod does (Clinger's fast path).
        const value = fraction === 0 ? mantissa : mantissa / POW10[fraction]!;
        out.push(negative ? -value : value);
      }
      while (isSpace(c)) c = text.charCodeAt(++at);
      at++;
      if (c === 93) {
        this.at = at;
        return out;
      }
      if (c !== 44) return this.fail(out);
      c = text.charCodeAt(at);
    }
  }

  fail<T>(value: T): T {
    this.bad = true;
    return value;
  }
}

const scanner = new Scanner();

/** The request's id and inputs, as JSON.parse would give them, or null: take the general path. */
export function scanInferRequest(body: Buffer): ScannedRequest | null {
  return scanner.scan(body.toString('latin1'));
}
