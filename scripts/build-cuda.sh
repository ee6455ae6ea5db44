#!/usr/bin/env bash
# Build `fdb --features cuda` on a machine without a GPU and write the carried binary to dist/.
#
# candle's kernels are compiled to PTX by nvcc at build time, and candle 0.11 links cudarc with
# `dynamic-linking`, so the link needs libcuda, libcublas(Lt), libcurand, libnvrtc and libcudart.
# All of it comes from NVIDIA's CUDA 13.0 pip wheels (the GPU machines run driver 580 = CUDA 13.0),
# installed without sudo into a cache dir; libcuda (the driver) has no wheel, so a stub with the
# driver's symbols is generated to link against (and to run on CPU where no driver is installed).
#
# Env: FDB_CUDA_CACHE (default ~/.cache/fdb-cuda/13.0), FDB_CUDA_WHEELS (a folder of already
# downloaded wheels, optional), CUDA_ROOT (use an existing toolkit with bin/nvcc instead),
# CUDA_COMPUTE_CAP (default 90: Hopper, H100/H200), CARGO_TARGET_DIR.
#
# Output: dist/fdb-cuda (stripped) and dist/cuda-stub/libcuda.so.1 (only for GPU-less runs).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${FDB_CUDA_CACHE:-$HOME/.cache/fdb-cuda/13.0}
wheels=(
    nvidia-cuda-nvcc==13.0.88 nvidia-nvvm==13.0.88 nvidia-cuda-crt==13.0.88
    nvidia-cuda-runtime==13.0.96 nvidia-cuda-cccl==13.0.85 nvidia-cuda-nvrtc==13.0.88
    nvidia-curand==10.4.0.35 nvidia-cublas==13.0.2.14
)

install_toolkit() {
    local marker="$cache/.installed"
    if [[ ! -f $marker ]]; then
        echo "build-cuda: installing CUDA 13.0 wheels into $cache" >&2
        local find_links=()
        [[ -n ${FDB_CUDA_WHEELS:-} ]] && find_links=(--find-links "$FDB_CUDA_WHEELS")
        python3 -m pip install --quiet --no-deps --target "$cache/py" "${find_links[@]}" "${wheels[@]}"
        touch "$marker"
    fi
    CUDA_ROOT="$cache/py/nvidia/cu13"
}

# The wheels ship only versioned sonames (libcublas.so.13); `-lcublas` needs the plain names.
link_names() {
    local lib="$CUDA_ROOT/lib" so
    for so in "$lib"/lib{cudart,cublas,cublasLt,curand,nvrtc}.so.*; do
        [[ $so == *builtins* || $so == *.alt.* ]] && continue
        ln -sfn "$(basename "$so")" "$lib/$(basename "$so" | sed 's/\.so\..*/.so/')"
    done
}

# libcuda stub: every cu* entry point of cuda.h (and the three of cudaProfiler.h, which the wheels
# lack), each returning CUDA_ERROR_STUB_LIBRARY (34), so a
# run without a driver sees "no CUDA" and fdb falls back to the CPU.
make_libcuda_stub() {
    local out_dir=$1 src
    mkdir -p "$out_dir"
    src=$(mktemp --suffix=.c)
    { grep -ohE '\bcu[A-Z][A-Za-z0-9_]*' "$CUDA_ROOT/include/cuda.h"; echo cuProfilerInitialize cuProfilerStart cuProfilerStop | tr ' ' '\n'; } |
        sort -u | grep -v '^cuGetError' |
        sed 's/.*/int &(void) { return 34; }/' >"$src"
    cat >>"$src" <<'C'
static const char *stub_message = "no CUDA driver on this machine (fdb's stub libcuda.so.1)";
int cuGetErrorString(int error, const char **text) { *text = stub_message; return 0; }
int cuGetErrorName(int error, const char **text) { *text = "CUDA_ERROR_STUB_LIBRARY"; return 0; }
C
    cc -shared -fPIC -O1 -Wl,-soname,libcuda.so.1 -o "$out_dir/libcuda.so.1" "$src"
    rm -f "$src"
    ln -sfn libcuda.so.1 "$out_dir/libcuda.so"
}

if [[ -n ${CUDA_ROOT:-} && -x ${CUDA_ROOT}/bin/nvcc ]]; then
    echo "build-cuda: using the toolkit at $CUDA_ROOT" >&2
else
    install_toolkit
    link_names
fi
[[ -f $CUDA_ROOT/lib/stubs/libcuda.so ]] || make_libcuda_stub "$CUDA_ROOT/lib/stubs"

export CUDA_ROOT CUDA_HOME="$CUDA_ROOT" PATH="$CUDA_ROOT/bin:$PATH"
export LD_LIBRARY_PATH="$CUDA_ROOT/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# candle-kernels (through cudaforge) reads the target architecture from here: sm_90 for Hopper.
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}
echo "build-cuda: nvcc $(nvcc --version | grep -o 'release [0-9.]*'), CUDA_COMPUTE_CAP=$CUDA_COMPUTE_CAP" >&2

cd "$repo"
cargo build --release --features cuda --bin fdb
target=${CARGO_TARGET_DIR:-$repo/target}
mkdir -p dist/cuda-stub
strip -o dist/fdb-cuda "$target/release/fdb"
cp "$CUDA_ROOT/lib/stubs/libcuda.so.1" dist/cuda-stub/
echo "build-cuda: dist/fdb-cuda $(du -h dist/fdb-cuda | cut -f1) ($(stat -c %s dist/fdb-cuda) bytes)"
echo "build-cuda: runtime libs in $CUDA_ROOT/lib (GPU machine: the nvidia-* pip packages)"
