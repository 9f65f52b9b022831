/**
 * The typed face of the CPU kernel addon (native/cpu, built by node-gyp into
 * build/Release/caphost_cpu.node): caphost's own blocked, vectorised, multi-threaded fp32
 * GEMM with a fused bias + activation epilogue, and the f32 op kernels a transformer
 * forward pass needs besides it (elementwise, activations, softmax, norms, embedding gather,
 * mean pooling, l2 normalisation, f16/bf16 casts), all synchronous. Later work puts it behind the device
 * backend interface; nothing here allocates or owns device buffers.
 *
 * Failures surface as CaphostError: INVALID_ARGUMENT (naming the operand) or NATIVE_ERROR.
 */
import { loadAddon } from '../native/load-addon.js';
import { CaphostError, isErrorCode } from '../errors.js';

/** Micro-kernel instruction sets, best first. */
export type CpuIsa = 'avx512f' | 'avx512f-12x32' | 'avx2' | 'neon' | 'scalar';
export type GemmActivation = 'none' | 'relu' | 'gelu';

export interface SgemmOptions {
  /** Rows of op(a) and of c. */
  readonly m: number;
  /** Columns of op(b) and of c. */
  readonly n: number;
  /** Columns of op(a), rows of op(b). */
  readonly k: number;
  /** a is stored k x m (row-major) and used transposed. */
  readonly transA?: boolean;
  /** b is stored n x k (row-major) and used transposed. */
  readonly transB?: boolean;
  /** n values added to every row of c before the activation. */
  readonly bias?: Float32Array;
  /** 'gelu' is the tanh form. Default 'none'. */
  readonly activation?: GemmActivation;
  /** Threads to split the work over (the caller's thread is one); default 1, at most 64. */
  readonly threads?: number;
  /** Use this micro-kernel instead of the process default; refused when the CPU lacks it. */
  readonly forceIsa?: CpuIsa;
}

/** Instruction sets of the op kernels (ops*.cc): AVX2+FMA (F16C for f16 casts) or portable C++. */
export type CpuOpsIsa = 'avx2' | 'scalar';

interface OpsCommon {
  /** Use these kernels instead of the process default; refused when the CPU lacks them. */
  readonly forceIsa?: CpuOpsIsa;
}

/** A 2-D row-major shape: the op works over the last axis (cols). */
export interface RowsOptions extends OpsCommon {
  readonly rows: number;
  readonly cols: number;
}

export interface BinaryOptions extends RowsOptions {
  /** b holds cols values, added to / multiplied into every row of a. */
  readonly broadcast?: boolean;
}

export interface ScaleOptions extends OpsCommon {
  /** Default 1. */
  readonly alpha?: number;
}

export interface GeluOptions extends OpsCommon {
  /** 'erf' (exact, the default) or 'tanh' (the approximation). */
  readonly approximate?: 'erf' | 'tanh';
}

export interface NormOptions extends RowsOptions {
  /** Added to the variance / mean square (layerNorm default 1e-5, rmsNorm 1e-6); for
   * l2Normalize the floor of the norm (default 1e-12). Must be > 0. */
  readonly eps?: number;
}

export interface EmbeddingOptions {
  readonly vocab: number;
  readonly hidden: number;
}

export interface MeanPoolOptions extends OpsCommon {
  readonly batch: number;
  readonly seq: number;
  readonly hidden: number;
}

/**
 * The op kernels. Outputs are written in place; an output may be the very same array as a
 * same-typed input of the elementwise and row ops (in-place), any other overlap is refused.
 * Sizes are lower bounds: arrays may be longer than the shape needs.
 */
