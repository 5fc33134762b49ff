# Two commands do all the set-up on a fresh Debian machine:
#   make up    start the whole cloud on this machine (simulated mode)
#   make test  install what the tests need and run them
VENV    := .venv
PYTHON  ?= python3
BIN     := $(VENV)/bin
# Debian packages the build and the tests need: libvirt-python compiles against libvirt-dev
# (found through pkg-config); qemu-img makes copy-on-write instance disks; s3cmd is a test client.
DEBS    := libvirt-dev libvirt0 pkg-config gcc python3-dev python3-venv qemu-utils
TESTDEBS := s3cmd openssl

.PHONY: up test debs test-debs install install-test clean

up: install
	$(BIN)/eucasim up

test: install-test
	$(BIN)/python -m pytest -q

debs:
	@bash deploy/apt-install.sh $(DEBS)

test-debs:
	@bash deploy/apt-install.sh $(DEBS) $(TESTDEBS)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(MAKE) debs
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(MAKE) test-debs
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(VENV)/.installed $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

clean:
	rm -rf $(VENV) var
