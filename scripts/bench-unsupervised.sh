#!/usr/bin/env bash
# Unsupervised transfer, measured: rotation pretraining (no label read) on a built-in demo,
# then (1) k-means clusters of the target on its features against a random-weight network
# (adjusted Rand index vs the target's class folders) and (2) a run with K labelled target
# images per class on the frozen features, from the pretrained model, from random
# weights and from a model trained on the labelled source (source-only, the same epochs).
# Prints one line per demo and seed. Usage:
#   scripts/bench-unsupervised.sh [BINARY] [SEEDS] [DEMOS...]
# e.g. scripts/bench-unsupervised.sh target/release/transferlab 3 digits-colour mnist-m
set -euo pipefail
bin=${1:-target/release/transferlab}
seeds=${2:-3}
shift $(( $# > 2 ? 2 : $# )) || true
demos=("$@")
[ ${#demos[@]} -eq 0 ] && demos=(digits-colour digits-rotated mnist-m)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pct() { sed -n 's/.*target \([0-9.]*\)%.*/\1/p' | head -1; }
ari() { python3 -c 'import json,sys; print("%.3f" % json.load(open(sys.argv[1]))["clusters"]["adjusted_rand_index"])' "$1"; }
printf '%-16s %4s %9s %11s %11s %12s %12s %12s\n' demo seed rot_acc ari_random ari_rotation probe_random probe_rotation probe_labelled
for demo in "${demos[@]}"; do
  for seed in $(seq 1 "$seeds"); do
    model="$work/$demo-$seed.safetensors"
    "$bin" run --demo "$demo" --method rotation-pretrain --epochs 5 --seed "$seed" \
      --save "$model" --json "$work/report.json" -q >/dev/null 2>&1
    labelled="$work/$demo-$seed-labelled.safetensors"
    "$bin" run --demo "$demo" --method source-only --epochs 5 --seed "$seed" --save "$labelled" -q >/dev/null 2>&1
    rot=$(python3 -c 'import json,sys; print("%.3f" % json.load(open(sys.argv[1]))["history"][-1]["metrics"]["rotation_acc"])' "$work/report.json")
    sim=(similarity --demo "$demo" --layer fc1 --clusters 10 --max-per-domain 1000 --permutations 10 --seed "$seed")
    "$bin" "${sim[@]}" --backbone small-cnn --json "$work/random.json" >/dev/null 2>&1
    "$bin" "${sim[@]}" --init "$model" --json "$work/rotation.json" >/dev/null 2>&1
    probe=(run --demo "$demo" --method target-only --target-labels 5 --freeze 2 --epochs 10 --seed "$seed" -q)
    random=$("$bin" "${probe[@]}" 2>/dev/null | pct)
    pretrained=$("$bin" "${probe[@]}" --init "$model" 2>/dev/null | pct)
    supervised=$("$bin" "${probe[@]}" --init "$labelled" 2>/dev/null | pct)
    printf '%-16s %4s %9s %11s %11s %12s %12s %12s\n' "$demo" "$seed" "$rot" \
      "$(ari "$work/random.json")" "$(ari "$work/rotation.json")" "$random" "$pretrained" "$supervised"
  done
done
