#!/usr/bin/env bash
# One call on a lent GPU machine (the `device` tool): the CUDA tests, then the full training benchmark in order of
# what matters most, each step inside one overall deadline so that the figures come back before the call's limit.
#
#   bash bench/device_run.sh CARRY OUT [SECONDS]
#
# CARRY holds model/ (the bundled all-MiniLM-L6-v2 with fp16 weights, xz-compressed as model.safetensors.xz:
# the fp32 file does not fit the 64 MiB a call may carry; the bench trains from an fp32 copy of it) and
# imdb/{train,test}.csv.xz (see bench/README.md, "On a lent GPU"). OUT gets gpu.txt, cuda.txt, probe.json
# (bench/gpu_probe.py), bench.log and one JSON per finished benchmark (one cut short leaves a JSON with
# "complete": false holding the runs it finished): 8 files at most, what a call brings back. BENCHES="study128
# study512" runs only those. Try it on CPU first:
#   DEVICE=cpu EXTRA="--train-rows 64 --valid-rows 16 --test-rows 32 --infer-rows 16" bash bench/device_run.sh ...
set -u
carry=$1
out=$2
deadline=$((SECONDS + ${3:-540}))
py=${PYTHON:-python3}
device=${DEVICE:-cuda}
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=true

left() { echo $((deadline - SECONDS)); }

{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
    nproc
    $py -c "import torch, transformers, tokenizers, onnxruntime as o
print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'transformers', transformers.__version__,
      'tokenizers', tokenizers.__version__, 'onnxruntime', o.__version__)"
} >"$out/gpu.txt" 2>&1

data=$(mktemp -d)
cp -r "$carry/model" "$data/model"
$py -c "import lzma, shutil
for packed, plain in [('$carry/imdb/train.csv.xz', '$data/train.csv'), ('$carry/imdb/test.csv.xz', '$data/test.csv'),
                      ('$carry/model/model.safetensors.xz', '$data/model/model.safetensors')]:
    with lzma.open(packed) as src, open(plain, 'wb') as dst:
        shutil.copyfileobj(src, dst)" || exit 1
rm "$data/model/model.safetensors.xz"

# tests/conftest.py needs Django, which that machine lacks; the CUDA tests need only tests/mlcore's fixtures.
timeout 150 $py -m pytest -c /dev/null --rootdir . --confcutdir tests/mlcore -p no:cacheprovider -q -rs \
    tests/mlcore/test_cuda.py >"$out/cuda.txt" 2>&1

# Where a GPU training step's time goes, and whether the engine's forward context pays for new lengths (25 s).
if [ "$device" = cuda ]; then
    timeout 90 $py -m bench.gpu_probe --out "$out/probe.json" >/dev/null 2>>"$out/bench.log"
fi

bench() {
    local budget
    budget=$(left)
    if [ "$budget" -lt 60 ]; then
        echo "skipped (only ${budget}s left): $*" >>"$out/bench.log"
        return
    fi
    echo "=== $* (${budget}s left)" >>"$out/bench.log"
    # shellcheck disable=SC2086  # EXTRA is a list of options
    timeout "$budget" $py -m bench.train_bench --full --device "$device" --model "$data/model" \
        --train-file "$data/train.csv" --test-file "$data/test.csv" --infer-seconds 5 --progress-every 15 \
        --out "$out" ${EXTRA:-} "$@" >>"$out/bench.log" 2>&1
    echo "=== exit $? after $((SECONDS))s" >>"$out/bench.log"
}

# BENCHES picks and orders them (default all four, in this order).
for name in ${BENCHES:-study128 best128 best512 study512}; do
    case $name in
        study128) bench --engine-recipe study ;;                                 # the GPU speed-up, same recipe
        best128) bench --engine-recipe best --skip-baseline ;;                   # accuracy vs 0.8753 / 0.8731
        best512) bench --engine-recipe best --skip-baseline --max-length 512 ;;  # longer texts
        study512) bench --engine-recipe study --max-length 512 ;;                # the speed-up where padding pays
        plain128) bench --engine-recipe study --skip-baseline --engine-group-by-length false ;;  # vs grouped
        *) echo "unknown benchmark $name (study128, best128, best512, study512, plain128)" >>"$out/bench.log" ;;
    esac
done
rm -rf "$data"
