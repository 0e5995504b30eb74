// SPDX-License-Identifier: GPL-2.0
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <sys/wait.h>
#include <unistd.h>

#include "blocks.h"
#include "codec.h"
#include "harness.h"
#include "helpers.h"
#include "keys.h"
#include "util.h"

const uint8_t test_uuid[16] = { 0xa1, 0x2b, 0x3c, 0x4d, 0x5e, 0x6f, 0x40, 0x81,
				0x92, 0xa3, 0xb4, 0xc5, 0xd6, 0xe7, 0xf8, 0x09 };

/* splitmix64: a fixed, fast sequence per seed. */
static uint64_t next_random(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void random_fill(void *buf, size_t len, uint64_t seed)
{
	uint8_t *p = buf;
	uint64_t v;
	size_t i;

	for (i = 0; i < len; i += 8) {
		v = next_random(&seed);
		memcpy(p + i, &v, MIN(8, len - i));
	}
}

void counting(uint8_t *out, size_t len, uint8_t first)
{
	size_t i;

	for (i = 0; i < len; i++)
		out[i] = first + i;
}

struct data_key *test_key(uint8_t first)
{
	uint8_t k[KEY_BYTES];
	struct data_key *key;

	counting(k, sizeof(k), first);
	CHECK_PTR(key = data_key_new(k));
	return key;
}

static void text_fill(uint8_t *buf, size_t len, uint64_t seed)
{
	size_t i;
	int n;

	for (i = 0; i < len; i += n) {
		char line[64];

		n = snprintf(line, sizeof(line), "row %" PRIu64 " balance %zu;\n", seed, i / 29);
		memcpy(buf + i, line, MIN((size_t)n, len - i));
	}
}

uint8_t *image_chunk(const struct image *im, uint64_t chunk)
{
	return im->data + chunk * im->geo.chunk_bytes;
}

void image_make(struct image *im, uint64_t volume_bytes, uint32_t chunk_bytes, uint64_t seed)
{
	uint64_t c;

	CHECK_OK(geometry_init(&im->geo, volume_bytes, chunk_bytes));
	im->data = calloc(1, volume_bytes);
	CHECK(im->data);
	for (c = 0; c < im->geo.nr_chunks; c++) {
		uint32_t len = chunk_length(&im->geo, c);

		if (c % 3 == 1)
			text_fill(image_chunk(im, c), len, seed + c);
		else if (c % 3 == 2)
			random_fill(image_chunk(im, c), len, seed + c);
	}
}

void image_change(struct image *im, uint64_t chunk, uint64_t seed)
{
	random_fill(image_chunk(im, chunk), chunk_length(&im->geo, chunk), seed);
}

void image_copy(struct image *to, const struct image *from)
{
	to->geo = from->geo;
	to->data = malloc(from->geo.volume_bytes);
	CHECK(to->data);
	memcpy(to->data, from->data, from->geo.volume_bytes);
}

void image_free(struct image *im)
{
	free(im->data);
	im->data = NULL;
}

struct bkp_info test_info(const struct image *im, enum bkp_kind kind, uint64_t epoch)
{
	struct bkp_info info = { .kind = kind, .geo = im->geo, .epoch = epoch,
				 .created = 1700000000, .tool = "amber test" };

	memcpy(info.volume_uuid, test_uuid, 16);
	return info;
}

struct bkp_info kat_info(void)
{
	static const uint8_t uuid[16] = {
		0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x46, 0x77,
		0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
	};
	struct bkp_info info = { .version = BKP_VERSION_2, .kind = BKP_FULL, .epoch = 7,
				 .created = 1700000000, .tool = "amber 2.0.0" };

	memcpy(info.volume_uuid, uuid, 16);
	CHECK_OK(geometry_init(&info.geo, 8192, 4096));
	return info;
}

void set_parent(struct bkp_info *info, uint64_t parent_epoch, const struct bkp_summary *parent)
{
	info->kind = BKP_INCREMENTAL;
	memcpy(info->parent_uuid, info->volume_uuid, 16);
	info->parent_epoch = parent_epoch;
	memcpy(info->parent_link, parent->link, 32);
}

void write_chunks(const char *path, const struct bkp_info *info, const struct image *im,
		  const uint64_t *chunks, const bool *early, size_t n, int level,
		  struct bkp_summary *out)
{
	write_chunks_keyed(path, info, im, chunks, early, n, level, NULL, out);
}

void write_chunks_keyed(const char *path, const struct bkp_info *info, const struct image *im,
			const uint64_t *chunks, const bool *early, size_t n, int level,
			const struct bkp_keys *keys, struct bkp_summary *out)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	uint8_t *scratch = malloc(im->geo.chunk_bytes);
	struct chunk_encoder *enc;
	struct bkp_writer *w;
	struct bkp_record rec;
	size_t i;

	CHECK(fd >= 0 && scratch);
	CHECK_PTR(enc = chunk_encoder_new(&im->geo, level,
					  keys && keys->data ? keys->data->identity : NULL));
	CHECK_PTR(w = bkp_writer_new(fd, info, keys));
	for (i = 0; i < n; i++) {
		CHECK_OK(chunk_encode(enc, chunks[i], image_chunk(im, chunks[i]), scratch, &rec));
		if (early && early[i])
			rec.flags |= REC_EARLY;
		CHECK_OK(bkp_writer_put(w, &rec));
	}
	CHECK_OK(bkp_writer_finish(w, NULL, out));
	bkp_writer_free(w);
	chunk_encoder_free(enc);
	free(scratch);
	close(fd);
}

