#!/usr/bin/env bash
# Fill gpu-carry/ (git-ignored) with what scripts/gpu-check.sh needs on the GPU machine, which has
# no Rust, no network and no ../shared. Run scripts/build-cuda.sh first.
#
# A run may carry 64 MiB and the FaceNet weights alone are 90 MiB, so the carry is in two parts:
#   gpu-carry/a  the first 62 MiB of the weights           (carried by a first, short run)
#   gpu-carry/b  the rest: weights' tail, binary (xz), goldens, LFW subset, facenet_pytorch
# Env: FDB_SHARED (default ../shared), FDB_MODELS_DIR (default ~/.cache/fdb/models),
#      FACENET_PYTORCH_WHEEL (default /tmp/wheels/facenet_pytorch-2.6.0-*.whl),
#      FDB_CUDA_CACHE (as build-cuda.sh), LFW_FOLDS (pairs.txt folds carried, default 1 of 10).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
shared=${FDB_SHARED:-$repo/../shared}
models=${FDB_MODELS_DIR:-$HOME/.cache/fdb/models}
wheel=${FACENET_PYTORCH_WHEEL:-$(ls /tmp/wheels/facenet_pytorch-2.6.0-*.whl 2>/dev/null | head -1)}
cache=${FDB_CUDA_CACHE:-$HOME/.cache/fdb-cuda/13.0}
folds=${LFW_FOLDS:-1}
carry=$repo/gpu-carry
weights=$models/facenet-20180408-102900.safetensors

for need in "$repo/dist/fdb-cuda" "$weights" "$models/mtcnn.safetensors" "$shared/golden/unit" "$shared/datasets/lfw/pairs.txt" "$wheel"; do
    [[ -e $need ]] || { echo "prepare-gpu-carry: missing $need" >&2; exit 2; }
done
rm -rf "$carry"
mkdir -p "$carry/a" "$carry/b/models" "$carry/b/golden/unit" "$carry/b/golden/e2e" "$carry/b/e2e-photos" "$carry/b/lfw/images"
b=$carry/b

# Weights: split, with the hash of the whole to prove the reassembly.
split -b 62M -d -a 1 "$weights" "$carry/a/facenet.part"
mv "$carry/a/facenet.part1" "$b/"
sha256sum "$weights" | cut -d' ' -f1 >"$b/facenet.sha256"
cp "$models/mtcnn.safetensors" "$models/manifest.json" "$b/models/"

xz -T2 -6 -c "$repo/dist/fdb-cuda" >"$b/fdb-cuda.xz"
cp -r "$repo/dist/cuda-stub" "$b/"

cp "$shared"/golden/unit/{obama_160.png,biden_160.png,facenet_20180408_obama.json} "$b/golden/unit/"
cp -r "$shared/golden/e2e/golden_e2e.json" "$shared/golden/e2e/crops" "$b/golden/e2e/"
python3 - "$shared/golden/e2e/golden_e2e.json" "$shared/datasets/lfw/images" "$b/e2e-photos" <<'PY'
import json, shutil, sys, os
for image in json.load(open(sys.argv[1]))["images"]:
    shutil.copy(os.path.join(sys.argv[2], image["path"]), sys.argv[3])
PY

# LFW subset: the first $folds folds of pairs.txt (600 pairs each) and the images they name.
python3 - "$shared/datasets/lfw" "$b/lfw" "$folds" <<'PY'
import os, shutil, sys
src, dst, folds = sys.argv[1], sys.argv[2], int(sys.argv[3])
lines = open(os.path.join(src, "pairs.txt")).read().split("\n")
sets, per = map(int, lines[0].split())
kept = [l for l in lines[1:1 + folds * 2 * per] if l.strip()]
open(os.path.join(dst, "pairs.txt"), "w").write(f"{folds}\t{per}\n" + "\n".join(kept) + "\n")
def path(name, n): return os.path.join(name, f"{name}_{int(n):04d}.jpg")
files = set()
for l in kept:
    f = l.split()
    files |= {path(f[0], f[1]), path(f[0], f[2])} if len(f) == 3 else {path(f[0], f[1]), path(f[2], f[3])}
for rel in files:
    os.makedirs(os.path.join(dst, "images", os.path.dirname(rel)), exist_ok=True)
    shutil.copy(os.path.join(src, "images", rel), os.path.join(dst, "images", rel))
print(f"prepare-gpu-carry: LFW subset {len(kept)} pairs ({folds} of {sets} folds), {len(files)} images")
PY

# The CPU reference for the detector check, made by the same binary on this machine's CPU.
export LD_LIBRARY_PATH="$cache/py/nvidia/cu13/lib:$repo/dist/cuda-stub${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
"$repo/dist/fdb-cuda" --device cpu --models-dir "$models" --json detect "$b"/e2e-photos/*.jpg >"$b/detect_cpu.json"

mkdir -p "$b/facenet_pytorch"
unzip -q "$wheel" 'facenet_pytorch/*.py' -d "$b/facenet_pytorch"

# The tracked tree (~1.2 MiB) travels with each run too.
for part in a b; do
    mib=$(( $(du -sb "$carry/$part" | cut -f1) / 1048576 ))
    echo "prepare-gpu-carry: gpu-carry/$part $mib MiB (limit 64 MiB per run, with the tracked tree)"
    (( mib <= 62 )) || { echo "prepare-gpu-carry: gpu-carry/$part is too big: carry fewer LFW folds (LFW_FOLDS)" >&2; exit 1; }
done
