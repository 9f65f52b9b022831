/**
 * A BERT-style sentence encoder on the device layer: embeddings, N encoder layers, mean pooling
 * over the attention mask and l2 normalisation, as one command list per (batch, sequence) shape,
 * over weights with Hugging Face's tensor names (a `bert.` prefix is accepted). Activations live
 * in buffers sized once for the largest batch; lists are built once per shape and kept.
 */
import { CaphostError, ErrorCode } from '../errors.js';
import { CommandList } from '../device/command-list.js';
import type { Device } from '../device/device.js';
import type { DeviceTensor } from '../device/device-tensor.js';
import type { BertConfig } from './bert-config.js';
import type { EncodedBatch } from './wordpiece-tokenizer.js';

/** What the encoder uses of a device: ctx.device in a worker, controller.device in the controller. */
export type EncoderDevice = Pick<Device, 'alloc' | 'free' | 'run' | 'view' | 'write' | 'read' | 'hostVisible'>;

export interface BertEncoderOptions {
  /** Most sequences in one run. Default 32. */
  readonly maxBatch?: number;
  /** Longest sequence, special tokens included. Default: the model's max_position_embeddings. */
  readonly maxSeq?: number;
  /** Command lists kept, one per (batch, sequence) shape seen. Default 64. */
  readonly cachedShapes?: number;
}

interface LayerWeights {
  readonly q: { w: DeviceTensor; b: DeviceTensor };
  readonly k: { w: DeviceTensor; b: DeviceTensor };
  readonly v: { w: DeviceTensor; b: DeviceTensor };
  readonly o: { w: DeviceTensor; b: DeviceTensor };
  readonly ln1: { g: DeviceTensor; b: DeviceTensor };
  readonly up: { w: DeviceTensor; b: DeviceTensor };
  readonly down: { w: DeviceTensor; b: DeviceTensor };
  readonly ln2: { g: DeviceTensor; b: DeviceTensor };
}

