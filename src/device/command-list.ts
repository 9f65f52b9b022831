/**
 * A command list: ops recorded once and run in order on a device stream with one submission.
 * It is packed as it is built into the layout native/device/command_list.h reads (a
 * Float64Array of OP_WORDS per op plus the handles it names), so a list built once, such as a
 * model's forward pass, is submitted again without any per-op work in JavaScript.
 *
 * Shapes, dtypes, byte ranges and rights are checked by the controller's device layer when
 * the list is submitted, with errors that name the op and the operand; here only the form of
 * the arguments is checked.
 */
import { CaphostError, ErrorCode } from '../errors.js';
import { DTYPE_CODE } from './dtype.js';
import { DeviceTensor, MAX_RANK } from './device-tensor.js';

export const OP_KIND = {
  matmul: 0, add: 1, mul: 2, scale: 3, gelu: 4, relu: 5, silu: 6, softmax: 7, layerNorm: 8, rmsNorm: 9,
  embedding: 10, attention: 11, meanPool: 12, l2Normalize: 13, cast: 14, copy: 15,
} as const;
export type OpName = keyof typeof OP_KIND;

const HEADER_WORDS = 8;
const TENSOR_WORDS = 10;
const MAX_INPUTS = 4;
/** Words per op; must equal the addon's opWords (checked by the tests). */
export const OP_WORDS = HEADER_WORDS + (MAX_INPUTS + 1) * TENSOR_WORDS;

const FLAG_TRANS_A = 1;
const FLAG_TRANS_B = 2;
const FLAG_GELU_TANH = 4;
const FLAG_CAUSAL = 8;

export type Activation = 'none' | 'relu' | 'gelu' | 'gelu_tanh';
const ACTIVATION_CODE: Readonly<Record<Activation, number>> = { none: 0, relu: 1, gelu_tanh: 2, gelu: 3 };

export interface MatmulOptions {
  /** f32 [N], added to every row before the activation. */
  readonly bias?: DeviceTensor;
  /** a is stored [.., K, M] and used transposed. */
  readonly transA?: boolean;
  /** b is stored [.., N, K] and used transposed (the layout of PyTorch's Linear weights). */
  readonly transB?: boolean;
  /** Scales the product before the bias. Default 1. */
  readonly alpha?: number;
  /** 'gelu' is the erf form, 'gelu_tanh' the approximation. Default 'none'. */
  readonly activation?: Activation;
}

export interface AttentionOptions {
  /** Heads: q, k and v are [B, S, heads * headSize]. */
  readonly heads: number;
  /** i32 [B, Sk]: 0 masks a key out (padding). */
  readonly mask?: DeviceTensor;
  /** Each query sees only keys up to its own position. */
  readonly causal?: boolean;
  /** Default 1 / sqrt(headSize). */
  readonly scale?: number;
}

export interface EpsOptions {
  readonly eps?: number;
}

interface OpSpec {
  readonly kind: OpName;
  readonly inputs: readonly DeviceTensor[];
  readonly out: DeviceTensor;
  readonly flags?: number;
  readonly i0?: number;
  readonly f0?: number;
}

export class CommandList {
  #words = new Float64Array(OP_WORDS * 8);
  #count = 0;
  readonly #handles: string[] = [];
  readonly #handleIndex = new Map<string, number>();
  readonly #names: OpName[] = [];

  /** Ops recorded so far. */
  get length(): number {
    return this.#count;
  }

  /** Op names in order (for logs and errors). */
  get ops(): readonly OpName[] {
    return this.#names;
  }

