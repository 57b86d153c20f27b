#!/usr/bin/env bash
# Split wheels into parts small enough for the device tool's carry limit, or join them back.
#   tools/wheel_parts.sh split .whl    # NAME.whl -> NAME.whl.part-aa, -ab, ... (40 MiB each)
#   tools/wheel_parts.sh join .whl     # parts -> NAME.whl (and removes the parts)
set -euo pipefail
mode=$1 dir=$2
case $mode in
  split) for w in "$dir"/*.whl; do split -b 40M "$w" "$w.part-" && rm "$w"; done ;;
  join) for first in "$dir"/*.whl.part-aa; do w=${first%.part-aa}; cat "$w".part-* > "$w" && rm "$w".part-*; done ;;
  *) echo "usage: $0 split|join DIR" >&2; exit 2 ;;
esac
