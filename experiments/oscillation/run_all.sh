#!/usr/bin/env bash
# The oscillation table of experiments/RESULTS.md, in one go (CPU: about 25 minutes).
#   bash experiments/oscillation/run_all.sh [RUNS_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-runs}
seed_clips=(tests/data/seed_clips/eval_2p549 tests/data/seed_clips/sample_1)

# 1. The default recipe: small CNN on 64x64 gray frames -> LSTM 100 x 2, end to end.
/usr/bin/time -f "wall %e s" python -m keras_video.train --model=cnn_lstm \
    --model_dir="$runs/oscillation_cnn_lstm"
python -m keras_video.predict --model_dir="$runs/oscillation_cnn_lstm" "${seed_clips[@]}"

# 2. The seed's recipe: frozen ResNet-18 (random weights: no download here; add
#    --backbone_weights=resnet18-f37072fd.pth for ImageNet), features cached once.
#    Fewer clips than the default so that feature extraction at 224x224 fits a CPU.
/usr/bin/time -f "wall %e s" python -m keras_video.train --experiment=oscillation_seed000 \
    --num_train=600 --num_val=100 --num_eval=500 --model_dir="$runs/oscillation_seed000"
python -m keras_video.predict --model_dir="$runs/oscillation_seed000" "${seed_clips[@]}"

# 3. The classical estimator (no learning).
python experiments/oscillation/classical_baseline.py --num 500 --seed 12345
