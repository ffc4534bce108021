# The README's two commands: `make run` (napari with the sample and octfluid's widgets) and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
# PyQt6 by default: napari 0.9 shows a PyQt5-deprecation notice at every start. PyQt5 stays supported: QT=pyqt5.
QT ?= pyqt6
# each binding in its own environment; and, for an environment that holds both (a .venv made when PyQt5 was the
# default), the one asked for is the one used: qtpy alone would pick PyQt5, pytest-qt PyQt6
VENV ?= $(if $(filter pyqt5,$(QT)),.venv-pyqt5,.venv)
BIN := $(VENV)/bin
export QT_API := $(QT)
export PYTEST_QT_API := $(QT)

.PHONY: run test test-widgets test-pyqt5 lint format venv system-deps clean weights

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-$(QT): $(BIN)/python pyproject.toml
	# torch first, at the version whose CPU build is on disk: a loose requirement would pull GBs of CUDA
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -e ".[$(QT)]"
	touch $@

$(VENV)/.installed-test-$(QT): $(VENV)/.installed-$(QT)
	$(BIN)/python -m pip install --quiet -e ".[$(QT),testing]"
	touch $@

venv: $(VENV)/.installed-$(QT)

run: venv
	$(BIN)/octfluid view

system-deps:
	bash scripts/install_system_deps.sh

test: system-deps $(VENV)/.installed-test-$(QT)
	$(BIN)/python -m pytest

# the widget tests again under PyQt5, in a venv of their own (`make test` runs everything under PyQt6)
test-widgets: system-deps $(VENV)/.installed-test-$(QT)
	$(BIN)/python -m pytest tests/_qt

test-pyqt5:
	$(MAKE) test-widgets QT=pyqt5

# ruff, pinned in the testing extra: the same checks as the pre-commit hooks (.pre-commit-config.yaml)
lint: $(VENV)/.installed-test-$(QT)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed-test-$(QT)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# the shipped weights, rebuilt (recipes/robust_weights.toml says how; hours on a CPU, use a GPU)
weights: venv
	$(BIN)/octfluid train --recipe recipes/default_weights.toml --out runs/default
	$(BIN)/octfluid train --recipe recipes/robust_weights.toml --init runs/default/best.pt --out runs/robust
	cp runs/robust/best.pt napari_octfluid/weights/octfluid_default.pt
	$(BIN)/python -m napari_octfluid.training.replay --recipe recipes/default_weights.toml

clean:
	rm -rf .venv .venv-pyqt5 .venv-pyqt6 build dist octfluid-results
