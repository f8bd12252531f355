#!/usr/bin/env bash
# Builds gpu-bundle/ (ignored by git) for scripts/gpu-check.sh on a GPU machine that has no
# Rust toolchain and no registries:
#   gpu-bundle/transferlab.gz  the CUDA build (scripts/build-cuda.sh), stripped and gzipped
#                              (~200 MB with line tables, ~68 MB stripped — most of it
#                              Candle's compiled kernels — ~19 MB gzipped)
#   gpu-bundle/mnist.tar.gz    the MNIST digits (train/ and test/ class folders)
#   gpu-bundle/BUILD-INFO    commit, date, sha256 of the binary
# Everything carried to the device machine must stay under 64 MiB; this checks it.
#
#   scripts/make-gpu-bundle.sh [MNIST_DIR]     (default ../shared/datasets/mnist)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mnist=${1:-$repo/../shared/datasets/mnist}
[[ -d $mnist/train && -d $mnist/test ]] || mnist=/work/shared/datasets/mnist
[[ -d $mnist/train && -d $mnist/test ]] || { echo "no MNIST folder with train/ and test/ found" >&2; exit 1; }
bundle=$repo/gpu-bundle
limit_bytes=$((60 * 1024 * 1024))   # 64 MiB carry limit, with room for the scripts

bin=$("$repo/scripts/build-cuda.sh" | tail -n1)
[[ -x $bin ]] || { echo "build-cuda.sh did not produce a binary ($bin)" >&2; exit 1; }

rm -rf "$bundle"
mkdir -p "$bundle"
# The line tables only serve backtraces; stripped and compressed, the binary fits the limit.
strip --strip-all -o "$bundle/transferlab" "$bin"
sha=$(sha256sum "$bundle/transferlab" | cut -d' ' -f1)
gzip -6 "$bundle/transferlab"
tar -C "$mnist" -czf "$bundle/mnist.tar.gz" train test
{
  echo "commit  $(git -C "$repo" rev-parse HEAD)$(git -C "$repo" diff --quiet HEAD -- src Cargo.toml Cargo.lock || echo ' (+ uncommitted changes)')"
  echo "built   $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname)"
  echo "sha256  $sha (transferlab, uncompressed)"
  echo "mnist   $mnist ($(tar -tzf "$bundle/mnist.tar.gz" | grep -c '\.png$') images)"
} > "$bundle/BUILD-INFO"

total=$(du -sb "$bundle" | cut -f1)
du -h --apparent-size "$bundle"/*
echo "gpu-bundle: $((total / 1024 / 1024)) MiB in all"
if (( total > limit_bytes )); then
  echo "gpu-bundle is larger than $((limit_bytes / 1024 / 1024)) MiB: too big to carry" >&2
  exit 1
fi
