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
