// Quick GFLOP/s for the CPU GEMM (not a test): node scripts/gemm-gflops.mjs after npm run build.
// Best of several runs per shape, for the default ISA, scalar, and a naive JS loop at 256³.
import { loadCpuBinding } from '../dist/src/device/cpu-binding.js';

const cpu = loadCpuBinding();
const info = cpu.kernelInfo();
const rand = (n) => Float32Array.from({ length: n }, () => Math.random() - 0.5);

function best(fn, seconds = 0.6) {
  fn();
  let min = Infinity;
  const end = performance.now() + seconds * 1000;
  for (let i = 0; i < 3 || performance.now() < end; i++) {
    const t = performance.now();
    fn();
    min = Math.min(min, performance.now() - t);
  }
  return min / 1000;
}

console.log(`isa ${info.isa} (available: ${info.available.join(', ')})`);
const isas = [...new Set([info.isa, 'avx2', 'scalar'])].filter((isa) => info.available.includes(isa));
for (const isa of isas) {
  for (const s of [256, 512, 1024]) {
    const a = rand(s * s), b = rand(s * s), c = new Float32Array(s * s);
    const row = [];
    for (const threads of [1, 2]) {
      const secs = best(() => cpu.sgemm(a, b, c, { m: s, n: s, k: s, threads, forceIsa: isa }));
      row.push(`${threads}t ${((2 * s ** 3) / secs / 1e9).toFixed(1)}`);
    }
    console.log(`${isa.padEnd(8)} ${s}³  GFLOP/s: ${row.join('  ')}`);
  }
}
{
  const s = 256, a = rand(s * s), b = rand(s * s), c = new Float32Array(s * s);
  const secs = best(() => {
    for (let i = 0; i < s; i++)
      for (let j = 0; j < s; j++) {
        let acc = 0;
        for (let p = 0; p < s; p++) acc += a[i * s + p] * b[p * s + j];
        c[i * s + j] = acc;
      }
  }, 0.3);
  console.log(`naive JS 256³  GFLOP/s: 1t ${((2 * s ** 3) / secs / 1e9).toFixed(2)}`);
}
