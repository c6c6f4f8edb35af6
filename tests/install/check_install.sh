#!/usr/bin/env bash
# Installs the built tree into a scratch prefix and builds a separate consumer project
# against it, once through find_package(xgrad) and once through pkg-config; runs both.
set -euo pipefail
build_dir=$1
source_dir=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cmake --install "$build_dir" --prefix "$work/prefix" > "$work/install.log"

consumer="$source_dir/tests/install/consumer"
cmake -S "$consumer" -B "$work/cmake-build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$work/prefix" > "$work/configure.log"
cmake --build "$work/cmake-build" > "$work/build.log"
echo "find_package(xgrad): $("$work/cmake-build/consumer")"

pc_file=$(find "$work/prefix" -name xgrad.pc)
pc_dir=$(dirname "$pc_file")
# Nothing but pkg-config's flags: its Libs carry the rpath that lets the program find libxgrad.
# shellcheck disable=SC2046 # pkg-config prints several flags on purpose
g++ -std=c++20 -O1 "$consumer/main.cpp" -o "$work/pc-consumer" \
  $(PKG_CONFIG_PATH="$pc_dir" pkg-config --cflags --libs xgrad)
echo "pkg-config xgrad: $("$work/pc-consumer")"

# docs/training.md's example, built as a user builds it: a run stopped after 40 steps and
# resumed must end with the weights of a run that was never stopped, bit for bit. On one
# thread: with more, OpenBLAS may sum in another order whenever the thread count follows
# another process's load (framework/threading.h), and the bits may then differ in any run.
export OMP_NUM_THREADS=1
awk '/<!-- training-example: built and run by the install test -->/ { marked = 1; next }
     marked && /^```cpp$/ { inside = 1; next }
     inside && /^```$/ { exit }
     inside { print }' "$source_dir/docs/training.md" > "$work/char_model.cpp"
[ -s "$work/char_model.cpp" ] || { echo "docs/training.md has no block marked as the training example"; exit 1; }
# shellcheck disable=SC2046
g++ -std=c++20 -O2 "$work/char_model.cpp" -o "$work/char_model" \
  $(PKG_CONFIG_PATH="$pc_dir" pkg-config --cflags --libs xgrad)
"$work/char_model" "$work/whole" > "$work/whole.log" 2>&1
"$work/char_model" "$work/parts" --max-steps 40 > "$work/parts.log" 2>&1
grep -q "reached the limit of 40 steps" "$work/parts.log" || { echo "the stopped run did not stop at 40 steps:"; cat "$work/parts.log"; exit 1; }
"$work/char_model" "$work/parts" --resume >> "$work/parts.log" 2>&1
cmp "$work/whole/model.safetensors" "$work/parts/model.safetensors" ||
  { echo "the resumed run's weights differ from the uninterrupted run's"; exit 1; }
echo "docs/training.md example: $(tail -1 "$work/whole.log"); stopped and resumed, the same weights"
