#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Runs only in the harness self-test's VM (selftest.sh): loads fault_mod,
# which commits the fault named on the kernel command line
# (fault_mod.fault=...). This test passes; the run as a whole must not.
. "$(dirname "$0")/lib.sh"

ktap_print_header
ktap_set_plan 2
ktap_step "fault_mod loads" modprobe fault_mod
ktap_step "fault_mod unloads" rmmod fault_mod
ktap_finished
