#!/usr/bin/env bash
# Train the embedded audio model from scratch, stage by stage (each stage is one command; runs resume).
# Usage: apps/audio_train_embedded.sh [BIN_DIR]   (default .venv/bin). Writes runs/audio_*; then
#   cp -r runs/audio_stage2/model/. packages/audio/src/maskzoo/audio/weights/fsdd-digits/
set -euo pipefail
BIN=${1:-.venv/bin}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
"$BIN/maskzoo" audio pretrain-encoder --config apps/recipes/audio_fsdd_encoder.yaml train.progress=false
"$BIN/maskzoo" audio pretrain-lm --config apps/recipes/audio_fsdd_lm.yaml train.progress=false
"$BIN/maskzoo" audio train --config apps/recipes/audio_fsdd_stage1.yaml train.progress=false
"$BIN/maskzoo" audio train --config apps/recipes/audio_fsdd_stage2.yaml train.progress=false
