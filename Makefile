# Everything a fresh machine needs is created here: a virtual environment and the packages.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
HOME_DIR ?= var
STAMP  := $(VENV)/.installed

.PHONY: venv demo test lint ui bench clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "needs $(PYTHON)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/impact demo --home $(HOME_DIR)

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest -n 2

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

# The UI over the demo home: uses the demo keys `make demo` created unless real keys are set.
ui: $(STAMP)
	@if [ -z "$$IMPACT_PSEUDONYM_KEY$$IMPACT_PSEUDONYM_KEY_FILE" ] && [ -f $(HOME_DIR)/keys/demo-pseudonym.key ]; then \
	  echo "Using the DEMO keys in $(HOME_DIR)/keys (demo only)"; \
	  export IMPACT_DEMO_MODE=1 IMPACT_PSEUDONYM_KEY_FILE=$(abspath $(HOME_DIR))/keys/demo-pseudonym.key \
	         IMPACT_MASTER_KEY_FILE=$(abspath $(HOME_DIR))/keys/demo-master.key; fi; \
	DAGSTER_HOME=$(abspath $(HOME_DIR))/dagster IMPACT_HOME=$(abspath $(HOME_DIR)) \
	  $(BIN)/dagster dev -m pipelines.definitions -h 127.0.0.1 -p 3000

bench: $(STAMP)
	$(BIN)/python -m bench.pipeline --scale small
	$(BIN)/python -m bench.fixed_costs

clean:
	rm -rf $(HOME_DIR) .pytest_cache
