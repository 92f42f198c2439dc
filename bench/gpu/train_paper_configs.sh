#!/usr/bin/env bash
# Trains the paper's VGG-19 and VGG-S configurations (256 input) and the default preset side by
# side on one CUDA GPU, then evaluates each on the committed validation split (truth boxes,
# plain and mirror-averaged). Written for a lent GPU whose call may run 10 minutes at most:
#
#   python -m bench.gpu.pack_faces ../shared/data/300w_train .gpu_data/300w_train   # here
#   bash bench/gpu/train_paper_configs.sh .gpu_data/300w_train OUT 6                 # there
#
# OUT receives results.tgz (logs, evaluations, the tail of each run's output) and the default
# preset's exported weights. Checkpoints stay in /dev/shm: VGG-19's is 170 MB without Adam state.
# The paper presets' weights come back int8-packed in 15 MiB parts (bench.gpu.pack_weights).
#
# PRESETS picks the runs (one alone on the card gets 12 loader processes); EXTRA adds drr-train
# options to every run, e.g. PRESETS=vgg19 EXTRA="--ema 0.999 --rotate-prob 0.3".
set -u
DATA=${1:-.gpu_data/300w_train}
OUT=${2:-out}
MINUTES=${3:-6}
DEVICE=${DEVICE:-cuda}  # DEVICE=cpu tries the script out on a machine without one
PRESETS=${PRESETS:-vgg19 vgg-s default}
EXTRA=${EXTRA:-}
export PYTHONUNBUFFERED=1
RUNS=/dev/shm/drr_runs
W=/dev/shm/drr_results
mkdir -p "$OUT" "$RUNS" "$W"
# the loader processes hand batches over in shared memory, and the checkpoints live there
df -h /dev/shm
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c "import torch, numpy, cv2; print('torch', torch.__version__, 'numpy', numpy.__version__, 'cv2', cv2.__version__)"
  nproc; } > "$W/environment.txt" 2>&1
cat "$W/environment.txt"

train() {  # name, then drr-train options
    local name=$1; shift
    timeout $((${MINUTES%.*} * 60 + 150)) python3 -m model.cli_train --data "$DATA" --out "$RUNS/$name" --epochs 5000 --max-minutes "$MINUTES" \
        --device "$DEVICE" --precision bf16 --threads 2 $EXTRA "$@" > "$W/$name.out" 2>&1
    echo "$name: drr-train exited $?" >> "$W/status.txt"
}
set -- $PRESETS
if [ $# -eq 1 ]; then WORKERS=12; else WORKERS=5; fi
for name in $PRESETS; do
    case $name in
        vgg19|vgg-s) train "$name" --preset "$name" --batch-size 32 --lr 1e-3 --workers $WORKERS & ;;
        default) train default --preset default --batch-size 32 --lr 2e-3 --workers $((WORKERS - 1)) \
                     --export "$OUT/drr_default_gpu.pt" & ;;
        *) echo "unknown preset $name"; exit 2 ;;
    esac
done
wait

for name in $PRESETS; do
    cp "$RUNS/$name/log.jsonl" "$W/${name}_log.jsonl" 2>/dev/null
    for mirror in "" "--mirror-average"; do
        timeout 60 python3 -m model.evaluate "$DATA" --names resources/val_split.txt --checkpoint "$RUNS/$name/last.pt" \
            --device "$DEVICE" --precision fp32 $mirror --json "$W/eval_${name}${mirror:+_mirror}.json" \
            > "$W/eval_${name}${mirror:+_mirror}.txt" 2>&1
        echo "eval $name $mirror: exited $?" >> "$W/status.txt"
    done
done
for name in $PRESETS; do
    [ "$name" = default ] || python3 -m bench.gpu.pack_weights pack "$RUNS/$name/last.pt" "$OUT/${name}_int8" \
        >> "$W/status.txt" 2>&1
done
for f in "$W"/*.out; do tr '\r' '\n' < "$f" | grep -v "batch/s\|it/s\|s/batch" | tail -40 > "${f%.out}.tail"; rm "$f"; done
tar czf "$OUT/results.tgz" -C "$W" .
cat "$W/status.txt"
for name in $PRESETS; do echo "== $name"; tail -2 "$W/${name}_log.jsonl" 2>/dev/null | cut -c1-400; cat "$W/eval_$name.txt" "$W/eval_${name}_mirror.txt" 2>/dev/null | tr '\r' '\n' | grep -v "face/s"; done
