/**
 * embed.text@1.0: sentence embeddings from a BERT-style model in Hugging Face's files
 * (config.json, vocab.txt, model.safetensors, e.g. all-MiniLM-L6-v2), on weights the controller
 * loads and grants. Calls are batched by the scheduler; every text of a batch runs in one pass.
 *
 *   await Controller.start({ workers: [{ module: '.../embed-worker.js', weights: '/path/to/model/model.safetensors',
 *     config: { model: '/path/to/model' } }] });   // config.json and vocab.txt; or { config, vocab } as contents
 *                                                  // for a sandboxed process worker (CAPHOST_EMBED_MODEL also works)
 *   const { vectors } = await controller.call('embed.text@1', { texts: ['a sentence', 'another'] });
 *   // vectors: { dtype: 'f32', shape: [2, hidden], data: Float32Array }
 *
 * CAPHOST_EMBED_MAX_TOKENS (default 128) truncates longer texts; CAPHOST_EMBED_MAX_BATCH
 * (default 64) bounds the sequences of one pass; CAPHOST_EMBED_BATCH (default 32) is the most
 * calls the scheduler puts in one batch (smaller keeps long sequences' latency down);
 * CAPHOST_EMBED_QUEUE_DELAY_US (default 2000) is how long a batch may wait for more calls while
 * a replica is free (0: send at once; calls still gather while every replica is busy).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BertEncoder } from '../../src/inference/bert-encoder.js';
import { parseBertConfig } from '../../src/inference/bert-config.js';
import { WordPieceTokenizer } from '../../src/inference/wordpiece-tokenizer.js';
import { CaphostError, ErrorCode, defineWorker, type BatchContext } from '../../src/worker/index.js';

let tokenizer: WordPieceTokenizer | undefined;
let encoder: BertEncoder | undefined;
let maxTokens = 128;

/** The entry's `config` (all optional; environment variables are the fallback). */
interface EmbedSettings {
  /** Folder holding config.json and vocab.txt (and tokenizer_config.json). */
  readonly model?: string;
  /** config.json's contents and vocab.txt's text: what a sandboxed worker that may not read the folder needs. */
  readonly config?: unknown;
  readonly vocab?: string;
  readonly lowerCase?: boolean;
  readonly maxTokens?: number;
  readonly maxBatch?: number;
}

function envInt(name: string, fallback: number, min = 1): number {
  const raw = process.env[name];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new CaphostError(ErrorCode.INVALID_ARGUMENT, `${name} must be an integer of at least ${min}, got "${raw}"`);
  return n;
}

export default defineWorker({
  setup(ctx) {
    const given = (ctx.config ?? {}) as EmbedSettings;
    let configJson: unknown = given.config;
    let vocab = given.vocab;
    let lowerCase = given.lowerCase ?? true;
    if (configJson === undefined || vocab === undefined) {
      // Files: for a thread worker, or a process worker whose sandbox may read the folder.
      const dir = given.model ?? process.env['CAPHOST_EMBED_MODEL'];
      if (dir === undefined) {
        throw new CaphostError(ErrorCode.INVALID_ARGUMENT, "give the worker entry config: { model: '/folder/with/config.json+vocab.txt' } (or { config, vocab } as contents, for a sandboxed worker), or set CAPHOST_EMBED_MODEL; the entry's weights give model.safetensors");
      }
      configJson ??= JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
      vocab ??= readFileSync(join(dir, 'vocab.txt'), 'utf8');
      if (given.lowerCase === undefined) {
        try {
          const tc = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')) as { do_lower_case?: unknown };
          if (typeof tc.do_lower_case === 'boolean') lowerCase = tc.do_lower_case;
        } catch {
          // No tokenizer_config.json: BERT's default, lower-casing.
        }
      }
    }
    const config = parseBertConfig(configJson, 'config.json');
    tokenizer = WordPieceTokenizer.fromVocabText(vocab, { lowerCase });
    maxTokens = Math.min(given.maxTokens ?? envInt('CAPHOST_EMBED_MAX_TOKENS', 128), config.maxPositions);
    encoder = new BertEncoder(ctx.device, ctx.weights, config, { maxBatch: given.maxBatch ?? envInt('CAPHOST_EMBED_MAX_BATCH', 64), maxSeq: maxTokens });
    ctx.log.info(`embed.text: ${config.numLayers} layers, hidden ${config.hiddenSize}, on ${ctx.device.backend}`);
  },
  capabilities: {
    'embed.text@1.0': {
      schema: { proto: './embed.proto', input: 'embed.Texts', output: 'embed.Embeddings' },
      batch: { maxSize: envInt('CAPHOST_EMBED_BATCH', 32), maxQueueDelayUs: envInt('CAPHOST_EMBED_QUEUE_DELAY_US', 2000, 0) },
      handler: async (inputs: { texts: string[] }[], ctx: BatchContext) => {
        const texts: string[] = [];
        const live = inputs.map((_, i) => !ctx.cancelled(i));
        inputs.forEach((input, i) => {
          if (live[i]) texts.push(...input.texts);
        });
        const hidden = encoder!.config.hiddenSize;
        const vectors = texts.length === 0 ? new Float32Array(0) : await encoder!.embed(tokenizer!.encodeBatch(texts, { maxLength: maxTokens }));
        let row = 0;
        return inputs.map((input, i) => {
          if (!live[i]) return new CaphostError(ErrorCode.CANCELLED, 'cancelled before its batch ran');
          const n = input.texts.length;
          const data = vectors.slice(row * hidden, (row + n) * hidden);
          row += n;
          return n === 0 ? {} : { vectors: { data, shape: [n, hidden] } };
        });
      },
    },
  },
  teardown() {
    encoder?.close();
  },
});
