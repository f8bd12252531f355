#!/usr/bin/env bash
# Relation-based transfer, measured: on a built-in demo, a student small CNN trained alone
# (source-only), then taught by a teacher — a network that adapted to the target by label
# propagation (same classes), and the built-in ImageNet EfficientNet-Lite0 (1000 other
# classes) — through its relations (relation-distill) and, where the classes match, its
# outputs (distill). Also the labels spreading over the graph of raw pixels (similarity
# --spread). Target accuracy in %, one line per demo and seed. Usage:
#   scripts/bench-relations.sh [BINARY] [SEEDS] [DEMOS...]
# e.g. scripts/bench-relations.sh target/release/transferlab 3 digits-rotated mnist-m
set -euo pipefail
bin=${1:-target/release/transferlab}
seeds=${2:-3}
shift $(( $# > 2 ? 2 : $# )) || true
demos=("$@")
[ ${#demos[@]} -eq 0 ] && demos=(digits-rotated mnist-m)
epochs=${EPOCHS:-5}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pct() { sed -n 's/.*target \([0-9.]*\)%.*/\1/p' | head -1; }
agree() { python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["extra"]["relations"]; print("%.2f>%.2f" % (r["agreement_before"], r["agreement_after"]))' "$1"; }
spread() { python3 -c 'import json,sys; print("%.1f" % (100*json.load(open(sys.argv[1]))["label_spreading"]["accuracy"][-1]))' "$1"; }
printf '%-15s %4s %8s %8s %9s %12s %8s %10s %12s %9s\n' demo seed alone teacher rd_teacher agreement distill rd_imagenet agreement_in spread_px
for demo in "${demos[@]}"; do
  for seed in $(seq 1 "$seeds"); do
    run=(run --demo "$demo" --epochs "$epochs" --seed "$seed" -q)
    teacher="$work/$demo-$seed.safetensors"
    alone=$("$bin" "${run[@]}" --method source-only 2>/dev/null | pct)
    taught=$("$bin" "${run[@]}" --method label-propagation --save "$teacher" 2>/dev/null | pct)
    rd=$("$bin" "${run[@]}" --method relation-distill --teacher "$teacher" --json "$work/rd.json" 2>/dev/null | pct)
    kd=$("$bin" "${run[@]}" --method distill --teacher "$teacher" 2>/dev/null | pct)
    rdi=$("$bin" "${run[@]}" --method relation-distill --teacher imagenet --json "$work/rdi.json" 2>/dev/null | pct)
    "$bin" similarity --demo "$demo" --spread --max-per-domain 1000 --permutations 10 --seed "$seed" \
      --json "$work/spread.json" >/dev/null 2>&1
    printf '%-15s %4s %8s %8s %9s %12s %8s %10s %12s %9s\n' "$demo" "$seed" "$alone" "$taught" "$rd" \
      "$(agree "$work/rd.json")" "$kd" "$rdi" "$(agree "$work/rdi.json")" "$(spread "$work/spread.json")"
  done
done
