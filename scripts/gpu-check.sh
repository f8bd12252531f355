#!/usr/bin/env bash
# The GPU check: runs ON the GPU machine, from a copy of the repository root that carries
# gpu-bundle/ (built here by scripts/make-gpu-bundle.sh). That machine has no Rust
# toolchain and no registries; its PyTorch install ships the CUDA 13 libraries in its
# nvidia/*/lib folders and its driver provides libcuda.so.1.
#
#   scripts/gpu-check.sh            # writes everything under $OUT (or ./gpu-check-out)
#
# Prints: the libraries found, nvidia-smi, the devices transferlab sees, then training
# throughput (bench) and MNIST training runs (train → test) of the small CNN and of the
# ResNet-18-style net on --device cuda and on --device cpu, and a summary table with
# images/s and final accuracies. Every step has a time limit and the whole script a
# budget (GPU_CHECK_BUDGET_S, default 450 s): a hang costs one step, not the session.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bundle=${GPU_BUNDLE:-$repo/gpu-bundle}
out=${OUT:-$repo/gpu-check-out}
budget=${GPU_CHECK_BUDGET_S:-450}
start=$(date +%s)
mkdir -p "$out"
exec > >(tee -a "$out/gpu-check.log") 2>&1

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "# transferlab GPU check — $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname), $(nproc) cores"
cat "$bundle/BUILD-INFO" 2>/dev/null
bin=$work/transferlab
if [[ -f $bundle/transferlab.gz ]]; then
  gzip -dc "$bundle/transferlab.gz" > "$bin" && chmod +x "$bin"
elif [[ -f $bundle/transferlab ]]; then
  cp "$bundle/transferlab" "$bin" && chmod +x "$bin"
fi
[[ -x $bin ]] || { echo "FATAL: no binary in $bundle (make it with scripts/make-gpu-bundle.sh, carry gpu-bundle)"; exit 1; }
echo "binary sha256 $(sha256sum "$bin" | cut -d' ' -f1)"

# ---- the CUDA libraries ------------------------------------------------------------------
# The binary links libcuda.so.1 (driver), libcublas.so.13, libcublasLt.so.13,
# libcudart.so.13, libcurand.so.10 and libnvrtc.so.13 dynamically.
libdirs=$(python3 - <<'EOF' 2>/dev/null
import glob, os
want = ["libcublas.so.13", "libcublasLt.so.13", "libcudart.so.13", "libcurand.so.10", "libnvrtc.so.13"]
roots = []
try:
    import nvidia
    roots += list(nvidia.__path__)
except Exception:
    pass
try:
    import torch
    roots.append(os.path.join(os.path.dirname(torch.__file__), "lib"))
except Exception:
    pass
dirs = []
for w in want:
    for r in roots:
        hits = glob.glob(os.path.join(r, "**", w), recursive=True)
        if hits:
            d = os.path.dirname(hits[0])
            if d not in dirs:
                dirs.append(d)
            break
print(":".join(dirs))
EOF
)
if [[ -z $libdirs ]]; then
  echo "python3 found no nvidia lib folders; searching the file system"
  libdirs=$(find / -xdev \( -name 'libcublas.so.13' -o -name 'libcudart.so.13' -o -name 'libnvrtc.so.13' -o -name 'libcurand.so.10' -o -name 'libcublasLt.so.13' \) 2>/dev/null \
            | xargs -r -n1 dirname | awk '!seen[$0]++' | paste -sd:)
fi
export LD_LIBRARY_PATH=$libdirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
echo "--- ldd (CUDA libraries)"
ldd "$bin" | grep -E 'cuda|cublas|curand|nvrtc|not found'
if ldd "$bin" | grep -q 'not found'; then
  echo "FATAL: a library the binary needs is missing (above); nothing can run"
  exit 1
fi

echo "--- nvidia-smi"
timeout 20 nvidia-smi || echo "(nvidia-smi failed: $?)"
timeout 20 nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv 2>/dev/null

# ---- data ----------------------------------------------------------------------------------
data=$work/data
mkdir -p "$data"
tar -C "$data" -xzf "$bundle/mnist.tar.gz" || { echo "FATAL: cannot unpack mnist.tar.gz"; exit 1; }
echo "MNIST: $(find "$data/train" -name '*.png' | wc -l) train, $(find "$data/test" -name '*.png' | wc -l) test images"

