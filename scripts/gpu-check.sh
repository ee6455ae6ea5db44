#!/usr/bin/env bash
# The GPU check of issue #6, run on the device machine from the repo root after the two carries
# (see docs/gpu.md). Also runs on a CPU with DEVICE=cpu to prove its logic (torch parts skipped
# when torch has no GPU). Results go to $OUT (default gpu-out/) as JSON; summary.json sums up.
#
# Env: DEVICE (cuda|cuda:N|cpu, default cuda), OUT, GPU_CARRY (default gpu-carry),
#      BENCH_SECONDS (per batch size, default 2), BENCH_BATCHES (default 1,32,128,512; the
#      fp16/bf16 runs take the last two), FDB_CUDA_LIBS (extra library dirs, e.g. on a
#      machine without the nvidia pip packages).
set -uo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
carry=${GPU_CARRY:-$repo/gpu-carry}
b=$carry/b
out=${OUT:-$repo/gpu-out}
device=${DEVICE:-cuda}
seconds=${BENCH_SECONDS:-2}
batches=${BENCH_BATCHES:-1,32,128,512}
big_batches=$(echo "$batches" | tr ',' '\n' | tail -2 | paste -sd,)
work=$(mktemp -d)
mkdir -p "$out"
status=0
step() { echo "gpu-check: $*" >&2; }
fail() { step "FAILED: $*"; status=1; }

# CUDA libraries: the nvidia-* pip packages (cublas, curand, nvrtc, cudart), found through python.
pip_libs=$(python3 - <<'PY' 2>/dev/null
import glob, os
try:
    import nvidia
    dirs = {os.path.dirname(p) for root in nvidia.__path__ for p in glob.glob(os.path.join(root, "**", "lib*.so*"), recursive=True)}
    print(":".join(sorted(dirs)))
except ImportError:
    pass
PY
)
export LD_LIBRARY_PATH="${FDB_CUDA_LIBS:+$FDB_CUDA_LIBS:}${pip_libs:+$pip_libs:}${LD_LIBRARY_PATH:-}"
# No driver (a CPU machine): the generated libcuda stub lets the binary start and fall back to cpu.
if ! python3 -c "import ctypes; ctypes.CDLL('libcuda.so.1')" 2>/dev/null; then
    export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$b/cuda-stub"
fi
step "device $device; LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv >"$out/nvidia-smi.txt" 2>&1 || true

