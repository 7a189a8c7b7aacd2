/*
 * fsx: a small random-operation file exerciser. Runs against a path on a
 * mounted filesystem, keeps a model of what the file must contain, and
 * checks every read (and a final read of the whole file) against it:
 * random writes at random offsets and sizes (past EOF too, leaving holes),
 * reads and writes through shared mappings, truncates up and down,
 * fallocate in every mode (preallocate, keep size, punch hole, zero range,
 * collapse and insert range), fsyncs, and close/reopen cycles. Offsets
 * and sizes favour block boundaries (1k and 4k) and the bytes beside them,
 * where partial blocks are zeroed and extents split.
 *
 *   fsx [-M] [-F] [-N ops] [-S seed] [-l maxlen] [-o oplen] FILE
 *
 * -M leaves out the mapped reads and writes, -F the fallocate calls;
 * -o caps the size of one read or write (default: maxlen). A fallocate
 * mode that fails with EOPNOTSUPP leaves the model as it was and is
 * counted as refused; before its last line fsx prints, per mode, how many
 * calls were done and how many refused. Tests keep that line, so a mode
 * that stops working (or starts) changes their output.
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
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define HISTORY 32

enum op_kind {
	OP_WRITE,
	OP_READ,
	OP_MAPWRITE,
	OP_MAPREAD,
	OP_TRUNCATE,
	OP_FALLOCATE,
	OP_FSYNC,
	OP_REOPEN,
	OP_KINDS
};

static const char *const op_names[] = {
	[OP_WRITE] = "write",
	[OP_READ] = "read",
	[OP_MAPWRITE] = "mapwrite",
	[OP_MAPREAD] = "mapread",
	[OP_TRUNCATE] = "truncate",
	[OP_FALLOCATE] = "fallocate",
	[OP_FSYNC] = "fsync",
	[OP_REOPEN] = "reopen",
};

/* Percent of the operations of each kind. */
static const unsigned int op_weights[OP_KINDS] = {
	[OP_WRITE] = 27,
	[OP_READ] = 18,
	[OP_MAPWRITE] = 8,
	[OP_MAPREAD] = 10,
	[OP_TRUNCATE] = 13,
	[OP_FALLOCATE] = 16,
	[OP_FSYNC] = 4,
	[OP_REOPEN] = 4,
};

enum falloc_kind {
	FA_ALLOC,
	FA_ALLOC_KEEP,
	FA_PUNCH,
	FA_ZERO,
	FA_ZERO_KEEP,
	FA_COLLAPSE,
	FA_INSERT,
	FA_KINDS
};

static const struct {
	int mode;
	const char *name;
} falloc_modes[FA_KINDS] = {
	[FA_ALLOC] = { 0, "alloc" },
	[FA_ALLOC_KEEP] = { FALLOC_FL_KEEP_SIZE, "alloc|keep_size" },
	[FA_PUNCH] = { FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		       "punch_hole|keep_size" },
	[FA_ZERO] = { FALLOC_FL_ZERO_RANGE, "zero_range" },
	[FA_ZERO_KEEP] = { FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
			   "zero_range|keep_size" },
	[FA_COLLAPSE] = { FALLOC_FL_COLLAPSE_RANGE, "collapse_range" },
	[FA_INSERT] = { FALLOC_FL_INSERT_RANGE, "insert_range" },
};

struct op {
	unsigned long num;
	enum op_kind kind;
	enum falloc_kind fa;
	uint64_t off;
	uint64_t len;
	uint64_t size_before;
	int skipped;
};

static const char *path;
static uint64_t seed;
static uint64_t rng_state;
static int fd = -1;
static unsigned char *model; /* what the file must hold */
static unsigned char *buf;
static uint64_t file_size;
static uint64_t maxlen = 256 * 1024;
static uint64_t oplen;
static uint64_t pagesize;
static uint64_t blksize; /* collapse/insert granularity */
static int no_mmap, no_falloc;
static unsigned long falloc_done[FA_KINDS], falloc_refused[FA_KINDS];
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

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/*
 * An offset below limit: half the time anywhere, otherwise on a 1k or 4k
 * boundary or one byte either side of it.
 */
static uint64_t pick_off(uint64_t limit)
{
	uint64_t unit, off;

	if (!limit)
		return 0;
	switch (rnd_below(4)) {
	case 0:
		unit = 1024;
		break;
	case 1:
		unit = 4096;
		break;
	default:
		return rnd_below(limit);
	}
	off = rnd_below(limit / unit + 1) * unit + rnd_below(3);
	off = off ? off - 1 : 0;
	return off < limit ? off : limit - 1;
}

