// SPDX-License-Identifier: GPL-2.0
/*
 * dm-amber: crash-consistent snapshots and streaming backup for live
 * database volumes. Module init/exit and the registry of volumes.
 */
#include <linux/module.h>
#include <linux/rculist.h>
#include "amber.h"
#include "store.h"

/*
 * Every constructed amber volume, so that views and the control device can
 * find a volume by the device number of its dm device. Writers hold amber_registry_lock,
 * which also serialises barriers; readers hold it or rcu_read_lock().
 */
DEFINE_MUTEX(amber_registry_lock);
static LIST_HEAD(amber_volumes);

/*
 * -EBUSY when another dm device has a volume on the same store (the same
 * device, or a store with the same uuid, say through another path): two
 * tables of one device (a reload) share it, two devices never do.
 */
int amber_register(struct amber_volume *v)
{
	struct amber_volume *other;
	int r = 0;

	mutex_lock(&amber_registry_lock);
	list_for_each_entry(other, &amber_volumes, registry) {
		if (other->md != v->md &&
		    (other->store_dev->bdev == v->store_dev->bdev ||
		     !memcmp(other->store->sb->uuid, v->store->sb->uuid,
			     sizeof(v->store->sb->uuid)))) {
			r = -EBUSY;
			break;
		}
	}
	if (!r)
		list_add_rcu(&v->registry, &amber_volumes);
	mutex_unlock(&amber_registry_lock);
	return r;
}

/*
 * After this, no view read and no control call can reach @v, and none is
 * still touching it: a view read uses @v only in its map, under the RCU
 * read lock, which the first grace period waits for; a pin ends inside an
 * RCU read section that outlives its last access to @v (amber_unpin()),
 * which the second covers. View reads still in flight hold the snapshot,
 * not @v.
 */
void amber_unregister(struct amber_volume *v)
{
	mutex_lock(&amber_registry_lock);
	list_del_rcu(&v->registry);
	mutex_unlock(&amber_registry_lock);
	synchronize_rcu();
	wait_event(v->pins_wq, !atomic_read(&v->pins));
	synchronize_rcu();
}

/*
 * Keep @v, found under the registry lock, after the lock is dropped: a
 * control call that may wait (release) must not hold back every other one.
 */
void amber_pin(struct amber_volume *v)
{
	lockdep_assert_held(&amber_registry_lock);
	atomic_inc(&v->pins);
}

void amber_unpin(struct amber_volume *v)
{
	/* @v may be freed once the count is zero: amber_unregister(). */
	rcu_read_lock();
	if (atomic_dec_and_test(&v->pins))
		wake_up(&v->pins_wq);
	rcu_read_unlock();
}

/* The steps enum amber_volume_state allows, from each state. */
static const u8 amber_steps[] = {
	[AMBER_VOL_CONSTRUCTED]	= BIT(AMBER_VOL_SUSPENDED),
	[AMBER_VOL_SUSPENDED]	= BIT(AMBER_VOL_LIVE) | BIT(AMBER_VOL_HANDED_OVER),
	[AMBER_VOL_LIVE]	= BIT(AMBER_VOL_SUSPENDING),
	[AMBER_VOL_SUSPENDING]	= BIT(AMBER_VOL_LIVE) | BIT(AMBER_VOL_SUSPENDED),
	[AMBER_VOL_HANDED_OVER]	= 0,
};

/* Whether the registry tells @from and @to apart (amber_lookup() and kin). */
static bool amber_registry_sees(enum amber_volume_state from,
				enum amber_volume_state to)
{
	return amber_state_in_use(from) != amber_state_in_use(to) ||
	       from == AMBER_VOL_CONSTRUCTED || to == AMBER_VOL_HANDED_OVER;
}

/* Take a step of @v's life, with the locks enum amber_volume_state names. */
void amber_set_state(struct amber_volume *v, enum amber_volume_state to)
{
	enum amber_volume_state from = v->state;

	lockdep_assert_held(&v->snap->lock);
	if (amber_registry_sees(from, to))
		lockdep_assert_held(&amber_registry_lock);
	WARN_ONCE(!(amber_steps[from] & BIT(to)),
		  "amber: %s: no step from state %d to %d",
		  dm_device_name(v->md), from, to);
	/* Pairs with amber_state(). */
	smp_store_release(&v->state, to);
}

/*
 * The volume of dm device @dev: while a table is being reloaded two may
 * exist, and the one in use wins; one that handed its snapshot over to the
 * next table is never found.
 */
struct amber_volume *amber_lookup(dev_t dev)
{
	struct amber_volume *v, *found = NULL;

	list_for_each_entry_rcu(v, &amber_volumes, registry,
				lockdep_is_held(&amber_registry_lock)) {
		if (v->dev != dev || amber_state(v) == AMBER_VOL_HANDED_OVER)
			continue;
		if (amber_in_use(v))
			return v;
		found = v;
	}
	return found;
}

/*
 * The table of @v's dm device that @v is replacing, if any: the one that
 * was resumed last. (A table loaded after @v, never resumed, is not it.)
 */
struct amber_volume *amber_predecessor(struct amber_volume *v)
{
	struct amber_volume *p;
	enum amber_volume_state state;

	lockdep_assert_held(&amber_registry_lock);
	list_for_each_entry(p, &amber_volumes, registry) {
		state = amber_state(p);
		if (p != v && p->md == v->md && state != AMBER_VOL_CONSTRUCTED &&
		    state != AMBER_VOL_HANDED_OVER)
			return p;
	}
	return NULL;
}

static int __init dm_amber_init(void)
{
	int r;

	r = amber_cow_module_init();
	if (r)
		return r;
	r = amber_target_init();
	if (r)
		goto bad_target;
	r = amber_view_init();
	if (r)
		goto bad_view;
	r = amber_control_init();
	if (r)
		goto bad_control;
	return 0;

bad_control:
	amber_view_exit();
bad_view:
	amber_target_exit();
bad_target:
	amber_cow_module_exit();
	DMERR("cannot register: %d", r);
	return r;
}

static void __exit dm_amber_exit(void)
{
	amber_control_exit();
	amber_view_exit();
	amber_target_exit();
	amber_cow_module_exit();
}

module_init(dm_amber_init);
module_exit(dm_amber_exit);

MODULE_DESCRIPTION(DM_NAME " crash-consistent snapshots and streaming backup");
MODULE_AUTHOR("The amber authors");
MODULE_LICENSE("GPL");
