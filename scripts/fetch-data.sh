#!/usr/bin/env bash
# Downloads the public originals of the corpora into DIR and converts them to the layout
# and format of ../shared/data (see its README):
#   multi30k/{train,val}.{de,en}  tokenised, lower-cased text, one sentence a line
#   sst2/{train,dev}.tsv          header `sentence<TAB>label`
#   trec/train.tsv                header `question<TAB>label<TAB>fine_label`
# Already converted corpora are left alone. Each file is written to a temporary name and
# renamed, so an interrupted run never leaves a half-written corpus behind.
set -euo pipefail
dir=${1:?usage: fetch-data.sh DIR}
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh" curl unzip
mkdir -p "$dir"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

download() {  # download URL FILE
  echo "fetching $1"
  curl --fail --location --silent --show-error --retry 3 -o "$2" "$1"
}

publish() {  # publish TEMP FINAL: atomically put a finished file in place
  mkdir -p "$(dirname "$2")"
  mv "$1" "$2"
}

multi30k=https://raw.githubusercontent.com/multi30k/dataset/master/data/task1/tok
for split in train val; do
  for language in de en; do
    target="$dir/multi30k/$split.$language"
    [ -s "$target" ] && continue
    download "$multi30k/$split.lc.norm.tok.$language" "$work/$split.$language"
    publish "$work/$split.$language" "$target"
  done
done

if [ ! -s "$dir/sst2/train.tsv" ] || [ ! -s "$dir/sst2/dev.tsv" ]; then
  download https://dl.fbaipublicfiles.com/glue/data/SST-2.zip "$work/sst2.zip"
  unzip -q -o "$work/sst2.zip" -d "$work"
  for split in train dev; do
    # GLUE's files already have the `sentence<TAB>label` header; normalise line endings.
    tr -d '\r' < "$work/SST-2/$split.tsv" > "$work/sst2-$split.tsv"
    publish "$work/sst2-$split.tsv" "$dir/sst2/$split.tsv"
  done
fi

if [ ! -s "$dir/trec/train.tsv" ]; then
  download https://cogcomp.seas.upenn.edu/Data/QA/QC/train_5500.label "$work/train_5500.label"
  # Lines read `COARSE:fine question words ...` in Latin-1.
  {
    printf 'question\tlabel\tfine_label\n'
    iconv -f latin1 -t utf-8 "$work/train_5500.label" | tr -d '\r' |
      awk '{ split($1, label, ":"); $1 = ""; sub(/^ /, ""); printf "%s\t%s\t%s\n", $0, label[1], label[2] }'
  } > "$work/trec.tsv"
  publish "$work/trec.tsv" "$dir/trec/train.tsv"
fi
echo "corpora ready in $dir"
