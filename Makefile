# Two commands do all the set-up on a fresh Debian machine:
#   make up    start the whole cloud on this machine (simulated mode)
#   make test  install what the tests need and run them
VENV    := .venv
PYTHON  ?= python3
BIN     := $(VENV)/bin
# Debian packages the build and the tests need: libvirt-python compiles against libvirt-dev
# (found through pkg-config); qemu-img makes copy-on-write instance disks; s3cmd is a test client;
# chromium and chromium-driver let tests/console open the web console in a real browser;
# postgresql is the server tests/support/postgres.py starts (the CLC's suite runs on it too);
# the Ceph packages are the cluster tests/support/ceph.py starts (SC on RBD, Walrus on RGW), and
# qemu-block-extra gives QEMU and qemu-img the rbd: protocol.
DEBS    := libvirt-dev libvirt0 pkg-config gcc python3-dev python3-venv qemu-utils
TESTDEBS := s3cmd openssl iptables dnsmasq-base busybox-static iproute2 cpio \
            libvirt-daemon-system qemu-system-x86 chromium chromium-driver \
            postgresql ceph-mon ceph-osd radosgw ceph-common python3-rbd python3-rados \
            qemu-block-extra

# Test workers (pytest-xdist; a file's tests stay on one worker, so a module's shared cloud,
# lab or guest is started once). Every test server binds its port before it starts and every
# lab name carries its process id, so two workers never meet. Most of the suite waits on
# subprocesses rather than computes, so two workers on the 2-core machine cut the suite's time
# (see benchmarks/README.md, "The test suite"); TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2

.PHONY: up lab lab-down test debs test-debs install install-test clean

up: install
	$(BIN)/eucasim up

# Real mode (as root): the cloud in network namespaces with QEMU guests; `make lab-down` ends it.
lab: install-test
	$(BIN)/eucasim lab up

lab-down:
	$(BIN)/eucasim lab down

test: install-test
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

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
