# qrr: one-command entry points.  See README.md.
#
#   make            set up the host, build, record+replay the default guest
#   make check      build and run the test suite (what .ci/run runs)
#   make check-full the same with the long variants (QRR_FULL=1)
#   make build      only build QEMU with qrr (qemu-system-x86_64/aarch64, qemu-img)
#   make install    install them, their data and firmware, and qrr under
#                   PREFIX (default /usr/local); builds first if nothing is built
#   make bench      build upstream's replay too and print the comparison tables
#                   (RUNS=5; ONLY=boot, smp, timetravel, linuxtt or ttcost
#                   for one section)
#   make matrix     the full device matrix, N=10 runs per cell
#   make sanitize   build qrr with ASan + UBSan (build/sanitize) and run the
#                   unit tests and a subset of the functional tests on it

SHELL := /bin/bash
T := tooling
PREFIX ?= /usr/local

.PHONY: all demo setup build guests check check-full unit functional bench matrix clean fuzz install sanitize

all: demo

setup:
	@bash $(T)/setup-host.sh

build: setup
	@bash $(T)/fetch-base.sh
	@bash $(T)/assemble.sh qrr
	@bash $(T)/build-qemu.sh qrr

guests: setup
	@bash tests/guest/build-guest.sh x86_64
	@bash tests/guest/build-guest.sh aarch64
	@bash tests/guest/build-guest.sh i386
	@bash tests/guest/build-guest.sh arm
	@bash tests/guest/build-baremetal.sh x86
	@bash tests/guest/build-baremetal.sh aarch64

demo: build guests
	@bash $(T)/demo.sh

# What the last build built; `make build` first only if nothing is built.
install:
	@bash $(T)/install.sh --built || $(MAKE) build
	@bash $(T)/install.sh "$(PREFIX)"

unit: build
	@bash $(T)/run-unit.sh

functional: build guests
	@bash $(T)/run-functional.sh $(TESTS)

check: build guests
	@bash $(T)/run-unit.sh
	@bash $(T)/run-functional.sh $(TESTS)

# What make check leaves out to stay in CI's time budget (QRR_FULL=1).
check-full: build guests
	@bash $(T)/run-unit.sh
	@QRR_FULL=1 bash $(T)/run-functional.sh $(TESTS)

matrix: build guests
	@QRR_MATRIX=full QRR_REPEAT=$${N:-10} bash $(T)/run-functional.sh tests/functional/qrr/test_devices.py -k disk_and_net

sanitize: build guests
	@bash $(T)/run-sanitize.sh $(TESTS)

bench: build guests
	@bash $(T)/fetch-base.sh
	@bash $(T)/assemble.sh upstream
	@bash $(T)/build-qemu.sh upstream
	@bash $(T)/assemble.sh upstream-warp
	@bash $(T)/build-qemu.sh upstream-warp
	@bash $(T)/bench.sh

clean:
	rm -rf build

# Fuzz the log reader for FUZZ_SECONDS (default 600; not SECONDS, which bash
# sets to its own uptime).  See "Fuzzing the log reader" in docs/devel/replay.rst.
fuzz: build
	@bash $(T)/run-fuzz.sh $${FUZZ_SECONDS:-600}
