#!/usr/bin/env bash
# Build the folder bench/device_run.sh needs on a lent GPU machine (default .devcarry/, ignored by git through
# .git/info/exclude): the bundled all-MiniLM-L6-v2 with fp16 weights, xz-compressed, and the IMDB train/test
# files as xz: 59 MB, under the 64 MiB a device call carries. About 4 minutes on 2 cores; a finished folder is
# left alone.
#
#   bash bench/devcarry.sh [FOLDER]
set -eu
carry=${1:-.devcarry}
py=${PYTHON:-.venv/bin/python}
data=${IMDB_DIR:-../shared/data/imdb}

case $carry in
    /*) ;;  # outside the checkout: nothing to ignore (but the device call carries only paths inside it)
    *) grep -qx "/$carry/" .git/info/exclude 2>/dev/null || echo "/$carry/" >>.git/info/exclude ;;
esac
mkdir -p "$carry/model" "$carry/imdb"
model=$($py -c "from mlcore.catalogue import resolve_model; print(resolve_model('all-MiniLM-L6-v2'))")
cp "$model"/{config.json,tokenizer.json,tokenizer_config.json,special_tokens_map.json,vocab.txt} "$carry/model/"
if [ ! -f "$carry/model/model.safetensors.xz" ]; then
    $py -c "from safetensors.torch import load_file, save_file
t = load_file('$model/model.safetensors')
save_file({k: v.half() if v.is_floating_point() else v for k, v in t.items()}, '$carry/model/model.safetensors',
          metadata={'format': 'pt'})"
    xz -6 -T2 "$carry/model/model.safetensors"
fi
for split in train test; do
    if [ ! -f "$carry/imdb/$split.csv.xz" ]; then
        zcat "$data/$split.csv.gz" | xz -9e -T2 >"$carry/imdb/$split.csv.xz.partial"
        mv "$carry/imdb/$split.csv.xz.partial" "$carry/imdb/$split.csv.xz"
    fi
done
du -sb "$carry"
