#!/usr/bin/env bash
# One device call for the GPU work (issue 6): build the CUDA extension, run the CUDA tests,
# and every benchmark, writing logs and results under $OUT. Run from the repository root on
# a machine with an NVIDIA GPU, e.g. through the device tool:
#
#   run(command="bash bench/gpu_session.sh", carry=[".whl", "bench_data"], timeout_s=600)
#
# bench_data/ (gitignored) holds the horse2zebra testA JPEGs and a model checkpoint, copied
# there first:  mkdir -p bench_data && cp -r ../shared/data/horse2zebra/testA bench_data/
#               cp <trained checkpoint>.pt bench_data/model.pt
# .whl/ may hold TensorRT for RTX as split parts (tools/wheel_parts.sh split), joined here.
set -uo pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-results/gpu}
mkdir -p "$OUT"
PY=python3
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.txt"

if ls .whl/*.part-* >/dev/null 2>&1; then
  bash tools/wheel_parts.sh join .whl
  $PY -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
fi

# The extension: CPU + CUDA kernels (torch there is a CUDA build and nvcc is present).
MAX_JOBS=16 $PY -m pip install -q --no-build-isolation --no-deps -e . 2>&1 | tail -3 | tee "$OUT/build.log"
$PY -c "from cyclegan_tool import ops; print('custom CUDA kernels:', ops.has_kernel('instance_norm', 'cuda'))" | tee -a "$OUT/build.log"

$PY -m pytest -q -x tests/test_ops.py tests/test_convert.py tests/test_export.py -k "cuda or engine or gpu" \
  2>&1 | tail -30 | tee "$OUT/tests_cuda.log"
$PY -m pytest -q tests/test_ops.py 2>&1 | tail -5 | tee -a "$OUT/tests_cuda.log"
# The backend contract (CUDA backends included there), engine limits and the emulated kernels,
# whose results can now be compared with the same kernels on the real GPU (test_ops above).
$PY -m pytest -q tests/test_backend_contract.py tests/test_cuda_kernels_emulated.py 2>&1 | tail -8 \
  | tee -a "$OUT/tests_cuda.log"

# Engine checks on the GPU: an engine with a small maximum batch and profile, driven by convert
# with a larger --batch-size and images beyond the profile (planned within the limits: no failures).
if [ -f bench_data/model.pt ] && [ -d bench_data/testA ]; then
  $PY -m cyclegan_tool export bench_data/model.pt --engine /tmp/small.plan --fp16 --min-shape 1x3x64x64 \
    --opt-shape 2x3x256x256 --max-shape 2x3x256x256 2>&1 | tail -2 | tee "$OUT/engine.log"
  $PY -m cyclegan_tool convert --engine /tmp/small.plan bench_data/testA /tmp/engine_out --batch-size 8 \
    --size 320 2>&1 | tail -3 | tee -a "$OUT/engine.log"
fi

timeout 150 $PY bench/ops_bench.py --device cuda --repeat 20 2>&1 | tee "$OUT/ops.log"
timeout 150 $PY bench/train_bench.py --device cuda --warmup 10 --repeat 50 2>&1 | tee "$OUT/train.log"
if [ -d bench_data/testA ]; then
  timeout 120 $PY bench/convert_bench.py --device cuda --images bench_data/testA --limit 0 --batch 16 2>&1 | tee "$OUT/convert.log"
  [ -f bench_data/model.pt ] && timeout 60 $PY bench/quality_bench.py --device cuda --model bench_data/model.pt \
    --images bench_data/testA 2>&1 | tee "$OUT/quality.log"
fi
cp results/*.json "$OUT/" 2>/dev/null
cp docs/BENCHMARKS.md "$OUT/BENCHMARKS.md"
