/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Encoding and checking the fixed-size parts of a backup (format.h). The
 * decoders check the checksum, magic, reserved bytes and every field that
 * can be checked alone; messages carry no location (callers add it).
 */
#ifndef AMBER_LAYOUT_H
#define AMBER_LAYOUT_H

#include "bkp.h"

void header_encode(const struct bkp_info *info, struct disk_header *out);
int header_decode(const struct disk_header *in, struct bkp_info *info);

void record_encode(const struct bkp_record *rec, uint64_t seq, struct disk_record *out);
/* Fills everything but rec->payload and rec->data. */
int record_decode(const struct disk_record *in, const struct geometry *g,
		  struct bkp_record *rec, uint64_t *seq);

/* Codec, flags and stored length agree with each other and the length. */
int record_check(const struct bkp_record *rec);

struct index_entry;

void index_head_encode(uint64_t entries, struct disk_index_head *out);
int index_head_decode(const struct disk_index_head *in, uint64_t *entries);
void index_entry_encode(const struct index_entry *e, struct disk_index_entry *out);
void index_entry_decode(const struct disk_index_entry *in, struct index_entry *e);

void trailer_encode(const struct bkp_summary *s, struct disk_trailer *out);
int trailer_decode(const struct disk_trailer *in, struct bkp_summary *s);

/* Which section starts with these SECTION_MAGIC_BYTES bytes. */
enum section { SECTION_UNKNOWN, SECTION_RECORD, SECTION_INDEX, SECTION_TRAILER };
enum section section_of(const void *magic);

#endif