export class BertEncoder {
  readonly maxBatch: number;
  readonly maxSeq: number;
  private readonly lists = new Map<string, CommandList>();
  private readonly cachedShapes: number;
  private readonly buffers: DeviceTensor[] = [];
  private readonly word: DeviceTensor;
  private readonly position: DeviceTensor;
  private readonly type: DeviceTensor;
  private readonly embLn: { g: DeviceTensor; b: DeviceTensor };
  private readonly layers: LayerWeights[];
  // Activations, [maxRows, ...] (rows = batch * seq) or [maxBatch, hidden].
  private readonly ids: DeviceTensor;
  private readonly positions: DeviceTensor;
  private readonly types: DeviceTensor;
  private readonly mask: DeviceTensor;
  private readonly x: DeviceTensor;
  private readonly t1: DeviceTensor;
  private readonly t2: DeviceTensor;
  private readonly q: DeviceTensor;
  private readonly k: DeviceTensor;
  private readonly v: DeviceTensor;
  private readonly inner: DeviceTensor;
  private readonly pooled: DeviceTensor;
  private readonly out: DeviceTensor;
  /** Runs one at a time: the activation buffers are shared. */
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly device: EncoderDevice,
    weights: ReadonlyMap<string, DeviceTensor>,
    readonly config: BertConfig,
    options: BertEncoderOptions = {},
  ) {
    const H = config.hiddenSize;
    const I = config.intermediateSize;
    this.maxBatch = options.maxBatch ?? 32;
    this.maxSeq = options.maxSeq ?? config.maxPositions;
    this.cachedShapes = options.cachedShapes ?? 64;
    if (!Number.isInteger(this.maxBatch) || this.maxBatch < 1) throw new CaphostError(ErrorCode.INVALID_ARGUMENT, `maxBatch must be a positive integer, got ${this.maxBatch}`);
    if (!Number.isInteger(this.maxSeq) || this.maxSeq < 2 || this.maxSeq > config.maxPositions) {
      throw new CaphostError(ErrorCode.INVALID_ARGUMENT, `maxSeq must be an integer from 2 to max_position_embeddings (${config.maxPositions}), got ${this.maxSeq}`);
    }
    const prefix = weights.has('embeddings.word_embeddings.weight') ? '' : weights.has('bert.embeddings.word_embeddings.weight') ? 'bert.' : '';
    const get = (name: string, shape: readonly number[]): DeviceTensor => {
      const t = weights.get(prefix + name);
      if (t === undefined) throw new CaphostError(ErrorCode.INVALID_ARGUMENT, `the weights have no tensor "${prefix + name}" (a BERT encoder needs Hugging Face's tensor names)`, { details: { tensor: prefix + name } });
      if (t.dtype !== 'f32') throw new CaphostError(ErrorCode.INVALID_ARGUMENT, `tensor "${prefix + name}" is ${t.dtype}; the encoder runs f32 weights (convert the file to float32)`, { details: { tensor: prefix + name } });
      if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
        throw new CaphostError(ErrorCode.INVALID_ARGUMENT, `tensor "${prefix + name}" is [${t.shape.join(', ')}], config.json implies [${shape.join(', ')}]`, { details: { tensor: prefix + name } });
      }
      return t;
    };
    const linear = (name: string, out: number, inp: number) => ({ w: get(`${name}.weight`, [out, inp]), b: get(`${name}.bias`, [out]) });
    const norm = (name: string) => ({ g: get(`${name}.weight`, [H]), b: get(`${name}.bias`, [H]) });
    this.word = get('embeddings.word_embeddings.weight', [config.vocabSize, H]);
    this.position = get('embeddings.position_embeddings.weight', [config.maxPositions, H]);
    this.type = get('embeddings.token_type_embeddings.weight', [config.typeVocabSize, H]);
    this.embLn = norm('embeddings.LayerNorm');
    this.layers = Array.from({ length: config.numLayers }, (_, l) => {
      const p = `encoder.layer.${l}.`;
      return {
        q: linear(`${p}attention.self.query`, H, H),
        k: linear(`${p}attention.self.key`, H, H),
        v: linear(`${p}attention.self.value`, H, H),
        o: linear(`${p}attention.output.dense`, H, H),
        ln1: norm(`${p}attention.output.LayerNorm`),
        up: linear(`${p}intermediate.dense`, I, H),
        down: linear(`${p}output.dense`, H, I),
        ln2: norm(`${p}output.LayerNorm`),
      };
    });
    const rows = this.maxBatch * this.maxSeq;
    const alloc = (dtype: 'f32' | 'i32', shape: number[]): DeviceTensor => {
      const t = device.alloc(dtype, shape);
      this.buffers.push(t);
      return t;
    };
    try {
      this.ids = alloc('i32', [rows]);
      this.positions = alloc('i32', [rows]);
      this.types = alloc('i32', [rows]);
      this.mask = alloc('i32', [rows]);
      this.x = alloc('f32', [rows, H]);
      this.t1 = alloc('f32', [rows, H]);
      this.t2 = alloc('f32', [rows, H]);
      this.q = alloc('f32', [rows, H]);
      this.k = alloc('f32', [rows, H]);
      this.v = alloc('f32', [rows, H]);
      this.inner = alloc('f32', [rows, I]);
      this.pooled = alloc('f32', [this.maxBatch, H]);
      this.out = alloc('f32', [this.maxBatch, H]);
    } catch (err) {
      this.close();
      throw err;
    }
  }

  /**
   * The l2-normalised mean-pooled embedding of each row of a tokenised batch, [batch * hidden].
   * Batches larger than maxBatch run in parts; a sequence longer than maxSeq is refused.
   */
  embed(batch: EncodedBatch): Promise<Float32Array> {
    const run = this.queue.then(() => this.embedNow(batch));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async embedNow(batch: EncodedBatch): Promise<Float32Array> {
    if (this.closed) throw new CaphostError(ErrorCode.INVALID_ARGUMENT, 'this encoder is closed');
    const { seqLen: S } = batch;
    if (S > this.maxSeq) throw new CaphostError(ErrorCode.INVALID_ARGUMENT, `sequences of ${S} tokens are longer than this encoder's maxSeq (${this.maxSeq}); truncate when tokenising`);
    const H = this.config.hiddenSize;
    const result = new Float32Array(batch.batch * H);
    for (let start = 0; start < batch.batch; start += this.maxBatch) {
      const B = Math.min(this.maxBatch, batch.batch - start);
      const rows = B * S;
      const part = (a: Int32Array): Int32Array => a.subarray(start * S, start * S + rows);
      const positions = new Int32Array(rows);
      for (let r = 0; r < rows; r++) positions[r] = r % S;
      await this.put(this.ids, part(batch.inputIds));
      await this.put(this.positions, positions);
      await this.put(this.types, part(batch.tokenTypeIds));
      await this.put(this.mask, part(batch.attentionMask));
      await this.device.run(this.listFor(B, S));
      const out = this.out.slice(0, B);
      if (this.device.hostVisible) result.set(this.device.view(out, 'r') as Float32Array, start * H);
      else await this.device.read(out, result.subarray(start * H, (start + B) * H));
    }
    return result;
  }

  private async put(t: DeviceTensor, data: Int32Array): Promise<void> {
    const target = t.slice(0, data.length);
    if (this.device.hostVisible) (this.device.view(target, 'rw') as Int32Array).set(data);
    else await this.device.write(target, data);
  }

  /** The forward pass for B sequences of S tokens, built once per shape. */
  listFor(B: number, S: number): CommandList {
    const key = `${B}x${S}`;
    const cached = this.lists.get(key);
    if (cached !== undefined) return cached;
    const rows = B * S;
    const eps = this.config.layerNormEps;
    const activation = this.config.activation;
    const r2 = (t: DeviceTensor) => t.slice(0, rows);
    const r3 = (t: DeviceTensor) => t.slice(0, rows).reshape([B, S, t.shape[1]!]);
    const ids = this.ids.slice(0, rows).reshape([B, S]);
    const positions = this.positions.slice(0, rows).reshape([B, S]);
    const types = this.types.slice(0, rows).reshape([B, S]);
    const mask = this.mask.slice(0, rows).reshape([B, S]);
    const x = r2(this.x);
    const t1 = r2(this.t1);
    const t2 = r2(this.t2);
    const list = new CommandList()
      .embedding(this.word, ids, r3(this.x))
      .embedding(this.position, positions, r3(this.t1))
      .add(x, t1, x)
      .embedding(this.type, types, r3(this.t1))
      .add(x, t1, x)
      .layerNorm(x, this.embLn.g, this.embLn.b, x, { eps });
    for (const layer of this.layers) {
      list
        .matmul(x, layer.q.w, r2(this.q), { transB: true, bias: layer.q.b })
        .matmul(x, layer.k.w, r2(this.k), { transB: true, bias: layer.k.b })
        .matmul(x, layer.v.w, r2(this.v), { transB: true, bias: layer.v.b })
        .attention(r3(this.q), r3(this.k), r3(this.v), r3(this.t1), { heads: this.config.numHeads, mask })
        .matmul(t1, layer.o.w, t2, { transB: true, bias: layer.o.b })
        .add(t2, x, t2)
        .layerNorm(t2, layer.ln1.g, layer.ln1.b, t2, { eps })
        .matmul(t2, layer.up.w, r2(this.inner), { transB: true, bias: layer.up.b, activation })
        .matmul(r2(this.inner), layer.down.w, x, { transB: true, bias: layer.down.b })
        .add(x, t2, x)
        .layerNorm(x, layer.ln2.g, layer.ln2.b, x, { eps });
    }
    const pooled = this.pooled.slice(0, B);
    list.meanPool(r3(this.x), mask, pooled).l2Normalize(pooled, this.out.slice(0, B), { eps: 1e-12 });
    if (this.lists.size >= this.cachedShapes) this.lists.delete(this.lists.keys().next().value!);
    this.lists.set(key, list);
    return list;
  }

  /** Frees the activation buffers (the weights belong to whoever loaded them). Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.buffers.splice(0)) {
      try {
        this.device.free(t);
      } catch {
        // Already gone with its session: nothing left to free.
      }
    }
    this.lists.clear();
  }
}
