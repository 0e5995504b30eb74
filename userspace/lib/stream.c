// SPDX-License-Identifier: GPL-2.0
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>

#include "codec.h"
#include "error.h"
#include "stream.h"
#include "util.h"

#define DEFAULT_IO_BYTES	(2 * MiB)
#define READERS			2	/* reads in flight: the device never idles */
#define MAX_SEGMENTS		64	/* separate reads in one job */
#define POLL_MAX		4096	/* chunks asked of the store at once */
#define SYNC_BYTES		(64 * MiB)
#define SYNC_SECONDS		1.0
#define WAIT_SLICE_NS		100000000L	/* writer checks for interrupts */

struct segment {
	uint64_t first;
	uint64_t count;
};

/* A job goes FREE -> READING -> READ -> ENCODING -> ENCODED -> FREE. */
enum job_state { JOB_FREE, JOB_READING, JOB_READ, JOB_ENCODING, JOB_ENCODED };

/* Up to io_bytes of chunks, read in a few segments and encoded. */
struct job {
	enum job_state state;
	uint64_t seq;
	bool early;
	struct segment seg[MAX_SEGMENTS];
	unsigned int nr_segs;
	uint32_t nr_chunks;
	uint8_t *in, *scratch;		/* io_bytes each */
	struct bkp_record *recs;	/* job_chunks */
	uint32_t nr_recs;		/* to write: the chunks not unchanged */
};

/* What to read next: store first, then the sweep. Runs under the lock. */
struct planner {
	const struct stream_config *cfg;
	uint64_t *planned;
	uint64_t cursor;		/* next chunk of the sweep */
	uint64_t *early;		/* from the last poll */
	size_t early_n, early_pos;
	uint64_t poll_from;		/* a poll to continue, or 0 */
	double next_poll;
	uint32_t job_chunks;
};

struct pipeline {
	const struct stream_config *cfg;
	pthread_mutex_t lock;
	pthread_cond_t changed;
	struct job *jobs;
	unsigned int nr_jobs;
	uint64_t next_plan;		/* seq of the next job planned */
	bool planned_all;		/* nothing left to plan */
	unsigned int readers_done;
	bool abort;
	struct error_state error;	/* why it aborted */
	struct planner plan;
	pthread_t *threads;
	unsigned int nr_threads;
};

/* Chunks whose records are out but not yet released. */
struct releaser {
	const struct stream_source *src;
	int out_fd;
	bool needs_sync;
	struct segment *v;
	size_t n, cap;
	uint64_t unsynced_bytes;
	double last_sync;
};

static bool wanted(const struct stream_config *cfg, uint64_t chunk)
{
	return !cfg->wanted || bit_test(cfg->wanted, chunk);
}

static uint64_t segment_bytes(const struct geometry *g, const struct segment *s)
{
	return (s->count - 1) * g->chunk_bytes + chunk_length(g, s->first + s->count - 1);
}

/* ---- planning ---- */

/* Chunks in the store that are wanted and not planned yet become early. */
static int poll_store(struct planner *pl)
{
	const struct stream_source *src = pl->cfg->src;
	size_t count, i;
	uint64_t c;

	pl->early_n = pl->early_pos = 0;
	if (src->copied(src->ctx, pl->poll_from, pl->early, POLL_MAX, &count))
		return error_prefix("listing the chunks in the store: ");
	if (count > POLL_MAX)
		return fail(AMBER_ESYS, "the store listed %zu chunks for %d asked", count,
			    POLL_MAX);
	if (count == POLL_MAX) {		/* more to list: go on next time */
		pl->poll_from = pl->early[count - 1] + 1;
	} else {
		pl->poll_from = 0;
		pl->next_poll = now_seconds() + pl->cfg->poll_interval;
	}
	for (i = 0; i < count; i++) {
		c = pl->early[i];
		if (c < pl->cfg->geo->nr_chunks && wanted(pl->cfg, c) &&
		    !bit_test(pl->planned, c))
			pl->early[pl->early_n++] = c;
	}
	return 0;
}

