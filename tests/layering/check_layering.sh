#!/usr/bin/env bash
# The architecture points one way: framework <- layers <- training <- models <- examples. A folder may
# include its own headers and those of the folders below it, never those above.
set -euo pipefail
root=$1
status=0
check() {  # check <folder> <forbidden include pattern>
  local folder=$1 pattern=$2
  [ -d "$root/$folder" ] || return 0
  local hits
  hits=$(grep -rnE "#include [<\"]($pattern)" "$root/$folder" --include='*.h' --include='*.cpp' || true)
  if [ -n "$hits" ]; then
    echo "$folder/ includes a higher layer:"
    echo "$hits"
    status=1
  fi
}
check framework 'xgrad/(layers|training|models|examples)|xgrad/(layers|train)\.h'
check layers 'xgrad/(training|models|examples)|xgrad/train\.h'
check training 'xgrad/(models|examples)'
check models 'xgrad/examples'
[ $status -eq 0 ] && echo "layering ok: framework <- layers <- training <- models <- examples"
exit $status
