#!/usr/bin/env bash
# Does a boolean training flag change the motion benchmark's accuracy? One recipe
# (EXPERIMENT, default motion_c3d) trained with --FLAG and with --noFLAG (FLAG default
# mixed_precision; jit_compile for XLA), at several seeds. A seed sets the generated
# data (train seed, val seed + 1, test seed + 2, in runs/motion_data) and the initial
# weights, so both settings of one seed see the same clips in the same order from the
# same start. Then the table (video top-1 and validation top-1 by epoch of each run):
#   SEEDS="10 20" bash experiments/motion/flag_seeds.sh
#   EXPERIMENT=motion_cnn_lstm FLAG=jit_compile SEEDS=10 bash experiments/motion/flag_seeds.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
experiment=${EXPERIMENT:-motion_c3d}
flag=${FLAG:-mixed_precision}
seeds=${SEEDS:-10 20}
for seed in $seeds; do
  for setting in "$flag" "no$flag"; do
    python -m keras_video.train --experiment="$experiment" --seed="$seed" \
      --"$setting" --model_dir="runs/${experiment}_seed${seed}_${setting}" \
      --data_dir=runs/motion_data --quiet "$@"
  done
done
# shellcheck disable=SC2086  # one argument per seed
python experiments/motion/flag_report.py --experiment="$experiment" --flag="$flag" \
  --seeds $seeds