static bool job_full(const struct planner *pl, const struct job *job)
{
	return job->nr_chunks == pl->job_chunks || job->nr_segs == MAX_SEGMENTS;
}

static void job_add(struct planner *pl, struct job *job, uint64_t chunk)
{
	struct segment *last = job->nr_segs ? &job->seg[job->nr_segs - 1] : NULL;

	if (last && chunk == last->first + last->count)
		last->count++;
	else
		job->seg[job->nr_segs++] = (struct segment){ chunk, 1 };
	job->nr_chunks++;
	bit_set(pl->planned, chunk);
}

static bool should_poll(const struct planner *pl)
{
	return pl->cfg->src && pl->cfg->src->copied && pl->early_pos == pl->early_n &&
	       (pl->poll_from || now_seconds() >= pl->next_poll);
}

/* Fill @job: 1 planned, 0 nothing left, -1 error. */
static int plan_job(struct planner *pl, struct job *job)
{
	uint64_t c;

	job->nr_segs = job->nr_chunks = 0;
	if (should_poll(pl) && poll_store(pl))
		return -1;
	while (pl->early_pos < pl->early_n && !job_full(pl, job)) {
		c = pl->early[pl->early_pos++];
		if (!bit_test(pl->planned, c))
			job_add(pl, job, c);
	}
	job->early = job->nr_chunks > 0;
	while (!job->early && pl->cursor < pl->cfg->geo->nr_chunks && !job_full(pl, job)) {
		c = pl->cursor++;
		if (wanted(pl->cfg, c) && !bit_test(pl->planned, c))
			job_add(pl, job, c);
	}
	return job->nr_chunks ? 1 : 0;
}

/* ---- threads: readers and encoders ---- */

static void pipeline_abort(struct pipeline *p)
{
	pthread_mutex_lock(&p->lock);
	if (!p->abort) {
		p->abort = true;
		error_save(&p->error);
	}
	pthread_cond_broadcast(&p->changed);
	pthread_mutex_unlock(&p->lock);
}

static void set_state(struct pipeline *p, struct job *job, enum job_state state)
{
	pthread_mutex_lock(&p->lock);
	job->state = state;
	pthread_cond_broadcast(&p->changed);
	pthread_mutex_unlock(&p->lock);
}

/* The next job to read, planned in the next free slot; NULL at the end. */
static struct job *plan_next(struct pipeline *p)
{
	struct job *job;
	int ret;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		job = NULL;
		if (p->abort || p->planned_all)
			break;
		job = &p->jobs[p->next_plan % p->nr_jobs];
		if (job->state != JOB_FREE) {
			pthread_cond_wait(&p->changed, &p->lock);
			continue;
		}
		ret = plan_job(&p->plan, job);
		if (ret > 0) {
			job->seq = p->next_plan++;
			job->state = JOB_READING;
			break;
		}
		if (ret < 0) {
			p->abort = true;
			error_save(&p->error);
		}
		p->planned_all = true;
		pthread_cond_broadcast(&p->changed);
		job = NULL;
		break;
	}
	pthread_mutex_unlock(&p->lock);
	return job;
}

static int read_job(struct pipeline *p, struct job *job)
{
	const struct geometry *g = p->cfg->geo;
	uint64_t offset = 0, bytes;
	unsigned int s;

	for (s = 0; s < job->nr_segs; s++) {
		bytes = segment_bytes(g, &job->seg[s]);
		if (pread_full(p->cfg->view_fd, job->in + offset, bytes,
			       job->seg[s].first * g->chunk_bytes))
			return error_prefix("reading chunk %" PRIu64 " of the image: ",
					    job->seg[s].first);
		offset += bytes;
	}
	return 0;
}

