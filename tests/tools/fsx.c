/*
 * fsx: a small random-operation file exerciser. Runs against a path on a
 * mounted filesystem, keeps a model of what the file must contain, and
 * checks every read (and a final read of the whole file) against it:
 * random writes at random offsets and sizes (past EOF too, leaving holes),
 * truncates up and down, fsyncs, and close/reopen cycles.
 *
 *   fsx [-N ops] [-S seed] [-l maxlen] FILE
 *
 * On a mismatch it prints the seed, the failing operation, the first bad
 * byte and the operations leading up to it, and exits 1. Same seed, same
 * run: the generator is our own, not libc's.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define HISTORY 32

enum op_kind { OP_WRITE, OP_READ, OP_TRUNCATE, OP_FSYNC, OP_REOPEN };

static const char *const op_names[] = {
	[OP_WRITE] = "write",
	[OP_READ] = "read",
	[OP_TRUNCATE] = "truncate",
	[OP_FSYNC] = "fsync",
	[OP_REOPEN] = "reopen",
};

struct op {
	unsigned long num;
	enum op_kind kind;
	uint64_t off;
	uint64_t len;
	uint64_t size_before;
};

static const char *path;
static uint64_t seed;
static uint64_t rng_state;
static int fd = -1;
static unsigned char *model; /* what the file must hold */
static unsigned char *buf;
static uint64_t file_size;
static uint64_t maxlen = 256 * 1024;
static struct op history[HISTORY];
static unsigned long nhistory;

/* xorshift64*: small, and the same sequence everywhere. */
static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

static uint64_t rnd_below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

/* Never zero, so a hole where data belongs shows; depends on op and offset. */
static unsigned char pattern(unsigned long num, uint64_t off)
{
	return (unsigned char)((num * 7 + off) % 251 + 1);
}

static void print_op(const struct op *op)
{
	printf("  op %lu: %s", op->num, op_names[op->kind]);
	switch (op->kind) {
	case OP_WRITE:
	case OP_READ:
		printf(" %" PRIu64 " bytes at %" PRIu64, op->len, op->off);
		break;
	case OP_TRUNCATE:
		printf(" to %" PRIu64, op->len);
		break;
	default:
		break;
	}
	printf(" (size was %" PRIu64 ")\n", op->size_before);
}

static void fail(const struct op *op, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));

static void fail(const struct op *op, const char *fmt, ...)
{
	unsigned long first = nhistory > HISTORY ? nhistory - HISTORY : 0;
	unsigned long i;
	va_list ap;

	printf("fsx: FAILED on %s, seed %" PRIu64 "\n", path, seed);
	if (op)
		print_op(op);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("last operations:\n");
	for (i = first; i < nhistory; i++)
		print_op(&history[i % HISTORY]);
	printf("rerun: fsx -S %" PRIu64 " -l %" PRIu64 " ...\n", seed, maxlen);
	exit(1);
}

static void record(const struct op *op)
{
	history[nhistory++ % HISTORY] = *op;
}

static void do_open(int flags)
{
	fd = open(path, O_RDWR | flags, 0644);
	if (fd < 0) {
		printf("fsx: cannot open %s: %s\n", path, strerror(errno));
		exit(1);
	}
}

/* Reads [off, off + len) and compares it with the model. */
static void check_range(const struct op *op, uint64_t off, uint64_t len)
{
	uint64_t want = off >= file_size ? 0 :
			(off + len > file_size ? file_size - off : len);
	uint64_t done = 0, i;
	ssize_t got;

	while (done < len) {
		got = pread(fd, buf + done, len - done, off + done);
		if (got < 0)
			fail(op, "read error: %s\n", strerror(errno));
		if (got == 0)
			break;
		done += got;
	}
	if (done != want)
		fail(op, "read returned %" PRIu64 " bytes, expected %" PRIu64
			 "\n", done, want);
	for (i = 0; i < done; i++) {
		if (buf[i] != model[off + i])
			fail(op, "byte at offset %" PRIu64 " is 0x%02x, "
				 "expected 0x%02x (%s)\n", off + i, buf[i],
			     model[off + i],
			     model[off + i] ? "written data" : "a hole");
	}
}

