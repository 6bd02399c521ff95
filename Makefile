# gureum: `make up` starts the cloud, `make test` proves it.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
APT_PACKAGES := runc nftables mmdebstrap openssh-client e2fsprogs iproute2 util-linux \
	python3-venv ca-certificates
HOST_TOOLS := runc nft mmdebstrap ssh mkfs.ext4 ip losetup

.PHONY: up test bench lint deps venv coverage clean-test-data

deps:
	@missing=0; for t in $(HOST_TOOLS); do command -v $$t >/dev/null || missing=1; done; \
	if [ $$missing = 1 ]; then \
		echo "installing Debian packages: $(APT_PACKAGES)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES) >/dev/null; \
	fi

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

venv: $(VENV)/.installed

up: deps venv
	$(VENV)/bin/gureum up

lint: venv
	$(VENV)/bin/ruff check gureum tests bench

coverage: venv
	$(VENV)/bin/gureum coverage --output docs/COVERAGE.md

test: deps venv lint
	$(VENV)/bin/pytest -q -x tests

bench: deps venv
	$(PY) bench/run_all.py
