/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The on-medium layout of an amber backup, version 1. docs/FORMAT.md is
 * the specification; these structures are it in C. Every integer is little
 * endian; every checksum is XXH3-64 (seed 0).
 *
 *   header | record... | index | trailer
 */
#ifndef AMBER_FORMAT_H
#define AMBER_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#define BKP_VERSION		1
#define BKP_MAGIC		"AMBERBKP"	/* header, 8 bytes */
#define REC_MAGIC		"AREC"		/* record, 4 bytes */
#define IDX_MAGIC		"AIDX"		/* index, 4 bytes */
#define TRL_MAGIC		"ATRL"		/* trailer, 4 bytes */
#define END_MAGIC		"AMBEREND"	/* last 8 bytes of a backup */
#define SECTION_MAGIC_BYTES	4

#define BKP_MIN_CHUNK		4096U
#define BKP_MAX_CHUNK		(1U << 20)
#define BKP_MAX_CHUNKS		(1ULL << 32)	/* chunks in one volume */
#define BKP_EXTENT_MAX_BYTES	(4U << 20)	/* one index entry spans at most */
#define BKP_TOOL_BYTES		32

struct disk_header {
	char	 magic[8];		/* BKP_MAGIC */
	uint32_t version;		/* BKP_VERSION */
	uint32_t header_bytes;		/* sizeof(struct disk_header) */
	uint32_t kind;			/* BKP_FULL or BKP_INCREMENTAL */
	uint32_t flags;			/* BKP_SYNTHETIC */
	uint8_t	 volume_uuid[16];
	uint64_t volume_bytes;		/* multiple of 512 */
	uint32_t chunk_bytes;		/* power of two, 4 KiB..1 MiB */
	uint32_t reserved0;
	uint64_t epoch;			/* barrier of the image, >= 1 */
	int64_t	 created;		/* seconds since 1970, UTC */
	char	 tool[BKP_TOOL_BYTES];	/* "amber 1.0.0", NUL padded */
	uint8_t	 parent_uuid[16];	/* incremental: the parent's volume */
	uint64_t parent_epoch;		/* incremental: the parent's epoch */
	uint8_t	 parent_link[32];	/* incremental: the parent's link */
	uint8_t	 reserved[88];
	uint64_t csum;			/* of the bytes before it */
} __attribute__((packed));

struct disk_record {
	char	 magic[4];		/* REC_MAGIC */
	uint16_t codec;			/* CODEC_RAW, CODEC_ZSTD */
	uint16_t flags;			/* REC_ZERO, REC_EARLY */
	uint64_t seq;			/* 0, 1, 2, ... in file order */
	uint64_t chunk;
	uint32_t stored_bytes;		/* payload bytes after this header */
	uint32_t reserved;
	uint64_t payload_csum;		/* of the stored bytes */
	uint8_t	 leaf[32];		/* SHA-256 of the chunk's content */
	uint64_t csum;			/* of the bytes before it */
} __attribute__((packed));

struct disk_index_head {
	char	 magic[4];		/* IDX_MAGIC */
	uint32_t reserved;
	uint64_t entries;
} __attribute__((packed));

struct disk_index_entry {
	uint64_t first_chunk;		/* records for first_chunk + 0..count-1 */
	uint64_t offset;		/* of the first record's header */
	uint32_t count;			/* back to back, in chunk order */
	uint32_t bytes;			/* headers and payloads, in total */
} __attribute__((packed));

struct disk_trailer {
	char	 magic[4];		/* TRL_MAGIC */
	uint32_t reserved;
	uint64_t records;
	uint64_t zero_records;
	uint64_t logical_bytes;		/* sum of the records' chunk lengths */
	uint64_t index_offset;
	uint64_t index_entries;
	uint64_t index_csum;		/* of the whole index section */
	uint64_t file_bytes;		/* of the backup, trailer included */
	uint8_t	 digest[32];		/* image digest of the records */
	uint8_t	 link[32];		/* what an incremental child names */
	uint64_t csum;			/* of the bytes before it */
	char	 end[8];		/* END_MAGIC */
} __attribute__((packed));

_Static_assert(sizeof(struct disk_header) == 256, "header layout");
_Static_assert(sizeof(struct disk_record) == 80, "record layout");
_Static_assert(sizeof(struct disk_index_head) == 16, "index layout");
_Static_assert(sizeof(struct disk_index_entry) == 24, "index entry layout");
_Static_assert(sizeof(struct disk_trailer) == 144, "trailer layout");

/* The image digest starts with this 16-byte tag (FORMAT.md, "Digests"). */
#define DIGEST_TAG		"amber-image-v1\0"

#endif
