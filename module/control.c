// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/amber-control: the ioctls of uapi/amber.h. Root only (CAP_SYS_ADMIN).
 * Each call looks its volumes up and uses them under amber_registry_lock,
 * so a volume cannot go away under a call; release, which may wait for view
 * reads, pins its volume instead (amber_pin()).
 */
#include <linux/capability.h>
#include <linux/kdev_t.h>
#include <linux/miscdevice.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>
#include "amber.h"
#include "cbt.h"

static struct amber_volume *amber_control_volume(u32 dev)
{
	struct amber_volume *v = amber_lookup(new_decode_dev(dev));

	lockdep_assert_held(&amber_registry_lock);

	if (!v)
		DMERR("control: device %u:%u is not an amber device",
		      MAJOR(new_decode_dev(dev)), MINOR(new_decode_dev(dev)));
	return v;
}

static int amber_ioc_version(void __user *arg)
{
	struct amber_ioc_version ver = {
		.major = AMBER_VERSION_MAJOR,
		.minor = AMBER_VERSION_MINOR,
		.patch = AMBER_VERSION_PATCH,
	};

	return copy_to_user(arg, &ver, sizeof(ver)) ? -EFAULT : 0;
}

static int amber_group_lookup(const u32 *devs, unsigned int count,
			      struct amber_volume **vols)
{
	unsigned int i, j;

	for (i = 0; i < count; i++) {
		vols[i] = amber_control_volume(devs[i]);
		if (!vols[i])
			return -ENODEV;
		for (j = 0; j < i; j++) {
			if (vols[j] == vols[i]) {
				DMERR("control: snap: a volume is named twice");
				return -EINVAL;
			}
		}
	}
	return 0;
}

static int amber_ioc_snap(void __user *arg)
{
	struct amber_volume *vols[AMBER_MAX_GROUP];
	u32 devs[AMBER_MAX_GROUP];
	u64 epochs[AMBER_MAX_GROUP];
	struct amber_ioc_snap req;
	int r;

	if (copy_from_user(&req, arg, sizeof(req)))
		return -EFAULT;
	if (!req.count || req.count > AMBER_MAX_GROUP) {
		DMERR("control: snap: %u volumes, expected 1..%u", req.count,
		      AMBER_MAX_GROUP);
		return -EINVAL;
	}
	if (copy_from_user(devs, u64_to_user_ptr(req.devs),
			   req.count * sizeof(devs[0])))
		return -EFAULT;
	/* A barrier must not be cut for a caller that cannot learn of it. */
	if (clear_user(u64_to_user_ptr(req.epochs),
		       req.count * sizeof(epochs[0])))
		return -EFAULT;

	mutex_lock(&amber_registry_lock);
	r = amber_group_lookup(devs, req.count, vols);
	if (!r)
		r = amber_barrier(vols, req.count, req.timeout_ms, epochs);
	mutex_unlock(&amber_registry_lock);
	if (r)
		return r;
	if (copy_to_user(u64_to_user_ptr(req.epochs), epochs,
			 req.count * sizeof(epochs[0])))
		return -EFAULT;
	return 0;
}

static int amber_changed_check(struct amber_volume *v,
			       struct amber_ioc_changed *req)
{
	if (READ_ONCE(v->snap->state) != AMBER_SNAP_ACTIVE) {
		DMERR("%s: changed: no active snapshot to compare with",
		      dm_device_name(v->md));
		return -ENOENT;
	}
	if (req->first_chunk % 64 || req->first_chunk >= v->nr_chunks ||
	    !req->nr_chunks || req->nr_chunks > AMBER_CHANGED_MAX_WINDOW) {
		DMERR("%s: changed: bad window %llu+%llu (first: 64n < %llu, 1..%llu chunks)",
		      dm_device_name(v->md), req->first_chunk, req->nr_chunks,
		      v->nr_chunks, AMBER_CHANGED_MAX_WINDOW);
		return -EINVAL;
	}
	req->nr_chunks = min(req->nr_chunks, v->nr_chunks - req->first_chunk);
	return 0;
}

