#!/usr/bin/env bash
# The project's main job, as `make demo` runs it: locate the data, then train and show
# the result of the smallest real example (a TREC question classifier).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
data=$("$root/scripts/find-data.sh")
echo "data: $data"
"$root/build/bin/xgrad-quickstart" --data "$data"
