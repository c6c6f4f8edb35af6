#!/usr/bin/env bash
# Prints the directory that holds the corpora (multi30k/, sst2/, trec/):
#   1. $XGRAD_DATA, if set;
#   2. ../shared/data beside the repository;
#   3. otherwise data/ in the repository, fetched from the public originals on first use.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [ -n "${XGRAD_DATA:-}" ]; then
  if [ ! -d "$XGRAD_DATA" ]; then
    echo "find-data: XGRAD_DATA=$XGRAD_DATA is not a directory" >&2
    exit 1
  fi
  echo "$XGRAD_DATA"
elif [ -d "$root/../shared/data" ]; then
  (cd "$root/../shared/data" && pwd)
else
  "$root/scripts/fetch-data.sh" "$root/data" >&2
  echo "$root/data"
fi
