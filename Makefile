# The two commands of the README. Both create .venv when it is missing, install torch==2.13.0
# first (a CPU wheel; pip takes it from the local disk where one lies there) and then rdip with
# its extras (test, bm3d, ray: the tests of rdip batch --backend ray start a local Ray).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test setup clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[test,bm3d,ray]"
	touch $(STAMP)

setup: $(STAMP)

# The paper's experiment reduced to CIFAR-10 test images 0-1, one seed (T = 2000, preset paper):
# table2.csv/.md, fig3.png, curves.png, report.html and config.json in rdip-demo/ (see README).
demo: $(STAMP)
	$(BIN)/rdip reproduce --indices 0-1 --seeds 0 -o rdip-demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) rdip-demo
