/**
 * The typed face of the CPU kernel addon (native/cpu, built by node-gyp into
 * build/Release/caphost_cpu.node): caphost's own blocked, vectorised, multi-threaded fp32
 * GEMM with a fused bias + activation epilogue. Later work puts it behind the device
 * backend interface; nothing here allocates or owns device buffers.
 *
 * Failures surface as CaphostError: INVALID_ARGUMENT (naming the operand) or NATIVE_ERROR.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { CaphostError, ErrorCode, isErrorCode } from '../errors.js';

/** Micro-kernel instruction sets, best first. */
export type CpuIsa = 'avx512f' | 'avx2' | 'neon' | 'scalar';
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

export interface CpuKernelInfo {
  /** The process default: the best the CPU has, unless CAPHOST_CPU_ISA named another at load. */
  readonly isa: CpuIsa;
  /** Micro-tile of the default kernel. */
  readonly mr: number;
  readonly nr: number;
  /** Every ISA this CPU and build can run, best first. */
  readonly available: CpuIsa[];
}

export interface CpuBinding {
  /** Version of this native interface; bumped on incompatible changes. */
  readonly abiVersion: number;
  /**
   * Row-major c[m x n] = act(op(a) . op(b) + bias), synchronously on the calling thread
   * (plus threads - 1 helpers). c must not overlap a, b or bias.
   */
  sgemm(a: Float32Array, b: Float32Array, c: Float32Array, options: SgemmOptions): void;
  kernelInfo(): CpuKernelInfo;
}

function adopt(err: unknown): unknown {
  if (!(err instanceof Error)) return err;
  const code = (err as Error & { code?: unknown }).code;
  if (!isErrorCode(code)) return err;
  return new CaphostError(code, err.message, { cause: err });
}

function wrap(raw: CpuBinding): CpuBinding {
  return Object.freeze({
    abiVersion: raw.abiVersion,
    sgemm: (a: Float32Array, b: Float32Array, c: Float32Array, options: SgemmOptions): void => {
      try {
        raw.sgemm(a, b, c, options);
      } catch (err) {
        throw adopt(err);
      }
    },
    kernelInfo: () => raw.kernelInfo(),
  });
}

let cached: CpuBinding | undefined;

/** Loads the addon once; throws CaphostError(NATIVE_ERROR) when it is missing or broken. */
export function loadCpuBinding(): CpuBinding {
  if (cached !== undefined) return cached;
  // Compiled to dist/src/device/cpu-binding.js: the package root is three levels up.
  const root = fileURLToPath(new URL('../../../', import.meta.url));
  const require = createRequire(import.meta.url);
  const candidates = ['Release', 'Debug'].map((mode) => join(root, 'build', mode, 'caphost_cpu.node'));
  const failures: string[] = [];
  for (const path of candidates) {
    try {
      cached = wrap(require(path) as CpuBinding);
      return cached;
    } catch (err) {
      failures.push(`${path}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  throw new CaphostError(
    ErrorCode.NATIVE_ERROR,
    `caphost_cpu addon not loadable (run npm install or node-gyp rebuild): ${failures.join('; ')}`,
  );
}
