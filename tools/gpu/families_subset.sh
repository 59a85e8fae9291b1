#!/usr/bin/env bash
# Copy the public dataset's op families that read blobs (and rmsnorm, for the calling-convention
# cases) from ../shared/flashinfer-trace into .gpu_data/public (ignored by git: add
# "/.gpu_data/" to .git/info/exclude), with the blobs that exist (mla_paged's), so a device call
# can carry it. Run from the repo root. Used by tools/gpu/families.sh.
set -euo pipefail
S=${1:-../shared/flashinfer-trace}
D=.gpu_data/public
rm -rf $D && mkdir -p $D/definitions $D/workloads $D/solutions $D/blob/workloads
for op in mla_paged mla_ragged gqa_paged gqa_ragged dsa_paged moe gdn rmsnorm; do
  cp -r "$S/definitions/$op" $D/definitions/
  [ -d "$S/workloads/$op" ] && cp -r "$S/workloads/$op" $D/workloads/
  [ -d "$S/blob/workloads/$op" ] && cp -r "$S/blob/workloads/$op" $D/blob/workloads/
  for a in "$S"/solutions/*/"$op"; do
    [ -d "$a" ] || continue
    d=$D/solutions/$(basename "$(dirname "$a")"); mkdir -p "$d"; cp -r "$a" "$d/"
  done
done
du -sh .gpu_data