/* Large sequential reads, READERS of them in flight at any time. */
static void *reader(void *arg)
{
	struct pipeline *p = arg;
	struct job *job;

	while ((job = plan_next(p))) {
		if (read_job(p, job)) {
			pipeline_abort(p);
			break;
		}
		set_state(p, job, JOB_READ);
	}
	pthread_mutex_lock(&p->lock);
	p->readers_done++;
	pthread_cond_broadcast(&p->changed);
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* The oldest job read and not yet taken; NULL at the end. */
static struct job *next_to_encode(struct pipeline *p)
{
	struct job *job, *oldest;
	unsigned int i;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		oldest = NULL;
		for (i = 0; i < p->nr_jobs; i++) {
			job = &p->jobs[i];
			if (job->state == JOB_READ && (!oldest || job->seq < oldest->seq))
				oldest = job;
		}
		if (p->abort || oldest || p->readers_done == READERS)
			break;
		pthread_cond_wait(&p->changed, &p->lock);
	}
	if (p->abort)
		oldest = NULL;
	if (oldest)
		oldest->state = JOB_ENCODING;
	pthread_mutex_unlock(&p->lock);
	return oldest;
}

/* Its leaf is the base's: the chunk is not sent. */
static bool unchanged(const struct stream_config *cfg, const struct bkp_record *rec)
{
	return cfg->base_leaves && !memcmp(cfg->base_leaves[rec->chunk], rec->leaf, 32);
}

static int encode_job(struct job *job, struct chunk_encoder *enc,
		      const struct stream_config *cfg)
{
	struct bkp_record *rec;
	uint64_t offset = 0, c;
	unsigned int s;

	job->nr_recs = 0;
	for (s = 0; s < job->nr_segs; s++)
		for (c = job->seg[s].first; c < job->seg[s].first + job->seg[s].count; c++) {
			rec = &job->recs[job->nr_recs];
			if (chunk_leaf(enc, c, job->in + offset, rec))
				return -1;
			if (!unchanged(cfg, rec)) {
				chunk_pack(enc, job->scratch + offset, rec);
				rec->flags |= job->early ? REC_EARLY : 0;
				job->nr_recs++;
			}
			offset += chunk_length(cfg->geo, c);
		}
	return 0;
}

static void *encoder(void *arg)
{
	struct pipeline *p = arg;
	struct chunk_encoder *enc = chunk_encoder_new(p->cfg->geo, p->cfg->level,
							p->cfg->leaf_key);
	struct job *job;

	if (!enc) {
		pipeline_abort(p);
		return NULL;
	}
	while ((job = next_to_encode(p))) {
		if (encode_job(job, enc, p->cfg)) {
			pipeline_abort(p);
			break;
		}
		set_state(p, job, JOB_ENCODED);
	}
	chunk_encoder_free(enc);
	return NULL;
}

/* ---- releasing ---- */

static int releaser_add(struct releaser *r, const struct segment *s)
{
	struct segment *last = r->n ? &r->v[r->n - 1] : NULL;

	if (last && s->first == last->first + last->count) {
		last->count += s->count;
		return 0;
	}
	if (r->n == r->cap) {
		size_t cap = r->cap ? 2 * r->cap : 256;

		last = realloc(r->v, cap * sizeof(*last));
		if (!last)
			return fail(AMBER_ESYS, "out of memory");
		r->v = last;
		r->cap = cap;
	}
	r->v[r->n++] = *s;
	return 0;
}

/* Make everything written durable, then release it. */
static int releaser_commit(struct releaser *r, struct bkp_writer *w)
{
	size_t i;

	if (bkp_writer_flush(w) || (r->needs_sync && sync_medium(r->out_fd)))
		return -1;
	r->unsynced_bytes = 0;
	r->last_sync = now_seconds();
	for (i = 0; r->src && r->src->release && i < r->n; i++)
		if (r->src->release(r->src->ctx, r->v[i].first, r->v[i].count))
			return error_prefix("releasing chunks %" PRIu64 "+%" PRIu64 ": ",
					    r->v[i].first, r->v[i].count);
	r->n = 0;
	return 0;
}

