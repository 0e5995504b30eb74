/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Changed-block tracking: which chunks each epoch wrote, kept on the store
 * with write intent so that a map is never missing a chunk, even after a
 * power cut. See docs/DESIGN.md "Change tracking".
 */
#ifndef DM_AMBER_CBT_H
#define DM_AMBER_CBT_H

#include "amber.h"
#include "store.h"

/*
 * Set up change tracking for @v in intent regions of 2^@region_shift
 * chunks. The maps (a bit per chunk) are allocated and read from the store
 * at each resume, and freed at each suspend.
 */
int amber_cbt_create(struct amber_volume *v, struct amber_store *store,
		     unsigned int region_shift, struct amber_cbt **out);
void amber_cbt_destroy(struct amber_cbt *cbt);

/*
 * Read the superblock and the current epoch's map from the store, and mark
 * the store in use (not clean). Called at the first resume, so that a table
 * reload sees what the previous table wrote at its suspend. -ENOMEM when
 * the maps cannot be allocated.
 */
int amber_cbt_load(struct amber_cbt *cbt);
bool amber_cbt_loaded(struct amber_cbt *cbt);

/*
 * Suspend: no write is in flight. Write the exact current map, mark the
 * store clean and, with @free_maps, free the maps: a resume reads them back,
 * and a table that replaces this one reads what this one wrote. Even when
 * it fails, the map on the store covers every write (then its epoch is
 * marked unclean: the map is a superset).
 */
int amber_cbt_suspend(struct amber_cbt *cbt, bool free_maps);
/*
 * Resume after amber_cbt_suspend(): allocate the maps and read them back,
 * mark the store in use again. On an error the maps may be missing (then
 * writes pass untracked): the caller fails tracking.
 */
int amber_cbt_resume(struct amber_cbt *cbt);

/*
 * The maps cannot be kept (a map write failed, or the store failed at load
 * or resume): tracking is invalid up to the current epoch, which the
 * superblock records as soon as it takes a write, at the latest at the next
 * load, suspend or barrier. Origin writes go on untracked.
 */
void amber_cbt_fail(struct amber_cbt *cbt);

u64 amber_cbt_epoch(struct amber_cbt *cbt);

/*
 * Write intent. True when the map on the store already covers chunks
 * [first, last] (their intent regions are on it): the chunks are recorded
 * in the exact map and the write may go on. Lockless; only valid while the
 * caller holds the gate (the map cannot be swapped under it).
 */
bool amber_cbt_covered(struct amber_cbt *cbt, chunk_t first, chunk_t last);

/*
 * Record the single chunk @c for @bio. True when the write may go on now;
 * false when @bio was queued until its intent region is on the store, after
 * which amber_writes_continue() hands it back to the volume.
 */
bool amber_cbt_mark(struct amber_cbt *cbt, chunk_t c, struct bio *bio);

/*
 * The barrier's part. amber_cbt_prepare_cut() may sleep for a while and is
 * called before the gate closes: it waits for the last writeout and
 * allocates the next epoch's maps (-ENOMEM: nothing may be cut). With the
 * gate closed and no write in flight, amber_cbt_record_epoch() writes @epoch to the superblock (an
 * error means the store does not name it, and nothing may be cut); then
 * either amber_cbt_cut() starts epoch @epoch, which cannot fail, or, when
 * another volume of the group could not record its epoch,
 * amber_cbt_unrecord_epoch() takes the number back.
 * amber_cbt_intend_next(), after amber_cbt_prepare_cut() and before the
 * gate closes, takes the next epoch's write intent for the regions written
 * in this one; it cannot fail (a region left out takes its intent later).
 */
int amber_cbt_prepare_cut(struct amber_cbt *cbt);
void amber_cbt_intend_next(struct amber_cbt *cbt);
int amber_cbt_record_epoch(struct amber_cbt *cbt, u64 epoch);
void amber_cbt_unrecord_epoch(struct amber_cbt *cbt);
void amber_cbt_cut(struct amber_cbt *cbt, u64 epoch);

/*
 * OR into @bits the chunks written in epochs [@since, @until) for the window
 * [@first, @first + @nr). -ERANGE when one of those maps is not kept any
 * more or cannot be trusted. *@exact tells whether the maps may name extra
 * chunks (after an unclean shutdown).
 */
int amber_cbt_changed(struct amber_cbt *cbt, u64 since, u64 until,
		      chunk_t first, u64 nr, unsigned long *bits, bool *exact);

/* "exact", "superset" or "invalid", for status. */
const char *amber_cbt_state(struct amber_cbt *cbt);

#endif /* DM_AMBER_CBT_H */
