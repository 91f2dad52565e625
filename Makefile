# Two entry points on a fresh machine: `make run` (install + start the app) and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install index eval bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): requirements.txt requirements-dev.txt requirements-llm.txt | $(BIN)/python
	# torch first and pinned: the CPU build lies on local disk; a range would pull CUDA.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

# The PyPI milvus 2.3.5 standalone server for the slow Milvus-server tests, in its own venv (not a
# dependency of Wenda; tests/test_milvus_server.py starts and stops it by PID).
MILVUS_SERVER ?= $(HOME)/.cache/wenda-milvus-server
$(MILVUS_SERVER)/bin/python:
	$(PY) -m venv $(MILVUS_SERVER)
	$(MILVUS_SERVER)/bin/pip install --quiet milvus==2.3.5

run: $(STAMP)
	$(BIN)/python app.py

index: $(STAMP)
	$(BIN)/python -m index build

test: $(STAMP) $(MILVUS_SERVER)/bin/python
	WENDA_MILVUS_SERVER_PY=$(MILVUS_SERVER)/bin/python $(BIN)/python -m pytest -q --durations=15

eval: $(STAMP)
	$(BIN)/python -m eval --gold data/gold/taiyuan_gold.jsonl --check eval/thresholds.json

bench: $(STAMP)
	$(BIN)/python -m eval bench

clean:
	rm -rf $(VENV) data/index
