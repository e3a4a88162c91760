#!/usr/bin/env bash
# The motion benchmark: each model trained on synthetic:motion (12000 videos, generated
# once into runs/motion_data on the first run and shared by every model) and evaluated
# on 400 fresh held-out videos with the video-level protocol. Then the table:
# python experiments/motion/report.py
# The same models on optical flow (the pipeline's modality "flow"):
# MODELS="c3d_flow r3d18_flow r2plus1d18_flow cnn_lstm_flow frame_cnn_flow" bash ...
set -euo pipefail
cd "$(dirname "$0")/../.."
for name in ${MODELS:-c3d r3d18 r2plus1d18 cnn_lstm frame_cnn}; do
  python -m keras_video.train --experiment="motion_${name}" \
    --model_dir="runs/motion_${name}" --data_dir=runs/motion_data --quiet "$@"
done
python experiments/motion/report.py