  /** The packed form the device layer runs: the words of every op and the handles they name. */
  encoded(): { readonly handles: readonly string[]; readonly words: Float64Array } {
    return { handles: this.#handles, words: this.#words.subarray(0, this.#count * OP_WORDS) };
  }

  /** out = act(alpha · op(a) · op(b) + bias); batched over leading axes; b may be rank 2 for every batch. */
  matmul(a: DeviceTensor, b: DeviceTensor, out: DeviceTensor, options: MatmulOptions = {}): this {
    const activation = options.activation ?? 'none';
    if (!(activation in ACTIVATION_CODE)) this.#fail('matmul', `activation must be one of ${Object.keys(ACTIVATION_CODE).join(', ')}`);
    const alpha = options.alpha ?? 1;
    if (!Number.isFinite(alpha)) this.#fail('matmul', 'alpha must be a finite number');
    const flags = (options.transA === true ? FLAG_TRANS_A : 0) | (options.transB === true ? FLAG_TRANS_B : 0);
    const inputs = options.bias === undefined ? [a, b] : [a, b, options.bias];
    return this.#push({ kind: 'matmul', inputs, out, flags, i0: ACTIVATION_CODE[activation], f0: alpha });
  }

  /** out = a + b (b: a's shape, or a's last axis broadcast over rows). */
  add(a: DeviceTensor, b: DeviceTensor, out: DeviceTensor): this {
    return this.#push({ kind: 'add', inputs: [a, b], out });
  }

  mul(a: DeviceTensor, b: DeviceTensor, out: DeviceTensor): this {
    return this.#push({ kind: 'mul', inputs: [a, b], out });
  }

  scale(x: DeviceTensor, out: DeviceTensor, alpha: number): this {
    if (!Number.isFinite(alpha)) this.#fail('scale', 'alpha must be a finite number');
    return this.#push({ kind: 'scale', inputs: [x], out, f0: alpha });
  }

  gelu(x: DeviceTensor, out: DeviceTensor, options: { readonly approximate?: 'erf' | 'tanh' } = {}): this {
    const approximate = options.approximate ?? 'erf';
    if (approximate !== 'erf' && approximate !== 'tanh') this.#fail('gelu', "approximate must be 'erf' or 'tanh'");
    return this.#push({ kind: 'gelu', inputs: [x], out, flags: approximate === 'tanh' ? FLAG_GELU_TANH : 0 });
  }

  relu(x: DeviceTensor, out: DeviceTensor): this {
    return this.#push({ kind: 'relu', inputs: [x], out });
  }

  silu(x: DeviceTensor, out: DeviceTensor): this {
    return this.#push({ kind: 'silu', inputs: [x], out });
  }

  /** Over the last axis. */
  softmax(x: DeviceTensor, out: DeviceTensor): this {
    return this.#push({ kind: 'softmax', inputs: [x], out });
  }

  layerNorm(x: DeviceTensor, gamma: DeviceTensor, beta: DeviceTensor, out: DeviceTensor, options: EpsOptions = {}): this {
    return this.#push({ kind: 'layerNorm', inputs: [x, gamma, beta], out, f0: this.#eps('layerNorm', options.eps, 1e-5) });
  }

  rmsNorm(x: DeviceTensor, gamma: DeviceTensor, out: DeviceTensor, options: EpsOptions = {}): this {
    return this.#push({ kind: 'rmsNorm', inputs: [x, gamma], out, f0: this.#eps('rmsNorm', options.eps, 1e-6) });
  }

  /** out[.., :] = table[ids[..], :]; an id outside the table fails the run. */
  embedding(table: DeviceTensor, ids: DeviceTensor, out: DeviceTensor): this {
    return this.#push({ kind: 'embedding', inputs: [table, ids], out });
  }

  /** softmax(scale · q kᵀ + mask) v per batch and head, over [B, S, heads·D] layouts. */
  attention(q: DeviceTensor, k: DeviceTensor, v: DeviceTensor, out: DeviceTensor, options: AttentionOptions): this {
    if (!Number.isSafeInteger(options.heads) || options.heads < 1) this.#fail('attention', 'heads must be an integer >= 1');
    const scale = options.scale ?? 0;
    if (!Number.isFinite(scale) || scale < 0) this.#fail('attention', 'scale must be a finite number > 0');
    const inputs = options.mask === undefined ? [q, k, v] : [q, k, v, options.mask];
    return this.#push({ kind: 'attention', inputs, out, flags: options.causal === true ? FLAG_CAUSAL : 0, i0: options.heads, f0: scale });
  }

  /** out[b, :] = mean of x[b, s, :] over s where mask[b, s] != 0. */
  meanPool(x: DeviceTensor, mask: DeviceTensor, out: DeviceTensor): this {
    return this.#push({ kind: 'meanPool', inputs: [x, mask], out });
  }

  /** x / max(‖x‖₂, eps) over the last axis. */
  l2Normalize(x: DeviceTensor, out: DeviceTensor, options: EpsOptions = {}): this {
    return this.#push({ kind: 'l2Normalize', inputs: [x], out, f0: this.#eps('l2Normalize', options.eps, 1e-12) });
  }

  /** Between f32, f16 and bf16 (round to nearest even). */
  cast(x: DeviceTensor, out: DeviceTensor): this {
    return this.#push({ kind: 'cast', inputs: [x], out });
  }

  copy(x: DeviceTensor, out: DeviceTensor): this {
    return this.#push({ kind: 'copy', inputs: [x], out });
  }

  #eps(op: OpName, eps: number | undefined, fallback: number): number {
    const value = eps ?? fallback;
    if (!Number.isFinite(value) || value <= 0) this.#fail(op, 'eps must be a finite number > 0');
    return value;
  }

  #fail(op: OpName, message: string): never {
    throw new CaphostError(ErrorCode.INVALID_ARGUMENT, `${op} (op ${this.#count}): ${message}`, { details: { op, index: this.#count } });
  }

  #push(spec: OpSpec): this {
    const operands = [...spec.inputs, spec.out];
    operands.forEach((t, i) => {
      if (!(t instanceof DeviceTensor)) {
        this.#fail(spec.kind, `operand ${i === operands.length - 1 ? 'out' : i} is not a DeviceTensor`);
      }
    });
    if (this.#words.length < (this.#count + 1) * OP_WORDS) {
      const grown = new Float64Array(this.#words.length * 2);
      grown.set(this.#words);
      this.#words = grown;
    }
    const w = this.#words;
    const base = this.#count * OP_WORDS;
    w.fill(0, base, base + OP_WORDS);
    w[base] = OP_KIND[spec.kind];
    w[base + 1] = spec.flags ?? 0;
    w[base + 2] = spec.inputs.length;
    w[base + 3] = spec.i0 ?? 0;
    w[base + 4] = spec.f0 ?? 0;
    spec.inputs.forEach((t, i) => this.#tensor(base + HEADER_WORDS + i * TENSOR_WORDS, t));
    this.#tensor(base + HEADER_WORDS + MAX_INPUTS * TENSOR_WORDS, spec.out);
    this.#names.push(spec.kind);
    this.#count++;
    return this;
  }

  #tensor(at: number, t: DeviceTensor): void {
    let index = this.#handleIndex.get(t.handle);
    if (index === undefined) {
      index = this.#handles.length;
      this.#handles.push(t.handle);
      this.#handleIndex.set(t.handle, index);
    }
    const w = this.#words;
    w[at] = index;
    w[at + 1] = t.byteOffset;
    w[at + 2] = DTYPE_CODE[t.dtype];
    w[at + 3] = t.shape.length;
    for (let d = 0; d < MAX_RANK; d++) w[at + 4 + d] = t.shape[d] ?? 0;
  }
}