void write_all(const char *path, const struct bkp_info *info, const struct image *im,
	       int level, struct bkp_summary *out)
{
	uint64_t *chunks = calloc(im->geo.nr_chunks, sizeof(*chunks)), c;

	CHECK(chunks);
	for (c = 0; c < im->geo.nr_chunks; c++)
		chunks[c] = c;
	write_chunks(path, info, im, chunks, NULL, im->geo.nr_chunks, level, out);
	free(chunks);
}

int read_backup(const char *path, struct image *into, struct bkp_summary *out)
{
	return read_backup_keyed(path, into, out, NULL, NULL);
}

int read_backup_keyed(const char *path, struct image *into, struct bkp_summary *out,
		      const struct data_key *key, const struct asym_key *pub)
{
	int fd = open(path, O_RDONLY), ret;
	struct bkp_reader *r;
	struct bkp_record rec;

	CHECK(fd >= 0);
	r = bkp_reader_open(fd);
	if (!r || bkp_reader_set_key(r, key) || bkp_reader_set_pubkey(r, pub)) {
		bkp_reader_free(r);
		close(fd);
		return -1;
	}
	while ((ret = bkp_reader_next(r, &rec)) > 0)
		if (into)
			memcpy(image_chunk(into, rec.chunk), rec.data, rec.length);
	if (!ret && out)
		*out = *bkp_reader_summary(r);
	bkp_reader_free(r);
	close(fd);
	return ret;
}

void reference_digest(const struct image *im, uint32_t version, uint8_t out[32])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint8_t le[8], leaf[32];
	uint64_t c;

	CHECK(ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL));
	EVP_DigestUpdate(ctx, version == BKP_VERSION_1 ? DIGEST_TAG_V1 : DIGEST_TAG_V2, 16);
	put_le64(le, im->geo.volume_bytes);
	EVP_DigestUpdate(ctx, le, 8);
	put_le64(le, im->geo.chunk_bytes);
	EVP_DigestUpdate(ctx, le, 8);
	for (c = 0; c < im->geo.nr_chunks; c++) {
		EVP_Digest(image_chunk(im, c), chunk_length(&im->geo, c), leaf, NULL,
			   EVP_sha256(), NULL);
		put_le64(le, c);
		EVP_DigestUpdate(ctx, le, 8);
		EVP_DigestUpdate(ctx, leaf, 32);
	}
	EVP_DigestFinal_ex(ctx, out, NULL);
	EVP_MD_CTX_free(ctx);
}

void file_put(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	CHECK(fd >= 0);
	CHECK_OK(write_full(fd, data, len));
	close(fd);
}