# ---- steps -----------------------------------------------------------------------------------
# step NAME LIMIT_S ARGS… : run the binary with a time limit (cut to what the budget leaves).
step() {
  local name=$1 limit=$2; shift 2
  local left=$(( budget - ($(date +%s) - start) ))
  if (( left < 20 )); then
    echo "=== $name: SKIPPED (budget of ${budget} s spent)"
    echo "skipped" > "$out/$name.rc"
    return
  fi
  (( limit > left )) && limit=$left
  echo "=== $name (limit ${limit} s): transferlab $*"
  local t0=$(date +%s%N)
  timeout -k 5 "$limit" "$bin" "$@" > "$out/$name.out" 2> "$out/$name.err"
  local rc=$?
  echo "$rc" > "$out/$name.rc"
  local ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  printf 'rc %s, %d.%03d s\n' "$rc" $((ms / 1000)) $((ms % 1000))
  cat "$out/$name.out"
  grep -iE 'note|warn|error|panic' "$out/$name.err" | head -n 5
  (( rc == 124 || rc == 137 )) && echo "(timed out)"
}

step devices 60 devices
if ! grep -q '^cuda ' "$out/devices.out" 2>/dev/null; then
  echo "!!! transferlab found no usable CUDA GPU (see the note above): the cuda steps would"
  echo "!!! only train on the CPU, so they are skipped. Fix the driver/library problem first."
  skip_cuda=1
fi
cuda_step() { [[ -n ${skip_cuda:-} ]] && { echo "=== $1: SKIPPED (no CUDA GPU)"; echo skipped > "$out/$1.rc"; return; }; step "$@"; }
# Throughput on random data (batch 64, AdamW; the GPU queue is drained before each reading).
cuda_step bench-small-cuda 60 bench --device cuda --backbone small-cnn --steps 200 --load-images 100
cuda_step bench-resnet-cuda 90 bench --device cuda --backbone resnet18 --input-size 32 --steps 100 --load-images 100
cuda_step bench-resnet-cuda-b256 90 bench --device cuda --backbone resnet18 --input-size 32 --batch 256 --steps 40 --load-images 100
# MNIST: train on train/ (20 % held out), evaluate on test/; the same seed on both devices.
mn=(--source "$data/train" --target "$data/test" --seed 1 --quiet)
cuda_step run-small-cuda 90 run "${mn[@]}" --backbone small-cnn --epochs 3 --device cuda --json "$out/run-small-cuda.json"
cuda_step run-resnet-cuda 120 run "${mn[@]}" --backbone resnet18 --epochs 2 --device cuda --json "$out/run-resnet-cuda.json"
step bench-small-cpu 60 bench --device cpu --backbone small-cnn --steps 60 --load-images 100
step bench-resnet-cpu 60 bench --device cpu --backbone resnet18 --input-size 32 --steps 15 --load-images 100
step run-small-cpu 90 run "${mn[@]}" --backbone small-cnn --epochs 3 --device cpu --json "$out/run-small-cpu.json"
step run-resnet-cpu 150 run "${mn[@]}" --backbone resnet18 --epochs 2 --device cpu --json "$out/run-resnet-cpu.json"

# ---- summary ----------------------------------------------------------------------------------
echo "=== summary"
python3 - "$out" <<'EOF' | tee "$out/summary.md"
import json, os, re, sys
out = sys.argv[1]
def bench(name):
    try:
        text = open(os.path.join(out, name + ".out")).read()
    except OSError:
        return "-", "-", "-"
    get = lambda k: (re.search(k + r" (\S+)", text) or [None, "-"])[1]
    return get("device"), get("train_images_per_sec"), get("infer_images_per_sec")
print("| bench (random data) | device used | train img/s | inference img/s |")
print("| --- | --- | --- | --- |")
for n in ["bench-small-cuda", "bench-small-cpu", "bench-resnet-cuda", "bench-resnet-cuda-b256", "bench-resnet-cpu"]:
    print("| %s | %s | %s | %s |" % ((n,) + bench(n)))
print()
print("| MNIST run | device used | epochs | train img/s (per epoch) | source acc | target (test) acc | losses | seconds |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
for n in ["run-small-cuda", "run-small-cpu", "run-resnet-cuda", "run-resnet-cpu"]:
    try:
        r = json.load(open(os.path.join(out, n + ".json")))
    except Exception:
        rc = open(os.path.join(out, n + ".rc")).read().strip() if os.path.exists(os.path.join(out, n + ".rc")) else "?"
        print("| %s | - | - | - | - | - | - | failed (rc %s) |" % (n, rc))
        continue
    h = r.get("history", [])
    f = r.get("final", {})
    pct = lambda v: "-" if v is None else "%.2f %%" % (100 * v)
    print("| %s | %s | %d | %s | %s | %s | %s | %.1f |" % (
        n, r.get("device", "?"), len(h),
        " / ".join("%.0f" % e["images_per_sec"] for e in h),
        pct(f.get("source_accuracy")), pct(f.get("target_accuracy")),
        " / ".join("%.4f" % e["train_loss"] for e in h),
        r.get("elapsed_secs", float("nan"))))
EOF
echo "total $(( $(date +%s) - start )) s; files in $out"
