/**
 * A multi-layer perceptron classifier on the device layer: Linear layers (PyTorch's [out, in]
 * weights) with an activation between them, then softmax over the classes, as one command list
 * per batch size. The layers come from named weight tensors, by default `layers.0.weight`,
 * `layers.0.bias`, `layers.1.weight`, ... (what `nn.Sequential` of Linear layers saves under
 * `layers`), or from an explicit list.
 */
import { CaphostError, ErrorCode } from '../errors.js';
import { CommandList } from '../device/command-list.js';
import type { DeviceTensor } from '../device/device-tensor.js';
import type { EncoderDevice } from './bert-encoder.js';

export interface MlpClassifierOptions {
  /** Weight and bias names per layer, in order. Default: `${prefix}.N.weight` / `.bias` for N = 0, 1, ... while present. */
  readonly layers?: readonly { readonly weight: string; readonly bias?: string }[];
  /** Prefix of the default layer names. Default 'layers'. */
  readonly prefix?: string;
  /** Between layers. Default 'relu'. */
  readonly activation?: 'relu' | 'gelu' | 'gelu_tanh' | 'silu';
  /** Softmax over the last layer's outputs (probabilities) or not (logits). Default true. */
  readonly softmax?: boolean;
  /** Most rows in one run. Default 64. */
  readonly maxBatch?: number;
}

interface Layer {
  readonly w: DeviceTensor;
  readonly b: DeviceTensor | undefined;
  readonly out: number;
}

export class MlpClassifier {
  readonly inputs: number;
  readonly classes: number;
  readonly maxBatch: number;
  private readonly layers: Layer[];
  private readonly activation: NonNullable<MlpClassifierOptions['activation']>;
  private readonly softmax: boolean;
  private readonly x: DeviceTensor;
  private readonly hidden: DeviceTensor[] = [];
  private readonly lists = new Map<number, CommandList>();
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly device: EncoderDevice,
    weights: ReadonlyMap<string, DeviceTensor>,
    options: MlpClassifierOptions = {},
  ) {
    const prefix = options.prefix ?? 'layers';
    const names = options.layers ?? MlpClassifier.defaultLayers(weights, prefix);
    if (names.length === 0) throw new CaphostError(ErrorCode.INVALID_ARGUMENT, `no layers: the weights have no "${prefix}.0.weight" (pass options.layers to name them)`);
    this.layers = names.map(({ weight, bias }, i) => {
      const w = weights.get(weight);
      if (w === undefined || w.dtype !== 'f32' || w.shape.length !== 2) throw new CaphostError(ErrorCode.INVALID_ARGUMENT, `layer ${i}: "${weight}" must be an f32 [out, in] tensor of the weights`, { details: { tensor: weight } });
      const b = bias === undefined ? undefined : weights.get(bias);
      if (bias !== undefined && (b === undefined || b.dtype !== 'f32' || b.size !== w.shape[0])) {
        throw new CaphostError(ErrorCode.INVALID_ARGUMENT, `layer ${i}: "${bias}" must be an f32 tensor of ${w.shape[0]} values`, { details: { tensor: bias } });
      }
      return { w, b, out: w.shape[0]! };
    });
    this.layers.forEach((layer, i) => {
      const inp = layer.w.shape[1]!;
      const prev = i === 0 ? inp : this.layers[i - 1]!.out;
      if (inp !== prev) throw new CaphostError(ErrorCode.INVALID_ARGUMENT, `layer ${i} takes ${inp} inputs, layer ${i - 1} gives ${prev}`);
    });
    this.inputs = this.layers[0]!.w.shape[1]!;
    this.classes = this.layers[this.layers.length - 1]!.out;
    this.activation = options.activation ?? 'relu';
    this.softmax = options.softmax ?? true;
    this.maxBatch = options.maxBatch ?? 64;
    this.x = device.alloc('f32', [this.maxBatch, this.inputs]);
    try {
      // Layer i writes hidden[i]; the last one is the output (softmax runs in place).
      for (const layer of this.layers) this.hidden.push(device.alloc('f32', [this.maxBatch, layer.out]));
    } catch (err) {
      this.close();
      throw err;
    }
  }

  private static defaultLayers(weights: ReadonlyMap<string, DeviceTensor>, prefix: string): { weight: string; bias?: string }[] {
    const out: { weight: string; bias?: string }[] = [];
    for (let i = 0; weights.has(`${prefix}.${i}.weight`); i++) {
      const bias = `${prefix}.${i}.bias`;
      out.push(weights.has(bias) ? { weight: `${prefix}.${i}.weight`, bias } : { weight: `${prefix}.${i}.weight` });
    }
    return out;
  }

  /** Class probabilities (or logits) for `rows` inputs of `inputs` values each, [rows * classes]. */
  classify(x: Float32Array, rows: number): Promise<Float32Array> {
    const run = this.queue.then(() => this.classifyNow(x, rows));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async classifyNow(x: Float32Array, rows: number): Promise<Float32Array> {
    if (this.closed) throw new CaphostError(ErrorCode.INVALID_ARGUMENT, 'this classifier is closed');
    if (x.length !== rows * this.inputs) throw new CaphostError(ErrorCode.INVALID_ARGUMENT, `classify: ${rows} rows of ${this.inputs} inputs need ${rows * this.inputs} values, got ${x.length}`);
    const result = new Float32Array(rows * this.classes);
    for (let start = 0; start < rows; start += this.maxBatch) {
      const n = Math.min(this.maxBatch, rows - start);
      const input = this.x.slice(0, n);
      const part = x.subarray(start * this.inputs, (start + n) * this.inputs);
      if (this.device.hostVisible) (this.device.view(input, 'rw') as Float32Array).set(part);
      else await this.device.write(input, part);
      await this.device.run(this.listFor(n));
      const out = this.hidden[this.hidden.length - 1]!.slice(0, n);
      if (this.device.hostVisible) result.set(this.device.view(out, 'r') as Float32Array, start * this.classes);
      else await this.device.read(out, result.subarray(start * this.classes, (start + n) * this.classes));
    }
    return result;
  }

  private listFor(n: number): CommandList {
    const cached = this.lists.get(n);
    if (cached !== undefined) return cached;
    const list = new CommandList();
    let input = this.x.slice(0, n);
    this.layers.forEach((layer, i) => {
      const out = this.hidden[i]!.slice(0, n);
      const last = i === this.layers.length - 1;
      const fused = !last && this.activation !== 'silu' ? this.activation : 'none';
      list.matmul(input, layer.w, out, layer.b === undefined ? { transB: true, activation: fused } : { transB: true, bias: layer.b, activation: fused });
      if (!last && this.activation === 'silu') list.silu(out, out);
      if (last && this.softmax) list.softmax(out, out);
      input = out;
    });
    this.lists.set(n, list);
    return list;
  }

  /** Frees the classifier's buffers (not the weights). Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const t of [this.x, ...this.hidden.splice(0)]) {
      try {
        this.device.free(t);
      } catch {
        // Already gone with its session.
      }
    }
    this.lists.clear();
  }
}
