/* SPDX-License-Identifier: GPL-2.0 */
/* Volumes in memory, backups of them, files to corrupt. */
#ifndef AMBER_TEST_HELPERS_H
#define AMBER_TEST_HELPERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "bkp.h"

extern const uint8_t test_uuid[16];

/* A volume image: chunk c is zero when c % 3 == 0, text when 1, random when 2. */
struct image {
	struct geometry geo;
	uint8_t *data;
};

void image_make(struct image *im, uint64_t volume_bytes, uint32_t chunk_bytes, uint64_t seed);
/* Give chunk @chunk new random content. */
void image_change(struct image *im, uint64_t chunk, uint64_t seed);
uint8_t *image_chunk(const struct image *im, uint64_t chunk);
void image_copy(struct image *to, const struct image *from);
void image_free(struct image *im);
void random_fill(void *buf, size_t len, uint64_t seed);
/* Bytes @first, @first + 1, ... */
void counting(uint8_t *out, size_t len, uint8_t first);
/* A data key of the bytes counting() from @first. */
struct data_key *test_key(uint8_t first);

struct bkp_info test_info(const struct image *im, enum bkp_kind kind, uint64_t epoch);
/* The header of FORMAT-v2.md's known-answer vectors (a full, epoch 7). */
struct bkp_info kat_info(void);
/* Make @info an incremental continuing the backup summarised by @parent. */
void set_parent(struct bkp_info *info, uint64_t parent_epoch, const struct bkp_summary *parent);

/*
 * Write a backup at @path of the chunks @chunks[0..n) of @im, in that order,
 * the ones with @early[i] (NULL: none) flagged REC_EARLY. zstd @level.
 */
void write_chunks(const char *path, const struct bkp_info *info, const struct image *im,
		  const uint64_t *chunks, const bool *early, size_t n, int level,
		  struct bkp_summary *out);
/* write_chunks() encrypting and signing with @keys (its leaves keyed). */
void write_chunks_keyed(const char *path, const struct bkp_info *info, const struct image *im,
			const uint64_t *chunks, const bool *early, size_t n, int level,
			const struct bkp_keys *keys, struct bkp_summary *out);
/* Every chunk of @im, ascending. */
void write_all(const char *path, const struct bkp_info *info, const struct image *im,
	       int level, struct bkp_summary *out);

/* Read a backup with the streaming reader: 0 and the records in @into (may
 * be NULL), or -1 with the error. */
int read_backup(const char *path, struct image *into, struct bkp_summary *out);
/* read_backup() with the data key @key (NULL: keyless) and signer @pub (or NULL). */
int read_backup_keyed(const char *path, struct image *into, struct bkp_summary *out,
		      const struct data_key *key, const struct asym_key *pub);

/* The image digest of every chunk in format @version, computed straight from
 * FORMAT.md (FORMAT-v2.md). */
void reference_digest(const struct image *im, uint32_t version, uint8_t out[32]);

void file_put(const char *path, const void *data, size_t len);
uint8_t *file_get(const char *path, size_t *len);
/* The file "target", restored from a chain, must be @im. */
void check_target_is(const struct image *im);
void file_flip(const char *path, size_t offset, uint8_t mask);
void file_truncate(const char *path, size_t len);
/*
 * The offset of the record of @chunk in the backup at @path (v1 or v2),
 * walking its records (and v2 index blocks) from the front.
 */
uint64_t chunk_record_offset(const char *path, uint64_t chunk);
/*
 * One bit flipped at each offset of the backup at @path in turn, in a copy
 * (flipped.amb): the streaming reader refuses every one with AMBER_EDATA.
 */
void check_every_flip_detected(const char *path);
/*
 * The same for the offsets @from up to @to only, read with the data key
 * @key and signer @pub (either may be NULL).
 */
void check_flips_detected(const char *path, size_t from, size_t to,
			  const struct data_key *key, const struct asym_key *pub);

/* A child writes the first @len bytes of @path into a pipe, @piece at a time. */
int pipe_from(const char *path, size_t len, size_t piece, pid_t *child);
/* Wait for @child: its status, as waitpid() gives it. */
int child_status(pid_t child);
/* Standard input a pipe that a child fills with the whole of @path. */
void with_stdin_pipe(const char *path, pid_t *child);
/* Standard input back to /dev/null; the writer's exit status. */
int stdin_end(pid_t child);

/* Run a subcommand's main with a NULL-terminated argument list. */
int run_cmd(int (*main)(int, char **), ...);

#endif
