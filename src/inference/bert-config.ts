import { CaphostError, ErrorCode } from '../errors.js';

/** The fields of a Hugging Face BERT config.json that the encoder needs. */
export interface BertConfig {
  readonly hiddenSize: number;
  readonly numHeads: number;
  readonly numLayers: number;
  readonly intermediateSize: number;
  readonly vocabSize: number;
  readonly maxPositions: number;
  readonly typeVocabSize: number;
  readonly layerNormEps: number;
  /** 'gelu' is the erf form (BERT's); 'gelu_tanh' the approximation; 'relu'. */
  readonly activation: 'gelu' | 'gelu_tanh' | 'relu';
}

const ACTIVATIONS: Record<string, BertConfig['activation']> = {
  gelu: 'gelu',
  gelu_new: 'gelu_tanh',
  gelu_pytorch_tanh: 'gelu_tanh',
  gelu_fast: 'gelu_tanh',
  relu: 'relu',
};

/** Reads a config.json object (BERT, and the BERT-shaped MiniLM and friends), naming any field that is missing or wrong. */
export function parseBertConfig(json: unknown, file = 'config.json'): BertConfig {
  if (json === null || typeof json !== 'object') throw new CaphostError(ErrorCode.INVALID_ARGUMENT, `${file} must hold a JSON object`);
  const c = json as Record<string, unknown>;
  const int = (name: string, fallback?: number): number => {
    const v = c[name] ?? fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new CaphostError(ErrorCode.INVALID_ARGUMENT, `${file}: ${name} must be a positive integer, got ${JSON.stringify(v)}`, { details: { field: name } });
    return v;
  };
  const positionType = c['position_embedding_type'];
  if (positionType !== undefined && positionType !== 'absolute') {
    throw new CaphostError(ErrorCode.INVALID_ARGUMENT, `${file}: position_embedding_type "${String(positionType)}" is not supported (only "absolute")`, { details: { field: 'position_embedding_type' } });
  }
  const act = String(c['hidden_act'] ?? 'gelu');
  const activation = ACTIVATIONS[act];
  if (activation === undefined) throw new CaphostError(ErrorCode.INVALID_ARGUMENT, `${file}: hidden_act "${act}" is not supported (${Object.keys(ACTIVATIONS).join(', ')})`, { details: { field: 'hidden_act' } });
  const eps = c['layer_norm_eps'] ?? 1e-12;
  if (typeof eps !== 'number' || !(eps > 0)) throw new CaphostError(ErrorCode.INVALID_ARGUMENT, `${file}: layer_norm_eps must be a positive number`, { details: { field: 'layer_norm_eps' } });
  const config: BertConfig = {
    hiddenSize: int('hidden_size'),
    numHeads: int('num_attention_heads'),
    numLayers: int('num_hidden_layers'),
    intermediateSize: int('intermediate_size'),
    vocabSize: int('vocab_size'),
    maxPositions: int('max_position_embeddings'),
    typeVocabSize: int('type_vocab_size', 2),
    layerNormEps: eps,
    activation,
  };
  if (config.hiddenSize % config.numHeads !== 0) {
    throw new CaphostError(ErrorCode.INVALID_ARGUMENT, `${file}: hidden_size (${config.hiddenSize}) must be a multiple of num_attention_heads (${config.numHeads})`, { details: { field: 'num_attention_heads' } });
  }
  return config;
}