static void do_write(struct op *op)
{
	uint64_t off = rnd_below(maxlen), len, i, done = 0;
	ssize_t got;

	/* Mostly small writes, some up to the whole range. */
	len = rnd_below(4) ? rnd_below(8192) + 1 : rnd_below(maxlen - off) + 1;
	if (off + len > maxlen)
		len = maxlen - off;
	op->off = off;
	op->len = len;
	record(op);
	for (i = 0; i < len; i++)
		buf[i] = pattern(op->num, off + i);
	while (done < len) {
		got = pwrite(fd, buf + done, len - done, off + done);
		if (got <= 0)
			fail(op, "write error: %s\n",
			     got < 0 ? strerror(errno) : "wrote nothing");
		done += got;
	}
	memcpy(model + off, buf, len);
	if (off + len > file_size)
		file_size = off + len;
}

static void do_truncate(struct op *op)
{
	uint64_t size = rnd_below(maxlen + 1);

	op->len = size;
	record(op);
	if (ftruncate(fd, size) < 0)
		fail(op, "ftruncate error: %s\n", strerror(errno));
	if (size < file_size)
		memset(model + size, 0, file_size - size);
	file_size = size;
}

static void do_read(struct op *op)
{
	uint64_t off = rnd_below(maxlen), len;

	len = rnd_below(2) ? rnd_below(8192) + 1 : rnd_below(maxlen - off) + 1;
	if (off + len > maxlen)
		len = maxlen - off;
	op->off = off;
	op->len = len;
	record(op);
	check_range(op, off, len);
}

static void check_all(void)
{
	struct op op = { .num = nhistory, .kind = OP_READ, .len = maxlen,
			 .size_before = file_size };
	struct stat st;

	if (fstat(fd, &st) < 0)
		fail(NULL, "fstat error: %s\n", strerror(errno));
	if ((uint64_t)st.st_size != file_size)
		fail(NULL, "file size is %lld, expected %" PRIu64 "\n",
		     (long long)st.st_size, file_size);
	check_range(&op, 0, maxlen);
}

static void usage(void)
{
	fprintf(stderr, "usage: fsx [-N ops] [-S seed] [-l maxlen] FILE\n");
	exit(2);
}

static uint64_t number(const char *s)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *end)
		usage();
	return v;
}

int main(int argc, char **argv)
{
	unsigned long ops = 10000, i;
	int opt, have_seed = 0;

	while ((opt = getopt(argc, argv, "N:S:l:")) != -1) {
		switch (opt) {
		case 'N':
			ops = number(optarg);
			break;
		case 'S':
			seed = number(optarg);
			have_seed = 1;
			break;
		case 'l':
			maxlen = number(optarg);
			if (!maxlen)
				usage();
			break;
		default:
			usage();
		}
	}
	if (optind != argc - 1)
		usage();
	path = argv[optind];
	if (!have_seed)
		seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 16);
	/* xorshift must not start from zero. */
	rng_state = seed ^ 0x9e3779b97f4a7c15ULL;
	if (!rng_state)
		rng_state = 1;

	model = calloc(1, maxlen);
	buf = malloc(maxlen);
	if (!model || !buf) {
		printf("fsx: out of memory for -l %" PRIu64 "\n", maxlen);
		return 1;
	}
	printf("fsx: %s, seed %" PRIu64 ", %lu ops, maxlen %" PRIu64 "\n",
	       path, seed, ops, maxlen);
	do_open(O_CREAT | O_TRUNC);

	for (i = 0; i < ops; i++) {
		struct op op = { .num = i, .size_before = file_size };
		uint64_t r = rnd_below(100);

		if (r < 45) {
			op.kind = OP_WRITE;
			do_write(&op);
		} else if (r < 75) {
			op.kind = OP_READ;
			do_read(&op);
		} else if (r < 90) {
			op.kind = OP_TRUNCATE;
			do_truncate(&op);
		} else if (r < 95) {
			op.kind = OP_FSYNC;
			record(&op);
			if (fsync(fd) < 0)
				fail(&op, "fsync error: %s\n",
				     strerror(errno));
		} else {
			op.kind = OP_REOPEN;
			record(&op);
			if (close(fd) < 0)
				fail(&op, "close error: %s\n",
				     strerror(errno));
			do_open(0);
		}
	}
	check_all();
	if (close(fd) < 0)
		fail(NULL, "close error: %s\n", strerror(errno));
	/* Once more through a fresh open: what is on the filesystem. */
	do_open(0);
	check_all();
	close(fd);
	printf("fsx: %lu ops ok\n", ops);
	return 0;
}
