/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The on-medium layout of an amber backup. docs/FORMAT.md (version 1) and
 * docs/FORMAT-v2.md (version 2) are the specification; these structures are
 * it in C. Every integer is little endian.
 *
 *   v1: header | record... | index | trailer
 *   v2: header | record... with index blocks among them | block table |
 *       trailer
 */
#ifndef AMBER_FORMAT_H
#define AMBER_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#define BKP_VERSION_1		1
#define BKP_VERSION_2		2
#define BKP_VERSION		BKP_VERSION_2	/* what writers write unless told */
#define BKP_MAGIC		"AMBERBKP"	/* header, 8 bytes */
#define REC_MAGIC		"AREC"		/* record, 4 bytes */
#define IDX_MAGIC		"AIDX"		/* index, 4 bytes */
#define TRL_MAGIC		"ATRL"		/* trailer, 4 bytes */
#define TABLE_MAGIC		"ABHT"		/* v2 block table, 4 bytes */
#define EXT_MAGIC		"AEXT"		/* v2 extension section, 4 bytes */
#define END_MAGIC		"AMBEREND"	/* last 8 bytes of a backup */
#define SECTION_MAGIC_BYTES	4

#define BKP_MIN_CHUNK		4096U
#define BKP_MAX_CHUNK		(1U << 20)
#define BKP_MAX_CHUNKS		(1ULL << 32)	/* chunks in one volume */
#define BKP_EXTENT_MAX_BYTES	(4U << 20)	/* one index entry spans at most */
#define BKP_TOOL_BYTES		32
/*
 * v2: entries of a full index block. A fuzzing build (checks.h) makes it 4,
 * so that seeds of a few records cross several blocks: its v2 seeds are
 * read by a fuzzing build only.
 */
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
#define BKP_BLOCK_ENTRIES	4U
#else
#define BKP_BLOCK_ENTRIES	4096U
#endif

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
	union {
		uint8_t	 reserved[88];	/* v1 */
		struct {		/* v2 */
			uint32_t compat;	/* feature bits (FEATURE_*) */
			uint32_t ro_compat;
			uint32_t incompat;
			uint32_t reserved;
			uint8_t	 backup_id[16];	/* random, new for every file */
			uint8_t	 key_fingerprint[32];	/* ENCRYPTED only */
			uint8_t	 feature_area[24];	/* claimed by a feature bit */
		} __attribute__((packed)) v2;
	};
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

/* v2: the record header commits to its payload by SHA-256. */
struct disk_record_v2 {
	char	 magic[4];		/* REC_MAGIC */
	uint16_t codec;
	uint16_t flags;
	uint64_t seq;
	uint64_t chunk;
	uint32_t stored_bytes;
	uint32_t reserved;
	uint8_t	 leaf[32];
	uint8_t	 payload_hash[32];	/* SHA-256 of the stored bytes */
	uint64_t csum;			/* XXH3-64 of the bytes before it */
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

/* v2 index block: BKP_BLOCK_ENTRIES entries, fewer only in the last. */
struct disk_block_head {
	char	 magic[4];		/* IDX_MAGIC */
	uint32_t count;
	uint64_t block;			/* 0, 1, 2, ... */
} __attribute__((packed));

struct disk_block_entry {
	uint64_t chunk;
	uint64_t offset;		/* of the record header */
	uint32_t stored_bytes;
	uint16_t codec;
	uint16_t flags;
	uint8_t	 record_hash[32];	/* SHA-256 of the record header */
	uint8_t	 leaf[32];
} __attribute__((packed));

/* v2 block table: a row per index block, after the records. */
struct disk_table_head {
	char	 magic[4];		/* TABLE_MAGIC */
	uint32_t reserved;
	uint64_t blocks;
} __attribute__((packed));

struct disk_table_row {
	uint64_t first_chunk;
	uint64_t offset;		/* of the index block */
	uint8_t	 hash[32];		/* SHA-256 of the whole block */
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

struct disk_trailer_v2 {
	char	 magic[4];		/* TRL_MAGIC */
	uint32_t trailer_bytes;		/* 360 */
	uint64_t records;
	uint64_t zero_records;
	uint64_t logical_bytes;
	uint64_t table_offset;
	uint64_t ext_bytes;
	uint64_t file_bytes;
	uint64_t reserved;
	uint8_t	 header_hash[32];	/* SHA-256 of the header */
	uint8_t	 table_hash[32];	/* SHA-256 of the block table section */
	uint8_t	 ext_hash[32];		/* of the extension sections, or 0 */
	uint8_t	 digest[32];
	uint8_t	 link[32];
	uint8_t	 mac[32];		/* ENCRYPTED only */
	uint8_t	 signer[32];		/* SIGNED only */
	uint8_t	 signature[64];		/* SIGNED only */
	uint64_t csum;			/* XXH3-64 of the bytes before it */
	char	 end[8];		/* END_MAGIC */
} __attribute__((packed));

/* v2 feature bits (docs/FORMAT-v2.md, "Feature bits"). */
#define FEATURE_COMPAT_SIGNED		(1U << 0)
#define FEATURE_INCOMPAT_ENCRYPTED	(1U << 0)

_Static_assert(sizeof(struct disk_header) == 256, "header layout");
_Static_assert(offsetof(struct disk_header, v2.compat) == 160, "v2 header layout");
_Static_assert(offsetof(struct disk_header, v2.backup_id) == 176, "v2 header layout");
_Static_assert(sizeof(struct disk_record) == 80, "record layout");
_Static_assert(sizeof(struct disk_index_head) == 16, "index layout");
_Static_assert(sizeof(struct disk_index_entry) == 24, "index entry layout");
_Static_assert(sizeof(struct disk_trailer) == 144, "trailer layout");
_Static_assert(sizeof(struct disk_record_v2) == 104, "v2 record layout");
_Static_assert(sizeof(struct disk_block_head) == 16, "v2 index block layout");
_Static_assert(sizeof(struct disk_block_entry) == 88, "v2 index entry layout");
_Static_assert(sizeof(struct disk_table_head) == 16, "v2 block table layout");
_Static_assert(sizeof(struct disk_table_row) == 48, "v2 table row layout");
_Static_assert(sizeof(struct disk_trailer_v2) == 368, "v2 trailer layout");

/* The image digest starts with a 16-byte tag (FORMAT.md, "Digests"). */
#define DIGEST_TAG_V1		"amber-image-v1\0"
#define DIGEST_TAG_V2		"amber-image-v2\0"
#define DIGEST_TAG_V2_KEYED	"amber-image-v2-k"	/* encrypted: keyed leaves */

#endif
