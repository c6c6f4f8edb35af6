#!/usr/bin/env bash
# make demo: train the translation example on Multi30K de->en within a time budget, then
# show validation translations next to their references, the validation BLEU and the
# attention picture of the first sentence.
#   XGRAD_DEMO_MINUTES  training time budget (default 15)
#   XGRAD_THREADS       threads for matrix products (default: the machine's cores)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
data=$("$root/scripts/find-data.sh")
corpus="$data/multi30k"
for file in train.de train.en val.de val.en; do
  if [ ! -s "$corpus/$file" ]; then
    echo "demo: $corpus/$file is missing; see $data/README.md or run scripts/fetch-data.sh" >&2
    exit 1
  fi
done
minutes=${XGRAD_DEMO_MINUTES:-15}
threads=${XGRAD_THREADS:-$(nproc)}
translate="$root/build/bin/xgrad-translate"
model="$root/build/demo-model"
rm -rf "$model"  # a fresh run each time

echo "== training on $corpus for at most $minutes minutes with $threads threads"
"$translate" train --train-src "$corpus/train.de" --train-tgt "$corpus/train.en" \
  --valid-src "$corpus/val.de" --valid-tgt "$corpus/val.en" --out "$model" \
  --time-budget "$minutes" --threads "$threads" ${XGRAD_DEMO_FLAGS:-}

echo
echo "== validation translations (beam 5)"
head -n 8 "$corpus/val.de" > "$model/sample.de"
"$translate" translate --model "$model" --beam 5 --threads "$threads" --attention-svg "$model/attention.svg" \
  < "$model/sample.de" > "$model/sample.en"
paste -d '\n' "$model/sample.de" <(head -n 8 "$corpus/val.en") "$model/sample.en" |
  awk '{ label = NR % 3 == 1 ? "source     " : (NR % 3 == 2 ? "reference  " : "translation"); print label " | " $0; if (NR % 3 == 0) print "" }'

echo "== sentences as people write them (read and written by the model's text rule)"
printf '%s\n' "Ein Hund rennt über die Wiese." "Zwei Männer spielen Fußball im Park." \
  "Eine Frau liest ein Buch, während ihr Hund schläft." |
  "$translate" translate --model "$model" --beam 5 --threads "$threads"
echo

echo "== validation BLEU (beam 5)"
"$translate" eval --model "$model" --src "$corpus/val.de" --ref "$corpus/val.en" --beam 5 --threads "$threads"
echo
echo "attention picture of the first sentence: $model/attention.svg"