/* A length from 1 to max: mostly small, some whole blocks, some large. */
static uint64_t pick_len(uint64_t max)
{
	uint64_t len;

	switch (rnd_below(4)) {
	case 0:
	case 1:
		len = rnd_below(8192) + 1;
		break;
	case 2:
		len = (rnd_below(16) + 1) * 4096 + rnd_below(3);
		len = len > 4096 ? len - 1 : len;
		break;
	default:
		len = rnd_below(max) + 1;
		break;
	}
	return len < max ? len : max;
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
	case OP_MAPWRITE:
	case OP_MAPREAD:
		printf(" %" PRIu64 " bytes at %" PRIu64, op->len, op->off);
		break;
	case OP_FALLOCATE:
		printf(" %s %" PRIu64 " bytes at %" PRIu64,
		       falloc_modes[op->fa].name, op->len, op->off);
		break;
	case OP_TRUNCATE:
		printf(" to %" PRIu64, op->len);
		break;
	default:
		break;
	}
	printf(" (size was %" PRIu64 ")%s\n", op->size_before,
	       op->skipped ? " skipped" : "");
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
	printf("rerun: fsx%s%s -S %" PRIu64 " -l %" PRIu64 " -o %" PRIu64
	       " ...\n", no_mmap ? " -M" : "", no_falloc ? " -F" : "", seed,
	       maxlen, oplen);
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

/* Compares len bytes read at off (into got) with the model. */
static void compare(const struct op *op, const unsigned char *got,
		    uint64_t off, uint64_t len)
{
	uint64_t i;

	for (i = 0; i < len; i++) {
		if (got[i] != model[off + i])
			fail(op, "byte at offset %" PRIu64 " is 0x%02x, "
				 "expected 0x%02x (%s)\n", off + i, got[i],
			     model[off + i],
			     model[off + i] ? "written data" : "a hole");
	}
}

/* Reads [off, off + len) and compares it with the model. */
static void check_range(const struct op *op, uint64_t off, uint64_t len)
{
	uint64_t want = off >= file_size ? 0 :
			(off + len > file_size ? file_size - off : len);
	uint64_t done = 0;
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
	compare(op, buf, off, done);
}

/* The size the filesystem reports must be the model's. */
static void check_size(const struct op *op)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		fail(op, "fstat error: %s\n", strerror(errno));
	if ((uint64_t)st.st_size != file_size)
		fail(op, "file size is %lld, expected %" PRIu64 "\n",
		     (long long)st.st_size, file_size);
}

static void set_size(const struct op *op, uint64_t size)
{
	if (ftruncate(fd, size) < 0)
		fail(op, "ftruncate error: %s\n", strerror(errno));
	if (size < file_size)
		memset(model + size, 0, file_size - size);
	file_size = size;
}