uint8_t *file_get(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY);
	uint64_t size;
	uint8_t *data;

	CHECK(fd >= 0);
	CHECK_OK(fd_size(fd, &size));
	data = malloc(size + 1);
	CHECK(data);
	CHECK_OK(pread_full(fd, data, size, 0));
	close(fd);
	*len = size;
	return data;
}

void check_target_is(const struct image *im)
{
	uint8_t *target;
	size_t len;

	target = file_get("target", &len);
	CHECK_EQ(len, im->geo.volume_bytes);
	CHECK(!memcmp(target, im->data, len));
	free(target);
}

void file_flip(const char *path, size_t offset, uint8_t mask)
{
	int fd = open(path, O_RDWR);
	uint8_t b;

	CHECK(fd >= 0);
	CHECK_OK(pread_full(fd, &b, 1, offset));
	b ^= mask;
	CHECK_OK(pwrite_full(fd, &b, 1, offset));
	close(fd);
}

void file_truncate(const char *path, size_t len)
{
	CHECK(!truncate(path, len));
}

uint64_t chunk_record_offset(const char *path, uint64_t chunk)
{
	uint64_t at = sizeof(struct disk_header), header;
	uint8_t *file;
	size_t len;

	file = file_get(path, &len);
	header = get_le32(file + 8) == BKP_VERSION_1 ? sizeof(struct disk_record) :
						       sizeof(struct disk_record_v2);
	while (at + header <= len) {
		if (header == sizeof(struct disk_record_v2) && !memcmp(file + at, IDX_MAGIC, 4)) {
			at += block_section_bytes(get_le32(file + at + 4));
			continue;
		}
		CHECK(!memcmp(file + at, REC_MAGIC, 4));
		if (get_le64(file + at + 16) == chunk)
			break;
		at += header + get_le32(file + at + 24);
	}
	CHECK(at + header <= len);
	free(file);
	return at;
}

int run_cmd(int (*main)(int, char **), ...)
{
	char *argv[32];
	int argc = 0;
	va_list ap;

	va_start(ap, main);
	while (argc < 31 && (argv[argc] = va_arg(ap, char *)))
		argc++;
	va_end(ap);
	argv[argc] = NULL;
	return main(argc, argv);
}

void check_every_flip_detected(const char *path)
{
	check_flips_detected(path, 0, SIZE_MAX, NULL, NULL);
}

void check_flips_detected(const char *path, size_t from, size_t to,
			  const struct data_key *key, const struct asym_key *pub)
{
	size_t len, off;
	uint8_t *file;

	file = file_get(path, &len);
	for (off = from; off < MIN(to, len); off++) {
		file[off] ^= 1 << (off % 8);
		file_put("flipped.amb", file, len);
		if (read_backup_keyed("flipped.amb", NULL, NULL, key, pub) == 0 ||
		    error_status() != AMBER_EDATA)
			test_failed(__FILE__, __LINE__, "flip at offset %zu not detected (%s)",
				    off, error_msg());
		file[off] ^= 1 << (off % 8);
	}
	free(file);
}

int pipe_from(const char *path, size_t len, size_t piece, pid_t *child)
{
	size_t size, done;
	uint8_t *data;
	int fds[2];

	data = file_get(path, &size);
	CHECK(len <= size && !pipe(fds));
	*child = fork();
	CHECK(*child >= 0);
	if (!*child) {
		close(fds[0]);
		for (done = 0; done < len; done += piece)
			if (write_full(fds[1], data + done, MIN(piece, len - done)))
				_exit(1);
		_exit(0);
	}
	close(fds[1]);
	free(data);
	return fds[0];
}

int child_status(pid_t child)
{
	int status;

	CHECK(waitpid(child, &status, 0) == child);
	return status;
}

void with_stdin_pipe(const char *path, pid_t *child)
{
	size_t len;
	int fd;

	free(file_get(path, &len));
	fd = pipe_from(path, len, 65536, child);
	CHECK(dup2(fd, STDIN_FILENO) == STDIN_FILENO);
	close(fd);
}

int stdin_end(pid_t child)
{
	int fd = open("/dev/null", O_RDONLY);

	CHECK(fd >= 0 && dup2(fd, STDIN_FILENO) == STDIN_FILENO);
	close(fd);
	return child_status(child);
}
