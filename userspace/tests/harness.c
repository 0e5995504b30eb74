// SPDX-License-Identifier: GPL-2.0
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define MAX_TESTS	256
#define TEST_SECONDS	120

struct test {
	const char *name, *file;
	int line;
	void (*fn)(void);
};

static struct test tests[MAX_TESTS];
static int nr_tests;

void test_register(const char *name, const char *file, int line, void (*fn)(void))
{
	if (nr_tests == MAX_TESTS) {
		fprintf(stderr, "too many tests\n");
		exit(1);
	}
	tests[nr_tests++] = (struct test){ name, file, line, fn };
}

void test_failed(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	exit(1);
}

static int by_place(const void *a, const void *b)
{
	const struct test *x = a, *y = b;
	int c = strcmp(x->file, y->file);

	return c ? c : x->line - y->line;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

/* Run @t in a child inside @dir with output to @log; true if it passed. */
static bool run_one(const struct test *t, const char *dir, const char *log)
{
	int status, fd;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd < 0 || chdir(dir))
			_exit(2);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		alarm(TEST_SECONDS);
		t->fn();
		fflush(NULL);
		_exit(0);
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		return false;
	if (WIFSIGNALED(status)) {
		FILE *f = fopen(log, "a");

		if (f) {
			fprintf(f, "killed by signal %d\n", WTERMSIG(status));
			fclose(f);
		}
	}
	return WIFEXITED(status) && !WEXITSTATUS(status);
}

static void show_log(const char *log)
{
	char line[1024];
	FILE *f = fopen(log, "r");

	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		printf("# %s%s", line, strchr(line, '\n') ? "" : "\n");
	fclose(f);
}

static bool selected(const struct test *t, int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++)
		if (strstr(t->name, argv[i]))
			return true;
	return argc < 2;
}

int main(int argc, char **argv)
{
	const char *tmp = getenv("TMPDIR");
	char root[256], dir[300], log[300];
	int i, n = 0, passed = 0, failed = 0;

	snprintf(root, sizeof(root), "%s/amber-tests.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(root)) {
		perror("mkdtemp");
		return 1;
	}
	qsort(tests, nr_tests, sizeof(tests[0]), by_place);
	for (i = 0; i < nr_tests; i++)
		n += selected(&tests[i], argc, argv);
	printf("KTAP version 1\n1..%d\n", n);
	for (i = 0, n = 0; i < nr_tests; i++) {
		if (!selected(&tests[i], argc, argv))
			continue;
		snprintf(dir, sizeof(dir), "%s/%d", root, ++n);
		snprintf(log, sizeof(log), "%s/%d.log", root, n);
		mkdir(dir, 0700);
		if (run_one(&tests[i], dir, log)) {
			printf("ok %d %s\n", n, tests[i].name);
			passed++;
		} else {
			show_log(log);
			printf("not ok %d %s\n", n, tests[i].name);
			failed++;
		}
		fflush(stdout);
	}
	nftw(root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	printf("# amber userspace unit tests\n%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