static void do_write(struct op *op)
{
	uint64_t off = pick_off(maxlen), len, i, done = 0;
	ssize_t got;

	len = pick_len(min_u64(maxlen - off, oplen));
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

static void do_read(struct op *op)
{
	uint64_t off = pick_off(maxlen), len;

	len = pick_len(min_u64(maxlen - off, oplen));
	op->off = off;
	op->len = len;
	record(op);
	check_range(op, off, len);
}

/*
 * Maps the pages that hold [off, off + len): mappings start on a page
 * boundary. Returns the mapping; *base is the file offset of its start.
 */
static unsigned char *map_range(const struct op *op, uint64_t off,
				uint64_t len, int prot, uint64_t *base)
{
	void *p;

	*base = off & ~(pagesize - 1);
	p = mmap(NULL, off + len - *base, prot, MAP_SHARED, fd, *base);
	if (p == MAP_FAILED)
		fail(op, "mmap error: %s\n", strerror(errno));
	return p;
}

/*
 * A read through a shared mapping, inside the file only (a page wholly
 * past EOF would raise SIGBUS). The rest of the page that holds EOF must
 * read as zeros.
 */
static void do_mapread(struct op *op)
{
	uint64_t off, len, base, end, i;
	unsigned char *p;

	if (!file_size) {
		op->skipped = 1;
		record(op);
		return;
	}
	off = pick_off(file_size);
	len = pick_len(min_u64(file_size - off, oplen));
	op->off = off;
	op->len = len;
	record(op);
	end = (off + len + pagesize - 1) & ~(pagesize - 1);
	p = map_range(op, off, end - off, PROT_READ, &base);
	memcpy(buf, p + (off - base), len);
	compare(op, buf, off, len);
	for (i = file_size; i < end; i++) {
		if (p[i - base])
			fail(op, "mapped byte at offset %" PRIu64 " past EOF "
				 "is 0x%02x, expected 0\n", i, p[i - base]);
	}
	if (munmap(p, end - base) < 0)
		fail(op, "munmap error: %s\n", strerror(errno));
}

/*
 * A write through a shared mapping, then msync. A mapping cannot extend
 * the file, so a write past EOF first sets the size with ftruncate.
 */
static void do_mapwrite(struct op *op)
{
	uint64_t off = pick_off(maxlen), len, base, i;
	unsigned char *p;

	len = pick_len(min_u64(maxlen - off, oplen));
	op->off = off;
	op->len = len;
	record(op);
	if (off + len > file_size)
		set_size(op, off + len);
	p = map_range(op, off, len, PROT_READ | PROT_WRITE, &base);
	for (i = 0; i < len; i++)
		p[off - base + i] = pattern(op->num, off + i);
	if (msync(p, off + len - base, MS_SYNC) < 0)
		fail(op, "msync error: %s\n", strerror(errno));
	if (munmap(p, off + len - base) < 0)
		fail(op, "munmap error: %s\n", strerror(errno));
	for (i = 0; i < len; i++)
		model[off + i] = pattern(op->num, off + i);
}

/*
 * Truncates to a random size, or to a size close to the current one so
 * that a block is cut and then grown back: its tail must read as zeros.
 */
static void do_truncate(struct op *op)
{
	uint64_t size;

	if (rnd_below(4)) {
		size = pick_off(maxlen + 1);
	} else {
		size = file_size + rnd_below(16384);
		size = size > 8192 ? size - 8192 : 0;
		size = min_u64(size, maxlen);
	}
	op->len = size;
	record(op);
	set_size(op, size);
}

/* Parameters for collapse and insert: whole blocks, inside the file. */
static int pick_shift(struct op *op)
{
	uint64_t nblk, off, len;

	if (!file_size)
		return -1;
	nblk = (file_size - 1) / blksize;
	if (op->fa == FA_COLLAPSE) {
		/* The range must end before EOF. */
		if (!nblk)
			return -1;
		off = rnd_below(nblk);
		len = rnd_below(min_u64(nblk - off, 64)) + 1;
	} else {
		/* Must start inside the file; the file must stay in maxlen. */
		if (maxlen - file_size < blksize)
			return -1;
		off = rnd_below(nblk + 1);
		len = rnd_below(min_u64((maxlen - file_size) / blksize, 64)) + 1;
	}
	op->off = off * blksize;
	op->len = len * blksize;
	return 0;
}

static void do_fallocate(struct op *op)
{
	uint64_t off, len, end, size = file_size;

	op->fa = rnd_below(FA_KINDS);
	if (op->fa == FA_COLLAPSE || op->fa == FA_INSERT) {
		if (pick_shift(op) < 0)
			op->skipped = 1;
	} else {
		op->off = pick_off(maxlen);
		op->len = pick_len(maxlen - op->off);
	}
	record(op);
	if (op->skipped)
		return;
	off = op->off;
	len = op->len;
	if (fallocate(fd, falloc_modes[op->fa].mode, off, len) < 0) {
		if (errno != EOPNOTSUPP)
			fail(op, "fallocate error: %s\n", strerror(errno));
		falloc_refused[op->fa]++;
		history[(nhistory - 1) % HISTORY].skipped = 1;
		return;
	}
	falloc_done[op->fa]++;
	end = min_u64(off + len, size);
	switch (op->fa) {
	case FA_ALLOC:
		file_size = off + len > size ? off + len : size;
		break;
	case FA_ALLOC_KEEP:
		break;
	case FA_PUNCH:
	case FA_ZERO_KEEP:
		if (off < end)
			memset(model + off, 0, end - off);
		break;
	case FA_ZERO:
		if (off < end)
			memset(model + off, 0, end - off);
		file_size = off + len > size ? off + len : size;
		break;
	case FA_COLLAPSE:
		memmove(model + off, model + off + len, size - off - len);
		memset(model + size - len, 0, len);
		file_size = size - len;
		break;
	case FA_INSERT:
		memmove(model + off + len, model + off, size - off);
		memset(model + off, 0, len);
		file_size = size + len;
		break;
	case FA_KINDS:
		break;
	}
	check_size(op);
}

/* One line: calls done/refused (EOPNOTSUPP) per fallocate mode. */
static void print_falloc_counts(void)
{
	int i;

	printf("fsx: fallocate done/refused:");
	for (i = 0; i < FA_KINDS; i++)
		printf("%s %s %lu/%lu", i ? "," : "", falloc_modes[i].name,
		       falloc_done[i], falloc_refused[i]);
	printf("\n");
}

static void check_all(void)
{
	struct op op = { .num = nhistory, .kind = OP_READ, .len = maxlen,
			 .size_before = file_size };

	check_size(NULL);
	check_range(&op, 0, maxlen);
}

static void usage(void)
{
	fprintf(stderr, "usage: fsx [-M] [-F] [-N ops] [-S seed] [-l maxlen] "
			"[-o oplen] FILE\n");
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

/* The next kind of operation, with the left-out kinds replaced. */
static enum op_kind pick_kind(void)
{
	unsigned int r = rnd_below(100), k;

	for (k = 0; k < OP_KINDS - 1; k++) {
		if (r < op_weights[k])
			break;
		r -= op_weights[k];
	}
	if (no_mmap && k == OP_MAPWRITE)
		return OP_WRITE;
	if (no_mmap && k == OP_MAPREAD)
		return OP_READ;
	if (no_falloc && k == OP_FALLOCATE)
		return OP_TRUNCATE;
	return k;
}

int main(int argc, char **argv)
{
	unsigned long ops = 10000, i;
	int opt, have_seed = 0;
	struct stat st;

	while ((opt = getopt(argc, argv, "MFN:S:l:o:")) != -1) {
		switch (opt) {
		case 'M':
			no_mmap = 1;
			break;
		case 'F':
			no_falloc = 1;
			break;
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
		case 'o':
			oplen = number(optarg);
			if (!oplen)
				usage();
			break;
		default:
			usage();
		}
	}
	if (optind != argc - 1)
		usage();
	path = argv[optind];
	if (!oplen || oplen > maxlen)
		oplen = maxlen;
	if (!have_seed)
		seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 16);
	/* xorshift must not start from zero. */
	rng_state = seed ^ 0x9e3779b97f4a7c15ULL;
	if (!rng_state)
		rng_state = 1;
	pagesize = sysconf(_SC_PAGESIZE);

	model = calloc(1, maxlen);
	buf = malloc(maxlen + pagesize);
	if (!model || !buf) {
		printf("fsx: out of memory for -l %" PRIu64 "\n", maxlen);
		return 1;
	}
	printf("fsx: %s, seed %" PRIu64 ", %lu ops, maxlen %" PRIu64
	       ", oplen %" PRIu64 "%s%s\n", path, seed, ops, maxlen, oplen,
	       no_mmap ? ", no mmap" : "", no_falloc ? ", no fallocate" : "");
	do_open(O_CREAT | O_TRUNC);
	if (fstat(fd, &st) < 0 || st.st_blksize <= 0) {
		printf("fsx: cannot stat %s\n", path);
		return 1;
	}
	blksize = st.st_blksize;

	for (i = 0; i < ops; i++) {
		struct op op = { .num = i, .size_before = file_size };

		op.kind = pick_kind();
		switch (op.kind) {
		case OP_WRITE:
			do_write(&op);
			break;
		case OP_READ:
			do_read(&op);
			break;
		case OP_MAPWRITE:
			do_mapwrite(&op);
			break;
		case OP_MAPREAD:
			do_mapread(&op);
			break;
		case OP_TRUNCATE:
			do_truncate(&op);
			break;
		case OP_FALLOCATE:
			do_fallocate(&op);
			break;
		case OP_FSYNC:
			record(&op);
			if (fsync(fd) < 0)
				fail(&op, "fsync error: %s\n",
				     strerror(errno));
			break;
		case OP_REOPEN:
			record(&op);
			if (close(fd) < 0)
				fail(&op, "close error: %s\n",
				     strerror(errno));
			do_open(0);
			break;
		case OP_KINDS:
			break;
		}
	}
	check_all();
	if (close(fd) < 0)
		fail(NULL, "close error: %s\n", strerror(errno));
	/* Once more through a fresh open: what is on the filesystem. */
	do_open(0);
	check_all();
	close(fd);
	if (!no_falloc)
		print_falloc_counts();
	printf("fsx: %lu ops ok\n", ops);
	return 0;
}