static int amber_ioc_changed(void __user *arg)
{
	struct amber_ioc_changed req;
	struct amber_volume *v;
	unsigned long *bits = NULL;
	bool exact = false;
	int r;

	if (copy_from_user(&req, arg, sizeof(req)))
		return -EFAULT;

	mutex_lock(&amber_registry_lock);
	v = amber_control_volume(req.dev);
	r = v ? amber_changed_check(v, &req) : -ENODEV;
	if (!r) {
		bits = kvcalloc(BITS_TO_LONGS(req.nr_chunks), sizeof(long),
				GFP_KERNEL);
		r = bits ? 0 : -ENOMEM;
	}
	if (!r) {
		req.snap_epoch = v->epoch;
		memcpy(req.uuid, v->store->sb->uuid, sizeof(req.uuid));
		r = amber_cbt_changed(v->cbt, req.since_epoch, req.snap_epoch,
				      req.first_chunk, req.nr_chunks, bits,
				      &exact);
		if (r == -ERANGE)
			DMERR("%s: changed: maps since epoch %llu are gone: back up in full",
			      dm_device_name(v->md), req.since_epoch);
	}
	mutex_unlock(&amber_registry_lock);

	if (!r) {
		req.flags = exact ? AMBER_CHANGED_EXACT : 0;
		if (copy_to_user(u64_to_user_ptr(req.bitmap), bits,
				 DIV_ROUND_UP(req.nr_chunks, 8)) ||
		    copy_to_user(arg, &req, sizeof(req)))
			r = -EFAULT;
	}
	kvfree(bits);
	return r;
}

static int amber_ioc_copied(void __user *arg)
{
	struct amber_ioc_copied req;
	struct amber_volume *v;
	u64 *chunks;
	int r;

	if (copy_from_user(&req, arg, sizeof(req)))
		return -EFAULT;
	if (!req.max || req.max > AMBER_COPIED_MAX) {
		DMERR("control: copied: max %llu, expected 1..%u", req.max,
		      AMBER_COPIED_MAX);
		return -EINVAL;
	}
	chunks = kvmalloc_array(req.max, sizeof(*chunks), GFP_KERNEL);
	if (!chunks)
		return -ENOMEM;

	mutex_lock(&amber_registry_lock);
	v = amber_control_volume(req.dev);
	r = v ? amber_cow_list_copied(v, req.start_chunk, chunks, req.max,
				      &req.count) : -ENODEV;
	mutex_unlock(&amber_registry_lock);

	if (!r && (copy_to_user(u64_to_user_ptr(req.chunks), chunks,
				req.count * sizeof(*chunks)) ||
		   copy_to_user(arg, &req, sizeof(req))))
		r = -EFAULT;
	kvfree(chunks);
	return r;
}

static int amber_ioc_release(void __user *arg)
{
	struct amber_ioc_release req;
	struct amber_volume *v;
	int r;

	if (copy_from_user(&req, arg, sizeof(req)))
		return -EFAULT;
	mutex_lock(&amber_registry_lock);
	v = amber_control_volume(req.dev);
	if (v)
		amber_pin(v);
	mutex_unlock(&amber_registry_lock);
	if (!v)
		return -ENODEV;
	/*
	 * It may wait for view reads: not under the registry lock. A reload
	 * meanwhile shares the snapshot with the next table.
	 */
	r = amber_cow_release(v, req.first_chunk, req.count);
	amber_unpin(v);
	return r;
}

static long amber_control_ioctl(struct file *file, unsigned int cmd,
				unsigned long arg)
{
	void __user *uarg = (void __user *)arg;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	switch (cmd) {
	case AMBER_IOC_VERSION:
		return amber_ioc_version(uarg);
	case AMBER_IOC_SNAP:
		return amber_ioc_snap(uarg);
	case AMBER_IOC_CHANGED:
		return amber_ioc_changed(uarg);
	case AMBER_IOC_COPIED:
		return amber_ioc_copied(uarg);
	case AMBER_IOC_RELEASE:
		return amber_ioc_release(uarg);
	default:
		return -ENOTTY;
	}
}

static const struct file_operations amber_control_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = amber_control_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

static struct miscdevice amber_control_dev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = AMBER_CONTROL_NAME,
	.fops = &amber_control_fops,
	.mode = 0600,
};

int amber_control_init(void)
{
	return misc_register(&amber_control_dev);
}

void amber_control_exit(void)
{
	misc_deregister(&amber_control_dev);
}