static bool releaser_due(const struct releaser *r)
{
	return !r->needs_sync || r->unsynced_bytes >= SYNC_BYTES ||
	       now_seconds() - r->last_sync >= SYNC_SECONDS;
}

static int release_unwanted(const struct stream_config *cfg)
{
	uint64_t c = 0, first;

	if (!cfg->wanted || !cfg->src || !cfg->src->release)
		return 0;
	while (c < cfg->geo->nr_chunks) {
		for (; c < cfg->geo->nr_chunks && wanted(cfg, c); c++)
			;
		for (first = c; c < cfg->geo->nr_chunks && !wanted(cfg, c); c++)
			;
		if (c > first && cfg->src->release(cfg->src->ctx, first, c - first))
			return error_prefix("releasing unchanged chunks: ");
	}
	return 0;
}

/* ---- writing, in the calling thread ---- */

static struct job *next_encoded(struct pipeline *p, uint64_t seq)
{
	struct job *job = &p->jobs[seq % p->nr_jobs];
	struct timespec until;

	pthread_mutex_lock(&p->lock);
	while (!p->abort && !(job->state == JOB_ENCODED && job->seq == seq) &&
	       !(p->planned_all && seq == p->next_plan)) {
		if (interrupted) {
			p->abort = true;
			fail(AMBER_ESYS, "interrupted");
			error_save(&p->error);
			break;
		}
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += WAIT_SLICE_NS;
		until.tv_sec += until.tv_nsec / 1000000000L;
		until.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&p->changed, &p->lock, &until);
	}
	if (p->abort || job->state != JOB_ENCODED || job->seq != seq)
		job = NULL;
	pthread_mutex_unlock(&p->lock);
	return job;
}

static int write_job(struct pipeline *p, struct job *job, struct bkp_writer *w,
		     struct releaser *r, struct stream_progress *prog)
{
	uint64_t before = bkp_writer_offset(w);
	unsigned int i;

	for (i = 0; i < job->nr_recs; i++)
		if (bkp_writer_put(w, &job->recs[i]))
			return -1;
	for (i = 0; i < job->nr_segs; i++) {
		if (releaser_add(r, &job->seg[i]))
			return -1;
		prog->done_bytes += segment_bytes(p->cfg->geo, &job->seg[i]);
	}
	prog->records += job->nr_recs;
	prog->early_records += job->early ? job->nr_recs : 0;
	prog->backup_bytes = bkp_writer_offset(w);
	r->unsynced_bytes += prog->backup_bytes - before;
	set_state(p, job, JOB_FREE);
	if (releaser_due(r) && releaser_commit(r, w))
		return -1;
	if (p->cfg->progress)
		p->cfg->progress(p->cfg->progress_ctx, prog);
	return 0;
}

static int write_all(struct pipeline *p, struct bkp_writer *w, struct stream_progress *prog)
{
	struct releaser r = {
		.src = p->cfg->src,
		.out_fd = p->cfg->out_fd,
		.needs_sync = fd_is_regular(p->cfg->out_fd) || fd_is_block(p->cfg->out_fd),
		.last_sync = now_seconds(),
	};
	struct job *job;
	uint64_t seq;
	int ret = -1;

	for (seq = 0; (job = next_encoded(p, seq)); seq++)
		if (write_job(p, job, w, &r, prog)) {
			pipeline_abort(p);
			goto out;
		}
	if (p->abort)
		error_restore(&p->error);
	else
		ret = releaser_commit(&r, w);
out:
	free(r.v);
	return ret;
}

/* ---- setup ---- */

