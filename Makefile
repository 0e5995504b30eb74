# amber: build, test and demo entry points. See README.md.
#
#   make [all]                dm-amber.ko for each tested kernel (and
#                             upstream dm-clone.ko where it lacks one),
#                             userspace, the selftests
#   make module KDIR=<tree>   dm-amber.ko (and dm-clone.ko) for one kernel tree
#   make check                every test; ends with "N passed, N failed, N skipped"
#   make vmtest [KERNEL=6.1|6.12|debug] [T=test]
#                             the selftests in a VM (T: one test, console shown)
#   make soak [KERNEL=..] [DURATION=seconds]
#                             the soak test alone, for DURATION (default 600)
#   make cycle [KERNEL=..] [ROUNDS=n]
#                             amber_cycle alone, ROUNDS rounds (default 40)
#   make powercut [KERNEL=..] [POINTS=n|all]
#                             amber_powercut alone, at POINTS power cuts
#                             (default 250; all: every FLUSH and FUA)
#   make negative [KERNEL=..] each defect of selftests/negative/ planted in
#                             dm-amber must fail the tests it names
#   make vmtest-selftest      the VM harness must catch a kernel WARN, a crash
#                             test's failed first boot (and a leak, with the
#                             debug kernel)
#   make sparse               sparse (C=2) over the module, for each kernel
#   make checkpatch           checkpatch.pl --strict over module/
#   make demo | bench         scripts/demo.sh, scripts/bench.sh
#   make bench-native         the backup stream engine on the host, no VM:
#                             amber backup --image, verify and restore of a
#                             1 GiB file against raw reads, writes and the
#                             codecs (scripts/bench-native.sh)
#   make clean
#
# Objects go to build/: build/<release>/module/dm-amber.ko per kernel, and
# build/<release>/clone/dm-clone.ko for a kernel without CONFIG_DM_CLONE
# (scripts/build-clone.sh: built from Debian's linux-source package).

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := all

BUILD := $(CURDIR)/build
KERNELS := 6.1 6.12
KERNEL ?= 6.1
T ?=
KDIR ?= /lib/modules/$(shell uname -r)/build

# Files taken from Debian's linux-source packages at build time.
KSRC := $(BUILD)/ksrc
KSFT_DIR := $(KSRC)/6.1/tools/testing/selftests
KSFT_HDRS := $(KSFT_DIR)/kselftest.h $(KSFT_DIR)/kselftest_harness.h
KTAP_HELPERS := $(KSRC)/6.12/tools/testing/selftests/kselftest/ktap_helpers.sh
CHECKPATCH := $(KSRC)/6.12/scripts/checkpatch.pl
CHECKPATCH_DATA := $(KSRC)/6.12/scripts/spelling.txt \
		   $(KSRC)/6.12/scripts/const_structs.checkpatch

