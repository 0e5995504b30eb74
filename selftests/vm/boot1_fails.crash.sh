#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Runs only in the harness self-test's VM (selftest.sh boot1): a crash test
# whose first boot fails a step before the crash line and whose second boot
# passes. The harness must fail it, for its first boot.
. "$(dirname "$0")/lib.sh"

ktap_print_header
ktap_set_plan 1
case ${AMBER_CRASH_PHASE:-} in
1)
	ktap_step "a step of the first boot fails" false
	echo "amber-vm: crash"
	sleep 120
	ktap_exit_fail_msg "the VM was not killed"
	;;
2)
	ktap_step "the second boot passes" true
	ktap_finished
	;;
*) ktap_exit_fail_msg "not run as a crash test" ;;
esac
