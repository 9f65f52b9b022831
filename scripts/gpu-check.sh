#!/usr/bin/env bash
# One pass on a machine with an NVIDIA GPU (a lent device machine, or any): build the CUDA
# backend, run its native conformance and bench drivers (they need no Node), then, where Node
# and the built package are present, `npm run test:gpu`'s suites, the device conformance suite
# and the gpu bench scope. Everything lands under $OUT (default ./gpu-check-out); a missing
# tool skips its steps and says so in steps.txt. Exit status: the conformance driver's.
#
# Node: this machine's, else a carried copy at .gpu-node/node (or .gpu-node/node.xz). For the
# Node steps carry dist/ and build/Release/ (and node_modules/) with the working tree.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/gpu-check-out}
mkdir -p "$OUT"
log() { echo "gpu-check: $*" | tee -a "$OUT/steps.txt"; }

nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || log "nvidia-smi failed (no driver here?)"
# Build only for this GPU's architecture unless told otherwise: a full fatbin is CI's job.
cc=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d '. ')
export CAPHOST_CUDA_ARCHS=${CAPHOST_CUDA_ARCHS:-${cc:-90}}
export CAPHOST_CUDA_JOBS=${CAPHOST_CUDA_JOBS:-$(nproc)}

if ! command -v node >/dev/null; then
  [ -f .gpu-node/node.xz ] && [ ! -x .gpu-node/node ] && xz -dk .gpu-node/node.xz && chmod +x .gpu-node/node
  [ -x .gpu-node/node ] && export PATH="$PWD/.gpu-node:$PATH"
fi

start=$(date +%s)
if command -v node >/dev/null; then
  log "node $(node --version); building for sm_$CAPHOST_CUDA_ARCHS with $CAPHOST_CUDA_JOBS jobs"
  node scripts/build-cuda.mjs > "$OUT/build.log" 2>&1
  rc=$?
else
  log "no node: building with cmake directly for sm_$CAPHOST_CUDA_ARCHS"
  cmake -S native/cuda -B build-cuda -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="$CAPHOST_CUDA_ARCHS" \
    > "$OUT/build.log" 2>&1 && cmake --build build-cuda --parallel "$CAPHOST_CUDA_JOBS" >> "$OUT/build.log" 2>&1
  rc=$?
  mkdir -p build/cuda && cp build-cuda/libcaphost_cuda.so build-cuda/caphost-backend-* build/cuda/ 2>/dev/null
fi
log "build rc=$rc in $(( $(date +%s) - start )) s"
[ "$rc" = 0 ] || { tail -40 "$OUT/build.log"; exit 1; }

lib=build/cuda/libcaphost_cuda.so
build/cuda/caphost-backend-probe "$lib" > "$OUT/probe.json"
log "probe rc=$? $(cat "$OUT/probe.json")"
build/cuda/caphost-backend-conformance "$lib" > "$OUT/conformance.txt" 2>&1
conformance=$?
log "conformance rc=$conformance: $(tail -1 "$OUT/conformance.txt")"
grep FAIL "$OUT/conformance.txt" | head -40
build/cuda/caphost-backend-bench "$lib" > "$OUT/bench.jsonl" 2>&1
log "bench rc=$?"
cat "$OUT/bench.jsonl"
if command -v node >/dev/null && [ -d dist/test/gpu ] && [ -d node_modules ]; then
  node --test dist/test/gpu/ dist/test/device/conformance.test.js > "$OUT/test-gpu.txt" 2>&1
  log "node gpu tests rc=$?: $(grep -E '^# (pass|fail|skipped)' "$OUT/test-gpu.txt" | tr '\n' ' ')"
  node dist/bench/index.js --scope gpu --json "$OUT/bench-gpu.json" > "$OUT/bench-gpu.txt" 2>&1
  log "gpu bench scope rc=$?"
  cat "$OUT/bench-gpu.txt"
else
  log "Node steps skipped: no node, or dist/ or node_modules/ not carried"
fi
exit "$conformance"