static uint64_t wanted_bytes(const struct stream_config *cfg)
{
	uint64_t c, bytes = 0;

	if (!cfg->wanted)
		return cfg->geo->volume_bytes;
	for (c = 0; c < cfg->geo->nr_chunks; c++)
		if (wanted(cfg, c))
			bytes += chunk_length(cfg->geo, c);
	return bytes;
}

static int alloc_jobs(struct pipeline *p, size_t io_bytes)
{
	unsigned int i;

	p->jobs = calloc(p->nr_jobs, sizeof(*p->jobs));
	if (!p->jobs)
		return fail(AMBER_ESYS, "out of memory");
	for (i = 0; i < p->nr_jobs; i++) {
		p->jobs[i].in = alloc_aligned(io_bytes);
		p->jobs[i].scratch = malloc(io_bytes);
		p->jobs[i].recs = calloc(p->plan.job_chunks, sizeof(struct bkp_record));
		if (!p->jobs[i].in || !p->jobs[i].scratch || !p->jobs[i].recs)
			return fail(AMBER_ESYS, "out of memory (%u jobs of %zu bytes)",
				    p->nr_jobs, io_bytes);
	}
	return 0;
}

static void free_jobs(struct pipeline *p)
{
	unsigned int i;

	for (i = 0; p->jobs && i < p->nr_jobs; i++) {
		free(p->jobs[i].in);
		free(p->jobs[i].scratch);
		free(p->jobs[i].recs);
	}
	free(p->jobs);
}

/* Threads never take signals: the writing thread sees them. */
static int start_threads(struct pipeline *p)
{
	for (; p->nr_threads < READERS + p->cfg->encoders; p->nr_threads++)
		if (start_thread(&p->threads[p->nr_threads],
				 p->nr_threads < READERS ? reader : encoder, p))
			return -1;
	return 0;
}

static void stop_threads(struct pipeline *p)
{
	unsigned int i;

	for (i = 0; i < p->nr_threads; i++)
		pthread_join(p->threads[i], NULL);
}

int stream_backup(const struct stream_config *in_cfg, struct bkp_writer *w,
		  struct stream_progress *out)
{
	struct stream_config cfg = *in_cfg;
	struct stream_progress prog = { 0 };
	struct pipeline p = { .cfg = &cfg };
	int ret = -1;

	cfg.encoders = cfg.encoders ? cfg.encoders : default_workers();
	cfg.io_bytes = MAX(cfg.io_bytes ? cfg.io_bytes : DEFAULT_IO_BYTES, cfg.geo->chunk_bytes);
	cfg.poll_interval = cfg.poll_interval > 0 ? cfg.poll_interval : 1.0;
	prog.total_bytes = wanted_bytes(&cfg);
	p.nr_jobs = 2 * (READERS + cfg.encoders);
	p.plan = (struct planner){ .cfg = &cfg, .job_chunks = cfg.io_bytes / cfg.geo->chunk_bytes };
	p.plan.planned = bitmap_alloc(cfg.geo->nr_chunks);
	p.plan.early = calloc(POLL_MAX, sizeof(uint64_t));
	p.threads = calloc(READERS + cfg.encoders, sizeof(pthread_t));
	pthread_mutex_init(&p.lock, NULL);
	pthread_cond_init(&p.changed, NULL);
	if (!p.plan.planned || !p.plan.early || !p.threads) {
		fail(AMBER_ESYS, "out of memory");
		goto out;
	}
	if (release_unwanted(&cfg) || alloc_jobs(&p, cfg.io_bytes) || start_threads(&p)) {
		pipeline_abort(&p);
		stop_threads(&p);
		goto out;
	}
	ret = write_all(&p, w, &prog);
	stop_threads(&p);
out:
	if (out)
		*out = prog;
	free_jobs(&p);
	free(p.threads);
	free(p.plan.early);
	free(p.plan.planned);
	pthread_cond_destroy(&p.changed);
	pthread_mutex_destroy(&p.lock);
	return ret;
}