# C tests (selftests/*.c) and the helper programs tests run (selftests/tools/).
SELFTEST_BINS := $(patsubst selftests/%.c,$(BUILD)/selftests/%, \
		   $(wildcard selftests/*.c selftests/tools/*.c))
SELFTEST_CFLAGS := -O2 -g -Wall -Wextra -Wno-unused-parameter -Werror \
		   -pthread -I$(KSFT_DIR) -Imodule -Iselftests
SELFTEST_LDLIBS := -ldevmapper

.PHONY: all deps modules module userspace selftests check vmtest soak cycle powercut negative \
	vmtest-selftest sparse checkpatch demo bench bench-native clean

# The recipe of the modules for the kernel tree in $$kdir: dm-amber.ko, and
# the kernel's own dm-clone.ko when its configuration leaves it out.
KMODS = scripts/build-kmod.sh "$$kdir" module >/dev/null; \
	scripts/build-clone.sh "$$kdir" >/dev/null

all: modules userspace selftests

deps:
	@scripts/deps.sh

# The tested kernels, and the debug kernel once scripts/debug-kernel.sh
# has cached it.
modules: deps
	@for k in $(KERNELS) $$(scripts/kernels.sh debug available && echo debug); do \
		kdir=$$(scripts/kernels.sh $$k kdir); \
		$(KMODS); \
	done

# dm-clone.ko is for amber restore --instant only: a kernel it cannot be
# built for (no linux-source of its series, say) still gets dm-amber.ko.
module: deps
	@scripts/build-kmod.sh "$(KDIR)" module
	@scripts/build-clone.sh "$(KDIR)" || \
		echo "make module: no dm-clone.ko (amber restore --instant needs it): see above" >&2

userspace: deps
	@if [ -f userspace/Makefile ]; then $(MAKE) --no-print-directory -C userspace; fi

selftests: $(SELFTEST_BINS) $(KTAP_HELPERS)

$(BUILD)/selftests/%: selftests/%.c $(wildcard selftests/*.h) $(KSFT_HDRS)
	@mkdir -p $(@D)
	$(CC) $(SELFTEST_CFLAGS) -o $@ $< $(SELFTEST_LDLIBS)

# extract <version>,<files under $(KSRC)/<version>>
extract = mkdir -p $(KSRC)/$(1) && \
	tar -C $(KSRC)/$(1) --strip-components=1 -xJf /usr/src/linux-source-$(1).tar.xz \
		$(patsubst $(KSRC)/$(1)/%,linux-source-$(1)/%,$(2))

$(KSFT_HDRS) &: | deps
	@$(call extract,6.1,$(KSFT_HDRS))

$(KTAP_HELPERS) $(CHECKPATCH) $(CHECKPATCH_DATA) &: | deps
	@$(call extract,6.12,$(KTAP_HELPERS) $(CHECKPATCH) $(CHECKPATCH_DATA))

check: deps
	@scripts/check.sh

vmtest: userspace selftests
	@kdir=$$(scripts/kernels.sh $(KERNEL) kdir); \
	$(KMODS)
	@selftests/vm/vmtest.sh -k $(KERNEL) $(if $(T),-c -t $(T))

DURATION ?= 600
soak: userspace selftests
	@kdir=$$(scripts/kernels.sh $(KERNEL) kdir); \
	scripts/build-kmod.sh "$$kdir" module >/dev/null
	@VM_ENV="AMBER_SOAK_SECONDS=$(DURATION)" \
	VM_TEST_TIMEOUT=$$(($(DURATION) + 600)) VM_TIMEOUT=$$(($(DURATION) + 900)) \
		selftests/vm/vmtest.sh -k $(KERNEL) -t amber_soak -o soak-$(KERNEL)

ROUNDS ?= 40
cycle: userspace selftests
	@kdir=$$(scripts/kernels.sh $(KERNEL) kdir); \
	scripts/build-kmod.sh "$$kdir" module >/dev/null
	@VM_ENV="AMBER_CYCLE_ROUNDS=$(ROUNDS)" \
	VM_TEST_TIMEOUT=$$(($(ROUNDS) * 120 + 600)) VM_TIMEOUT=$$(($(ROUNDS) * 120 + 900)) \
		selftests/vm/vmtest.sh -k $(KERNEL) -t amber_cycle -o cycle-$(KERNEL)

POINTS ?= 250
powercut: userspace selftests
	@kdir=$$(scripts/kernels.sh $(KERNEL) kdir); \
	scripts/build-kmod.sh "$$kdir" module >/dev/null
	@VM_ENV="AMBER_POWERCUT_POINTS=$(POINTS)" VM_TEST_TIMEOUT=36000 VM_TIMEOUT=36300 \
		selftests/vm/vmtest.sh -k $(KERNEL) -t amber_powercut -o powercut-$(KERNEL)

negative: userspace selftests
	@scripts/negative-control.sh -k $(KERNEL)

vmtest-selftest: selftests
	@selftests/vm/selftest.sh warn
	@selftests/vm/selftest.sh boot1
	@if scripts/kernels.sh debug available; then selftests/vm/selftest.sh leak; fi

sparse: deps
	@for k in $(KERNELS); do \
		kdir=$$(scripts/kernels.sh $$k kdir); \
		scripts/build-kmod.sh "$$kdir" module C=2 >/dev/null; \
	done

# The uapi header cannot use the kernel-only BIT() and __packed.
CHECKPATCH_RUN := $(CHECKPATCH) --no-tree --strict --quiet --show-types -f
checkpatch: $(CHECKPATCH) $(CHECKPATCH_DATA)
	@status=0; \
	$(CHECKPATCH_RUN) $(wildcard module/*.c module/*.h) || status=1; \
	$(CHECKPATCH_RUN) --ignore BIT_MACRO,PREFER_DEFINED_ATTRIBUTE_MACRO \
		$(wildcard module/uapi/*.h) || status=1; \
	exit $$status

demo bench: all
	@if [ ! -x scripts/$@.sh ]; then echo "make $@: scripts/$@.sh is not written yet" >&2; exit 1; fi
	@scripts/$@.sh

bench-native: userspace
	@scripts/bench-native.sh

clean:
	rm -rf $(BUILD)
	@if [ -f userspace/Makefile ]; then $(MAKE) -C userspace clean; fi