export interface CpuOps {
  /** out = a + b over rows*cols elements (b: cols values with broadcast). */
  add(a: Float32Array, b: Float32Array, out: Float32Array, options: BinaryOptions): void;
  /** out = a * b, elementwise (b: cols values with broadcast). */
  mul(a: Float32Array, b: Float32Array, out: Float32Array, options: BinaryOptions): void;
  /** out = alpha * x over x.length elements. */
  scale(x: Float32Array, out: Float32Array, options?: ScaleOptions): void;
  relu(x: Float32Array, out: Float32Array, options?: OpsCommon): void;
  /** x * sigmoid(x). */
  silu(x: Float32Array, out: Float32Array, options?: OpsCommon): void;
  gelu(x: Float32Array, out: Float32Array, options?: GeluOptions): void;
  /** Softmax over each row of cols values (max-subtracted). */
  softmax(x: Float32Array, out: Float32Array, options: RowsOptions): void;
  /** (x - mean) / sqrt(var + eps) * gamma + beta per row (biased variance). */
  layerNorm(x: Float32Array, gamma: Float32Array, beta: Float32Array, out: Float32Array, options: NormOptions): void;
  /** x / sqrt(mean(x^2) + eps) * gamma per row. */
  rmsNorm(x: Float32Array, gamma: Float32Array, out: Float32Array, options: NormOptions): void;
  /** x / max(||x||2, eps) per row. */
  l2Normalize(x: Float32Array, out: Float32Array, options: NormOptions): void;
  /** out[i, :] = table[ids[i], :]; every id must lie in [0, vocab). */
  embedding(table: Float32Array, ids: Int32Array, out: Float32Array, options: EmbeddingOptions): void;
  /** out[b, :] = mean of x[b, s, :] over s with mask[b, s] != 0; a fully masked row gives zeros. */
  meanPool(x: Float32Array, mask: Int32Array, out: Float32Array, options: MeanPoolOptions): void;
  /** IEEE half, round to nearest even (overflow → ±Inf, NaN stays NaN). */
  castF32ToF16(src: Float32Array, dst: Uint16Array, options?: OpsCommon): void;
  castF16ToF32(src: Uint16Array, dst: Float32Array, options?: OpsCommon): void;
  /** bfloat16 (upper half of the f32 bits), round to nearest even. */
  castF32ToBf16(src: Float32Array, dst: Uint16Array, options?: OpsCommon): void;
  castBf16ToF32(src: Uint16Array, dst: Float32Array, options?: OpsCommon): void;
}

const OP_NAMES: readonly (keyof CpuOps)[] = [
  'add', 'mul', 'scale', 'relu', 'silu', 'gelu', 'softmax', 'layerNorm', 'rmsNorm', 'l2Normalize',
  'embedding', 'meanPool', 'castF32ToF16', 'castF16ToF32', 'castF32ToBf16', 'castBf16ToF32',
];

export interface CpuKernelInfo {
  /** The process default: the best the CPU has, unless CAPHOST_CPU_ISA named another at load. */
  readonly isa: CpuIsa;
  /** Micro-tile of the default kernel. */
  readonly mr: number;
  readonly nr: number;
  /** Every ISA this CPU and build can run, best first. */
  readonly available: CpuIsa[];
  /** The op kernels' default: 'avx2' with AVX2+FMA unless CAPHOST_CPU_ISA=scalar at load. */
  readonly opsIsa: CpuOpsIsa;
  /** Every op ISA this CPU and build can run, best first. */
  readonly opsAvailable: CpuOpsIsa[];
}

export interface CpuBinding extends CpuOps {
  /** Version of this native interface; bumped on incompatible changes. */
  readonly abiVersion: number;
  /**
   * Row-major c[m x n] = act(op(a) . op(b) + bias), synchronously on the calling thread
   * (plus threads - 1 helpers). c must not overlap a, b or bias.
   */
  sgemm(a: Float32Array, b: Float32Array, c: Float32Array, options: SgemmOptions): void;
  kernelInfo(): CpuKernelInfo;
  /** One thread's register-only FMA throughput on the widest vectors here: the GEMM's ceiling. */
  fmaPeak(seconds?: number): { isa: string; gflops: number };
}

function adopt(err: unknown): unknown {
  if (!(err instanceof Error)) return err;
  const code = (err as Error & { code?: unknown }).code;
  if (!isErrorCode(code)) return err;
  return new CaphostError(code, err.message, { cause: err });
}

function wrap(raw: CpuBinding): CpuBinding {
  const ops = {} as Record<keyof CpuOps, (...args: unknown[]) => void>;
  for (const name of OP_NAMES) {
    const fn = (raw as unknown as Record<string, (...args: unknown[]) => void>)[name];
    if (typeof fn !== 'function') throw new Error(`caphost_cpu addon lacks ${name} (rebuild it)`);
    ops[name] = (...args: unknown[]): void => {
      try {
        fn(...args);
      } catch (err) {
        throw adopt(err);
      }
    };
  }
  return Object.freeze({
    ...(ops as unknown as CpuOps),
    abiVersion: raw.abiVersion,
    sgemm: (a: Float32Array, b: Float32Array, c: Float32Array, options: SgemmOptions): void => {
      try {
        raw.sgemm(a, b, c, options);
      } catch (err) {
        throw adopt(err);
      }
    },
    kernelInfo: () => raw.kernelInfo(),
    fmaPeak: (seconds?: number) => raw.fmaPeak(seconds),
  });
}

let cached: CpuBinding | undefined;

/** Loads the addon once; throws CaphostError(NATIVE_ERROR) when it is missing or broken. */
export function loadCpuBinding(): CpuBinding {
  if (cached !== undefined) return cached;
  cached = wrap(loadAddon<CpuBinding>('caphost_cpu'));
  return cached;
}
