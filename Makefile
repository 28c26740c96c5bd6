# Two commands for a new machine: `make demo` and `make test` (see README).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# A CPU wheel of this version is what these machines install; an unpinned torch with none
# installed would pull a multi-GB CUDA build. Override with `make TORCH=torch==X.Y.Z ...`.
TORCH  ?= torch==2.13.0

.PHONY: demo test install install-dev browser lint bench clean test-ipywidgets7 labextension

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# torch first, and only when missing, so the package's torch>= range is already satisfied
install: $(BIN)/python
	@$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[demo]"

install-dev: install
	$(BIN)/python -m pip install --quiet -e ".[dev]"

# Debian's Chromium for the real-browser tests (Playwright drives it; nothing is downloaded), and
# node, which checks the widget modules' JavaScript.
browser:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "WARNING: chromium is missing and cannot be installed here (need root + apt): the browser tests will fail (deselect them: make test PYTEST_ARGS='-m \"not browser\"')"; fi
	@if command -v node >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs >/dev/null; \
	else echo "WARNING: node is missing and cannot be installed here (need root + apt): the widget JavaScript checks will fail"; fi

# extra arguments for the demo, e.g. `make demo DEMO_ARGS="--max-steps 20"` (CI's short run)
DEMO_ARGS ?=
demo: install
	$(BIN)/labkit demo $(DEMO_ARGS)

test: install-dev browser
	$(BIN)/ruff check labkit tests benchmarks
	$(BIN)/ruff format --check labkit tests benchmarks
	$(BIN)/mypy
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	$(MAKE) test-ipywidgets7

# Colab ships ipywidgets 7.7.1 (+ anywidget 0.9): the widgets' Python side is tested against it
# too, from an overlay folder put first on the path (the venv keeps ipywidgets 8). --ipywidgets7
# selects the test that asserts the overlay is what got imported.
IPYW7 := .cache/ipywidgets7
$(IPYW7):
	$(BIN)/python -m pip install --quiet --no-deps --target $(IPYW7) ipywidgets==7.7.1 anywidget==0.9.21 ipython_genutils==0.2.0

test-ipywidgets7: install-dev $(IPYW7)
	PYTHONPATH=$(IPYW7) $(BIN)/python -m pytest tests/test_panel.py tests/test_panel_static.py --ipywidgets7 -q -p no:cacheprovider

# labkit's JupyterLab extension: source in jupyterlab/, built files committed in
# labkit/jupyter/labextension (installing labkit needs no node). Rebuild after editing the source
# or the widgets it bundles (widgets/run_panel.js, _common.js, run_panel.css); constants.py first
# writes the colours and statuses it shares with the kernel (src/constants.json).
# tests/test_labextension.py fails while the built files are older than the source.
LABEXT_STAMP := labkit/jupyter/labextension/source.sha256
labextension: install-dev
	cd jupyterlab && npm install --no-audit --no-fund --loglevel=error
	$(BIN)/python jupyterlab/constants.py
	jupyterlab/node_modules/.bin/build-labextension --core-path "$$($(BIN)/python -c 'import jupyterlab, os; print(os.path.join(os.path.dirname(jupyterlab.__file__), "staging"))')" jupyterlab
	$(BIN)/python -c 'from labkit.jupyter import source_digest; print(source_digest())' > $(LABEXT_STAMP)
	$(BIN)/python -m pip install --quiet --no-deps -e .

lint: install-dev
	$(BIN)/ruff check labkit tests benchmarks
	$(BIN)/ruff format --check labkit tests benchmarks
	$(BIN)/mypy

bench: install-dev
	$(BIN)/python benchmarks/run_all.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) dist build artifacts .pytest_cache .ruff_cache