# Unpack: the binary, and the weights from both carries (hash-checked).
python3 -c "import lzma,sys; open(sys.argv[2],'wb').write(lzma.open(sys.argv[1]).read())" "$b/fdb-cuda.xz" "$work/fdb"
chmod +x "$work/fdb"
mkdir -p "$work/models"
cp "$b"/models/* "$work/models/"
cat "$carry"/a/facenet.part0 "$b/facenet.part1" >"$work/models/facenet-20180408-102900.safetensors" 2>/dev/null
if [[ $(sha256sum <"$work/models/facenet-20180408-102900.safetensors" | cut -d' ' -f1) != $(cat "$b/facenet.sha256") ]]; then
    step "the weights do not reassemble: was gpu-carry/a carried by the first run?"
    exit 2
fi
export FDB_MODELS_DIR=$work/models FDB_DB=$work/db
fdb=("$work/fdb" --device "$device")
ldd "$work/fdb" >"$out/ldd.txt" 2>&1

# (a) Embedder goldens on the device.
step "embedder goldens"
"${fdb[@]}" --json embed --aligned "$b"/golden/unit/{obama,biden}_160.png "$b"/golden/e2e/crops/*.png \
    >"$out/embed_goldens.json" 2>"$out/embed_goldens.stderr" || fail "fdb embed"
python3 "$repo/tools/gpu/compare.py" goldens "$out/embed_goldens.json" "$b/golden" >"$out/check_goldens.json" || fail "embedder goldens"

# (b) MTCNN on the e2e photos against the CPU run carried along.
step "detector vs cpu"
"${fdb[@]}" --json detect "$b"/e2e-photos/*.jpg >"$out/detect.json" 2>"$out/detect.stderr" || fail "fdb detect"
python3 "$repo/tools/gpu/compare.py" detect "$out/detect.json" "$b/detect_cpu.json" >"$out/check_detect.json" || fail "detector vs cpu"

# (c) Embedder speed: fp32 at each batch, then fp16/bf16 with their agreement with fp32.
step "embedder speed"
"${fdb[@]}" --json bench embed --batch "$batches" --seconds "$seconds" >"$out/bench_f32.json" 2>>"$out/bench.stderr" || fail "bench f32"
for dtype in f16 bf16; do
    "${fdb[@]}" --json bench embed --dtype "$dtype" --batch "$big_batches" --seconds "$seconds" \
        --agreement "$b"/golden/unit/{obama,biden}_160.png "$b"/golden/e2e/crops/*.png \
        >"$out/bench_$dtype.json" 2>>"$out/bench.stderr" || fail "bench $dtype"
done
if python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() or sys.argv[1] == 'cpu' else 1)" "$device" 2>/dev/null; then
    step "pytorch eager baseline"
    "${fdb[@]}" --json embed --aligned "$b/golden/unit/obama_160.png" >"$work/obama.json" 2>/dev/null
    python3 "$repo/tools/gpu/torch_facenet.py" --facenet-pytorch "$b/facenet_pytorch" \
        --weights "$work/models/facenet-20180408-102900.safetensors" --face "$b/golden/unit/obama_160.png" \
        --ours "$work/obama.json" --device "${device%%:*}" --batches "$batches" --seconds "$seconds" >"$out/torch.json" 2>"$out/torch.stderr" \
        || fail "pytorch baseline (see torch.stderr)"
else
    step "pytorch skipped: no torch with a GPU here"
    echo '{"skipped": "no torch with a GPU on this machine"}' >"$out/torch.json"
fi

# (d) The evaluator on the carried LFW subset (not the full LFW: it does not fit a carry).
step "lfw evaluation (subset)"
start=$(date +%s.%N)
"${fdb[@]}" --json eval lfw --dir "$b/lfw/images" --pairs "$b/lfw/pairs.txt" --cache none \
    >"$out/eval_lfw_subset.json" 2>"$out/eval.stderr" || fail "eval lfw"
python3 -c "import sys; print('{\"lfw_subset_seconds\": %.2f, \"images\": %s}' % (float(sys.argv[2]) - float(sys.argv[1]), sys.argv[3]))" \
    "$start" "$(date +%s.%N)" "$(find "$b/lfw/images" -name '*.jpg' | wc -l)" >"$out/eval_timing.json"

python3 - "$out" "$device" "$status" <<'PY' >"$out/summary.json"
import json, os, sys
out, device, status = sys.argv[1], sys.argv[2], int(sys.argv[3])
def load(name):
    try:
        return json.load(open(os.path.join(out, name)))
    except Exception as e:
        return {"unreadable": str(e)}
summary = {"device": device, "all_ok": status == 0,
           "goldens": {k: load("check_goldens.json").get(k) for k in ("ok", "images", "max_abs_diff")},
           "detect": {k: load("check_detect.json").get(k) for k in ("ok", "images", "max_px", "max_prob")},
           "fdb_faces_per_s": {f"{r['dtype']}@{r['batch']}": round(r["faces_per_s"], 1)
                               for n in ("bench_f32.json", "bench_f16.json", "bench_bf16.json")
                               for r in (load(n) if isinstance(load(n), list) else [])},
           "agreement_vs_f32": {n: [r.get("min_cosine_vs_f32") for r in load(n) if isinstance(r, dict)][:1]
                                for n in ("bench_f16.json", "bench_bf16.json") if isinstance(load(n), list)},
           "torch": load("torch.json"), "eval": load("eval_timing.json")}
print(json.dumps(summary, indent=1))
PY
cat "$out/summary.json"
rm -rf "$work"
exit $status
