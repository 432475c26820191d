# Two set-up commands: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.v2p-installed

.PHONY: install browser demo test bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -e '.[cpu,test,eval,web,distributed]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/v2p demo --out demo

# the page's end-to-end test drives Debian's Chromium; install it when missing (root, apt)
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) || \
	  echo "could not install Chromium; the browser test will fail. Install it with: apt-get install chromium chromium-driver"

test: $(STAMP) browser
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/synth_speed.py
	$(BIN)/python benchmarks/reader_memory.py

clean:
	rm -rf $(VENV) demo bench-out .pytest_cache
