#!/usr/bin/env bash
# Copy the rmsnorm and gemm part of ../shared/flashinfer-trace into .gpu_data/shared (ignored by
# git; add "/.gpu_data/" to .git/info/exclude) so a device call can carry it. Run from the repo root.
set -euo pipefail
S=${1:-../shared/flashinfer-trace}
rm -rf .gpu_data/shared && mkdir -p .gpu_data/shared/{definitions,workloads,solutions,traces}
for op in rmsnorm gemm; do
  cp -r "$S/definitions/$op" .gpu_data/shared/definitions/
  cp -r "$S/workloads/$op" .gpu_data/shared/workloads/
  for a in "$S"/solutions/*/"$op"; do
    [ -d "$a" ] || continue
    d=.gpu_data/shared/solutions/$(basename "$(dirname "$a")"); mkdir -p "$d"; cp -r "$a" "$d/"
  done
done
cp -r "$S"/traces/* .gpu_data/shared/traces/
du -sh .gpu_data
