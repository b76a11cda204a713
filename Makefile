# Two commands on a fresh machine:  `make demo`  (install + run the embedded models)  and  `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
BIN    := $(VENV)/bin

.PHONY: install demo test lint bench clean

install: $(VENV)/.installed

$(VENV)/.installed: requirements-dev.txt requirements-tools.txt packages/core/pyproject.toml packages/protein/pyproject.toml packages/vision/pyproject.toml packages/audio/pyproject.toml
	@echo "== [1/4] creating the virtual environment $(VENV) =="
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	@echo "== [2/4] installing torch, torchvision, torchaudio and the test tools (about 1-2 minutes) =="
	$(PY) -m pip install -q -r requirements-dev.txt
	@echo "== [3/4] installing maskzoo-core, -protein, -vision, -audio (editable) =="
	$(PY) -m pip install -q -r requirements-tools.txt -e packages/core -e packages/protein -e packages/vision -e packages/audio
	@echo "== [4/4] installed: $(BIN)/maskzoo =="
	touch $@

demo: install
	@echo "== maskzoo text generate (embedded char-level Shakespeare model) =="
	$(BIN)/maskzoo text generate --prompt "ROMEO:" --seed 0
	@echo "== maskzoo protein generate (embedded DSM model) =="
	$(BIN)/maskzoo protein generate --num 3 --length 80 --seed 0
	@echo "== maskzoo vision caption (embedded captioner on procedural scenes) =="
	$(BIN)/maskzoo vision caption apps/data/vision_scenes_demo/*.png
	@echo "(reference captions: apps/data/vision_scenes_demo/reference_captions.jsonl)"
	@echo "== maskzoo audio transcribe / ask (embedded spoken-digit model; speaker never heard in training) =="
	$(BIN)/maskzoo audio transcribe apps/data/audio_demo/*.wav
	$(BIN)/maskzoo audio ask apps/data/audio_demo/*.wav --question "how many digits are spoken?"
	@echo "(reference transcripts: apps/data/audio_demo/reference_transcripts.jsonl)"
	@echo "== maskzoo vision read-text (embedded MDiff4STR reader, one parallel step; IIIT5K crops never trained on) =="
	$(BIN)/maskzoo vision read-text apps/data/scene_text_demo/*.png
	@echo "(reference labels: apps/data/scene_text_demo/reference_labels.jsonl)"

lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports

test: lint
	$(BIN)/pytest -p no:cacheprovider

bench: install
	for b in bench/bench_*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
