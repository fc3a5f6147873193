# make test  -- create .venv if needed, install the project with its test extras, run the tests
# make lint  -- ruff and mypy (also run by make test)
# make bench -- print this machine's figures (see bench/)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: test lint bench install clean demo demo-v5

$(STAMP): setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# The interop tests drive an independent devp2p implementation (ethereumjs, pinned in
# tests/interop/package.json). Without npm they skip, except in CI where they must run.
INTEROP := tests/interop/node_modules/.installed-stamp
$(INTEROP): tests/interop/package.json tests/interop/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  cd tests/interop && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.installed-stamp; \
	else echo "npm not found: the interop tests will be skipped"; fi

# The web view's browser test (tests/simulations/test_ui.py) drives Debian's chromium through
# chromium-driver. It skips without them, except under CI=true, where this installs them first.
.PHONY: browser
browser:
	@if [ "$$CI" = "true" ] && { ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; }; then \
	  echo "CI: installing chromium and chromium-driver for the web view test"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	fi

test: $(STAMP) $(INTEROP) lint browser
	$(PY) -m pytest -q $(PYTEST_ARGS)

# make lint -- ruff (rules in ruff.toml) and mypy on p2p/ (settings in mypy.ini); part of make test
LINT_PATHS := p2p tests tools bench soak setup.py
lint: $(STAMP)
	$(PY) -m ruff check $(LINT_PATHS)
	$(PY) -m mypy

# make deadcode -- vulture's list of definitions nothing uses (a dev tool, not part of make test:
# a row is a place to look; tools/vulture_whitelist.py lists uses vulture cannot see)
.PHONY: deadcode
deadcode: $(STAMP)
	-$(PY) -m vulture p2p tests bench soak tools tools/vulture_whitelist.py --min-confidence 60

DEMO_STAMP := $(VENV)/.demo-stamp
$(DEMO_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[demo]'
	touch $(DEMO_STAMP)

# make demo -- a 16-node devp2p network on 127.0.0.1 (NODES=N to change); pictures in demo-output/
NODES ?= 16
demo: $(DEMO_STAMP)
	$(PY) -m p2p.cmd.demo --nodes $(NODES)

# make demo-v5 -- 16 discovery v5 nodes on 127.0.0.1, 4 register topic "chat", all search it; demo-output/topic.png
demo-v5: $(DEMO_STAMP)
	$(PY) -m p2p.cmd.demo --v5 --nodes $(NODES)

# make sim -- a simulation network of SIM_NODES ping-pong nodes on 127.0.0.1:8888 (SIM_ADAPTER=exec for one
# process per node); open the printed URL in a browser, or drive it with p2psim
SIM_NODES ?= 5
SIM_ADAPTER ?= sim
SIM_ADDR ?= 127.0.0.1:8888
.PHONY: sim
sim: $(STAMP)
	$(PY) -m p2p.simulations --addr $(SIM_ADDR) --adapter $(SIM_ADAPTER) --services ping-pong --nodes $(SIM_NODES)

bench: $(STAMP)
	$(PY) -m bench

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache

.PHONY: geth-map
geth-map: $(STAMP)
	$(PY) tools/geth_map.py
include fuzz.mk
