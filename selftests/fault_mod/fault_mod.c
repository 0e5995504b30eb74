// SPDX-License-Identifier: GPL-2.0
/*
 * Harness self-test: a module whose load commits a kernel fault that the
 * VM harness must catch. Not part of dm-amber.
 *
 *   fault=warn  (default) WARN on load
 *   fault=leak  leak an allocation on load, for kmemleak (debug kernel)
 */
#include <linux/bug.h>
#include <linux/init.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/string.h>

static char *fault = "warn";
module_param(fault, charp, 0444);
MODULE_PARM_DESC(fault, "the fault to commit on load: warn or leak");

static int __init fault_mod_init(void)
{
	void *p;

	if (!strcmp(fault, "warn")) {
		WARN(1, "amber harness self-test: deliberate warning\n");
		return 0;
	}
	if (!strcmp(fault, "leak")) {
		p = kmalloc(128, GFP_KERNEL);
		if (!p)
			return -ENOMEM;
		pr_info("amber harness self-test: leaking 128 bytes at %p\n", p);
		return 0;
	}
	return -EINVAL;
}

static void __exit fault_mod_exit(void)
{
}

module_init(fault_mod_init);
module_exit(fault_mod_exit);

MODULE_DESCRIPTION("amber VM harness self-test: a kernel fault on load");
MODULE_LICENSE("GPL");
