/*
 * racer: concurrent IO on a mounted filesystem, looking for stale data:
 * bytes of freed blocks (or of another file, or of another offset) that
 * show through a read.
 *
 *   racer fill DIR
 *	Fills the free space of DIR's filesystem (all but 4-8 MiB) with
 *	4 MiB files of a marker pattern, fsyncs them, deletes them and
 *	syncs: the free blocks now hold the marker.
 *   racer race [-n ops] [-f files] [-r readers] DIR
 *	Writer processes grow files of their own (appends, writes into
 *	holes, fallocate, truncates up and down, punched holes), one more
 *	writes a shared file while another truncates it down and up, and
 *	reader processes read all of them (buffered and O_DIRECT) until the
 *	writers are done. Every byte written is a function of file and
 *	offset with the top bit set; the marker has it clear. So each byte
 *	read must be zero or the one value its place can hold.
 *   racer scan IMAGE BLOCKSIZE
 *	Counts the blocks of IMAGE that begin with the marker.
 *
 * The writers run a fixed number of operations and print nothing but
 * counts that are zero when all is well, and how many fallocate calls of
 * each mode were done and how many refused (EOPNOTSUPP), so the output
 * repeats from run to run and a mode that stops working changes it; the
 * exit status is 1 when anything was wrong.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#define MARKER "STALE!MARKER!123"
#define MARKER_LEN 16
#define FILL_FILE (4 << 20)
#define FILE_MAX (4 << 20)
#define IO_MAX (64 << 10)
#define READ_MAX (256 << 10)
#define ALIGN 4096
#define MAX_FILES 16
#define REPORTS 8

enum { FA_ALLOC, FA_ALLOC_KEEP, FA_PUNCH, FA_ZERO, FA_MODES };

static const struct {
	int mode;
	const char *name;
} falloc_modes[FA_MODES] = {
	[FA_ALLOC] = { 0, "alloc" },
	[FA_ALLOC_KEEP] = { FALLOC_FL_KEEP_SIZE, "alloc|keep_size" },
	[FA_PUNCH] = { FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		       "punch_hole|keep_size" },
	[FA_ZERO] = { FALLOC_FL_ZERO_RANGE, "zero_range" },
};

/* Counters shared by all processes, in an anonymous shared mapping. */
struct shared {
	uint64_t stale;     /* bytes of the marker (or other non-data) read */
	uint64_t misplaced; /* data of another file or offset */
	uint64_t errors;    /* system calls that failed */
	uint64_t reports;   /* details printed so far */
	uint64_t falloc_done[FA_MODES];
	uint64_t falloc_refused[FA_MODES]; /* EOPNOTSUPP */
	int writers_left;
};

static struct shared *sh;
static const char *dir;
static int nfiles = 3;

/* xorshift64*: each process its own sequence, from its own seed. */
static uint64_t rng_state;

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

static void seed_rng(uint64_t seed)
{
	rng_state = (seed + 1) * 0x9e3779b97f4a7c15ULL;
	if (!rng_state)
		rng_state = 1;
}

/*
 * The byte that offset off of file id holds once written: byte 0 of each
 * 8-byte word names the file, bytes 1-7 the word's index, 7 bits each.
 * Every byte has its top bit set, so it is never zero nor marker text.
 */
static unsigned char data_byte(unsigned int id, uint64_t off)
{
	unsigned int i = off % 8;
	uint64_t word = off / 8;

	if (!i)
		return 0x80 | (id & 0x7f);
	return 0x80 | ((word >> (7 * (i - 1))) & 0x7f);
}

static void fill_data(unsigned char *buf, unsigned int id, uint64_t off,
		      size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		buf[i] = data_byte(id, off + i);
}

static void count_error(const char *what, const char *name)
{
	__atomic_add_fetch(&sh->errors, 1, __ATOMIC_RELAXED);
	if (__atomic_add_fetch(&sh->reports, 1, __ATOMIC_RELAXED) <= REPORTS)
		printf("racer: %s %s: %s\n", what, name, strerror(errno));
}

/* Checks len bytes read at off of file id; counts what does not belong. */
static void check(unsigned int id, const char *name, const unsigned char *buf,
		  uint64_t off, size_t len)
{
	uint64_t stale = 0, misplaced = 0, first = 0;
	unsigned char want = 0, got = 0;
	size_t i;

	for (i = 0; i < len; i++) {
		if (!buf[i] || buf[i] == data_byte(id, off + i))
			continue;
		if (!stale && !misplaced) {
			first = off + i;
			got = buf[i];
			want = data_byte(id, off + i);
		}
		if (buf[i] & 0x80)
			misplaced++;
		else
			stale++;
	}
	if (!stale && !misplaced)
		return;
	__atomic_add_fetch(&sh->stale, stale, __ATOMIC_RELAXED);
	__atomic_add_fetch(&sh->misplaced, misplaced, __ATOMIC_RELAXED);
	if (__atomic_add_fetch(&sh->reports, 1, __ATOMIC_RELAXED) <= REPORTS)
		printf("racer: %s: %" PRIu64 " stale and %" PRIu64
		       " misplaced bytes in a read of %zu at %" PRIu64
		       "; at %" PRIu64 ": 0x%02x, not 0 or 0x%02x\n", name,
		       stale, misplaced, len, off, first, got, want);
}

static void file_name(char *buf, size_t size, unsigned int id)
{
	if (id == (unsigned int)nfiles)
		snprintf(buf, size, "%s/shared", dir);
	else
		snprintf(buf, size, "%s/file%u", dir, id);
}

static int write_all(int fd, const unsigned char *buf, size_t len,
		     uint64_t off)
{
	ssize_t n;

	while (len) {
		n = pwrite(fd, buf, len, off);
		if (n <= 0)
			return -1;
		buf += n;
		len -= n;
		off += n;
	}
	return 0;
}

static int do_fill(void)
{
	unsigned char *buf = malloc(FILL_FILE);
	char name[PATH_MAX];
	struct statvfs sv;
	uint64_t avail;
	int n = 0, i, fd;

	if (!buf || statvfs(dir, &sv) < 0) {
		perror("racer: fill");
		return 1;
	}
	for (i = 0; i < FILL_FILE; i++)
		buf[i] = MARKER[i % MARKER_LEN];
	avail = (uint64_t)sv.f_bavail * sv.f_frsize;
	for (; avail > (8 << 20); avail -= FILL_FILE, n++) {
		snprintf(name, sizeof(name), "%s/marker%d", dir, n);
		fd = open(name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0 || write_all(fd, buf, FILL_FILE, 0) < 0 ||
		    fsync(fd) < 0 || close(fd) < 0) {
			printf("racer: fill %s: %s\n", name, strerror(errno));
			return 1;
		}
	}
	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "%s/marker%d", dir, i);
		if (unlink(name) < 0) {
			printf("racer: unlink %s: %s\n", name, strerror(errno));
			return 1;
		}
	}
	/* The kernel's ext4 reuses freed blocks only once committed. */
	fd = open(dir, O_RDONLY | O_DIRECTORY);
	if (fd < 0 || syncfs(fd) < 0) {
		printf("racer: syncfs %s: %s\n", dir, strerror(errno));
		return 1;
	}
	close(fd);
	free(buf);
	printf("racer: free space filled with the marker, then freed\n");
	return 0;
}


/*
 * fallocate(2) in mode falloc_modes[m], counted as done or refused; a
 * mode the filesystem does not support is no error. Returns 0 if done.
 */
static int counted_fallocate(int fd, const char *name, int m, uint64_t off,
			     uint64_t len)
{
	if (fallocate(fd, falloc_modes[m].mode, off, len) < 0) {
		if (errno == EOPNOTSUPP)
			__atomic_add_fetch(&sh->falloc_refused[m], 1,
					   __ATOMIC_RELAXED);
		else
			count_error(falloc_modes[m].name, name);
		return -1;
	}
	__atomic_add_fetch(&sh->falloc_done[m], 1, __ATOMIC_RELAXED);
	return 0;
}

/* fallocate in a random mode; returns the size the file has afterwards. */
static uint64_t random_fallocate(int fd, const char *name, uint64_t size)
{
	int m = rnd_below(FA_MODES), mode = falloc_modes[m].mode;
	uint64_t off = rnd_below(size + IO_MAX), len = rnd_below(IO_MAX) + 1;

	if (off + len > FILE_MAX)
		return size;
	if (counted_fallocate(fd, name, m, off, len) < 0)
		return size;
	if (!(mode & FALLOC_FL_KEEP_SIZE) && off + len > size)
		size = off + len;
	return size;
}

/* A writer's file: opened twice, the second time for O_DIRECT. */
struct wfile {
	char name[PATH_MAX];
	unsigned int id;
	int fd;
	int dfd; /* -1 where O_DIRECT is refused */
	unsigned char *buf;
};

static int wfile_open(struct wfile *w, unsigned int id)
{
	w->id = id;
	file_name(w->name, sizeof(w->name), id);
	w->buf = mmap(NULL, IO_MAX + 2 * ALIGN, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	w->fd = open(w->name, O_RDWR);
	w->dfd = open(w->name, O_RDWR | O_DIRECT);
	if (w->buf == MAP_FAILED || w->fd < 0) {
		count_error("open", w->name);
		return -1;
	}
	return 0;
}

static void wfile_close(struct wfile *w)
{
	close(w->fd);
	if (w->dfd >= 0)
		close(w->dfd);
	munmap(w->buf, IO_MAX + 2 * ALIGN);
}

/*
 * Writes the file's data at [off, off + len), a quarter of the time with
 * O_DIRECT over the whole pages around it, which reaches the server at
 * once. Returns the end of what was written, or 0 on failure.
 */
static uint64_t write_data(struct wfile *w, uint64_t off, uint64_t len)
{
	int fd = w->fd;

	if (w->dfd >= 0 && !rnd_below(4)) {
		len = (off + len + ALIGN - 1) & ~(uint64_t)(ALIGN - 1);
		off &= ~(uint64_t)(ALIGN - 1);
		len -= off;
		fd = w->dfd;
	}
	fill_data(w->buf, w->id, off, len);
	if (write_all(fd, w->buf, len, off) < 0) {
		count_error(fd == w->fd ? "write" : "direct write", w->name);
		return 0;
	}
	return off + len;
}

/* Grows (and now and then shrinks) a file of its own. */
static void private_writer(unsigned int id, unsigned long ops)
{
	uint64_t size = 0, off, len, end;
	struct wfile w;
	unsigned long i;

	if (wfile_open(&w, id) < 0)
		return;
	seed_rng(id);
	for (i = 0; i < ops; i++) {
		unsigned int r = rnd_below(100);

		len = rnd_below(IO_MAX) + 1;
		if (r < 30) {
			/* append */
			off = size;
		} else if (r < 55) {
			/* into a hole or over data, maybe past EOF */
			off = rnd_below(size + IO_MAX);
		} else if (r < 70) {
			size = random_fallocate(w.fd, w.name, size);
			continue;
		} else if (r < 80) {
			off = size + rnd_below(IO_MAX);
			if (off > FILE_MAX)
				continue;
			if (ftruncate(w.fd, off) == 0)
				size = off;
			else
				count_error("truncate up", w.name);
			continue;
		} else if (r < 90) {
			off = rnd_below(size + 1);
			if (ftruncate(w.fd, off) == 0)
				size = off;
			else
				count_error("truncate down", w.name);
			continue;
		} else {
			if (fsync(w.fd) < 0)
				count_error("fsync", w.name);
			continue;
		}
		if (off + len > FILE_MAX) {
			/* Full: start over smaller, freeing blocks. */
			off = rnd_below(FILE_MAX / 2);
			if (ftruncate(w.fd, off) == 0)
				size = off;
			else
				count_error("truncate down", w.name);
			continue;
		}
		end = write_data(&w, off, len);
		if (end > size)
			size = end;
	}
	wfile_close(&w);
}

/* Writes the shared file anywhere below FILE_MAX. */
static void shared_writer(unsigned long ops)
{
	uint64_t off, len;
	struct wfile w;
	unsigned long i;

	if (wfile_open(&w, nfiles) < 0)
		return;
	seed_rng(100);
	for (i = 0; i < ops; i++) {
		len = rnd_below(IO_MAX) + 1;
		off = rnd_below(FILE_MAX - len);
		write_data(&w, off, len);
		if (!rnd_below(10) && fsync(w.fd) < 0)
			count_error("fsync", w.name);
	}
	wfile_close(&w);
}

/* Truncates the shared file down and up again, punches holes in it. */
static void truncater(unsigned long ops)
{
	char name[PATH_MAX];
	uint64_t size;
	unsigned long i;
	int fd;

	file_name(name, sizeof(name), nfiles);
	fd = open(name, O_RDWR);
	if (fd < 0) {
		count_error("open", name);
		return;
	}
	seed_rng(200);
	for (i = 0; i < ops; i++) {
		size = rnd_below(FILE_MAX);
		switch (rnd_below(4)) {
		case 0:
			counted_fallocate(fd, name, FA_PUNCH, size,
					  rnd_below(IO_MAX) + 1);
			break;
		case 1:
			/* Down within a block, and up again over it. */
			if (ftruncate(fd, size) < 0 ||
			    ftruncate(fd, size + rnd_below(ALIGN) + 1) < 0)
				count_error("truncate", name);
			break;
		default:
			if (ftruncate(fd, size) < 0)
				count_error("truncate", name);
			break;
		}
	}
	close(fd);
}

/* One read of file id, buffered or O_DIRECT, checked. */
static void read_once(unsigned int id, unsigned char *buf, int direct)
{
	char name[PATH_MAX];
	uint64_t off, len;
	struct stat st;
	ssize_t n;
	int fd;

	file_name(name, sizeof(name), id);
	fd = open(name, O_RDONLY | (direct ? O_DIRECT : 0));
	if (fd < 0) {
		count_error("open", name);
		return;
	}
	if (fstat(fd, &st) < 0) {
		count_error("fstat", name);
		close(fd);
		return;
	}
	off = rnd_below(st.st_size + ALIGN);
	len = rnd_below(READ_MAX) + 1;
	if (direct) {
		off &= ~(uint64_t)(ALIGN - 1);
		len = (len + ALIGN - 1) & ~(uint64_t)(ALIGN - 1);
	}
	n = pread(fd, buf, len, off);
	if (n < 0)
		count_error(direct ? "direct read" : "read", name);
	else
		check(id, name, buf, off, n);
	close(fd);
}

static void reader(unsigned int num)
{
	unsigned char *buf;
	unsigned long reads = 0;

	buf = mmap(NULL, READ_MAX, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED) {
		count_error("mmap", "buffer");
		return;
	}
	seed_rng(300 + num);
	/* At least some reads even if the writers are quick. */
	while (__atomic_load_n(&sh->writers_left, __ATOMIC_RELAXED) > 0 ||
	       reads < 50) {
		read_once(rnd_below(nfiles + 1), buf, rnd_below(2));
		reads++;
	}
	munmap(buf, READ_MAX);
}

/* After the race: every file read whole, both ways. */
static void final_check(void)
{
	unsigned char *buf;
	char name[PATH_MAX];
	uint64_t off;
	ssize_t n;
	int id, direct, fd;

	buf = mmap(NULL, READ_MAX, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED) {
		count_error("mmap", "buffer");
		return;
	}
	for (id = 0; id <= nfiles; id++) {
		for (direct = 0; direct < 2; direct++) {
			file_name(name, sizeof(name), id);
			fd = open(name, O_RDONLY | (direct ? O_DIRECT : 0));
			if (fd < 0) {
				count_error("open", name);
				continue;
			}
			for (off = 0;; off += n) {
				n = pread(fd, buf, READ_MAX, off);
				if (n <= 0)
					break;
				check(id, name, buf, off, n);
			}
			if (n < 0)
				count_error("read", name);
			close(fd);
		}
	}
	munmap(buf, READ_MAX);
}

/* Starts fn(arg, ops) in a child process. */
static pid_t start(void (*fn)(unsigned int, unsigned long), unsigned int arg,
		   unsigned long ops)
{
	pid_t pid = fork();

	if (pid < 0) {
		perror("racer: fork");
		exit(1);
	}
	if (!pid) {
		fn(arg, ops);
		fflush(stdout);
		_exit(0);
	}
	return pid;
}

static void writer_entry(unsigned int id, unsigned long ops)
{
	if (id < (unsigned int)nfiles)
		private_writer(id, ops);
	else if (id == (unsigned int)nfiles)
		shared_writer(ops);
	else
		truncater(ops);
	__atomic_sub_fetch(&sh->writers_left, 1, __ATOMIC_RELAXED);
}

static void reader_entry(unsigned int num, unsigned long ops)
{
	(void)ops;
	reader(num);
}

static int do_race(unsigned long ops, int readers)
{
	pid_t pids[2 * MAX_FILES + 2];
	char name[PATH_MAX];
	int i, n = 0, fd, status, bad = 0;

	for (i = 0; i <= nfiles; i++) {
		file_name(name, sizeof(name), i);
		fd = open(name, O_RDWR | O_CREAT | O_TRUNC, 0644);
		if (fd < 0) {
			printf("racer: create %s: %s\n", name, strerror(errno));
			return 1;
		}
		close(fd);
	}
	fflush(stdout);
	sh->writers_left = nfiles + 2;
	for (i = 0; i < nfiles + 2; i++)
		pids[n++] = start(writer_entry, i, ops);
	for (i = 0; i < readers; i++)
		pids[n++] = start(reader_entry, i, 0);
	for (i = 0; i < n; i++) {
		if (waitpid(pids[i], &status, 0) < 0 || !WIFEXITED(status) ||
		    WEXITSTATUS(status))
			bad++;
	}
	final_check();
	printf("racer: %d writers x %lu ops, %d readers\n", nfiles + 2, ops,
	       readers);
	printf("stale bytes seen: %" PRIu64 "\n", sh->stale);
	printf("misplaced bytes seen: %" PRIu64 "\n", sh->misplaced);
	printf("failed calls: %" PRIu64 "\n", sh->errors);
	printf("fallocate done/refused:");
	for (i = 0; i < FA_MODES; i++)
		printf("%s %s %" PRIu64 "/%" PRIu64, i ? "," : "",
		       falloc_modes[i].name, sh->falloc_done[i],
		       sh->falloc_refused[i]);
	printf("\n");
	if (bad)
		printf("processes that died: %d\n", bad);
	return sh->stale || sh->misplaced || sh->errors || bad;
}

static int do_scan(const char *image, unsigned long bs)
{
	unsigned char *buf;
	uint64_t count = 0;
	ssize_t n, i;
	int fd;

	buf = malloc(1 << 20);
	fd = open(image, O_RDONLY);
	if (!buf || fd < 0 || !bs || (1 << 20) % bs) {
		printf("racer: scan %s: %s\n", image,
		       fd < 0 ? strerror(errno) : "bad block size");
		return 1;
	}
	while ((n = read(fd, buf, 1 << 20)) > 0) {
		for (i = 0; i + MARKER_LEN <= n; i += bs)
			count += !memcmp(buf + i, MARKER, MARKER_LEN);
	}
	close(fd);
	free(buf);
	printf("%" PRIu64 "\n", count);
	return n < 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: racer fill DIR\n"
			"       racer race [-n ops] [-f files] [-r readers] DIR\n"
			"       racer scan IMAGE BLOCKSIZE\n");
	exit(2);
}

static unsigned long number(const char *s, unsigned long max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno || end == s || *end || !v || v > max)
		usage();
	return v;
}

int main(int argc, char **argv)
{
	unsigned long ops = 300;
	int opt, readers = 2;
	const char *cmd;

	if (argc < 2)
		usage();
	cmd = argv[1];
	optind = 2;
	while ((opt = getopt(argc, argv, "n:f:r:")) != -1) {
		switch (opt) {
		case 'n':
			ops = number(optarg, ULONG_MAX);
			break;
		case 'f':
			nfiles = number(optarg, MAX_FILES);
			break;
		case 'r':
			readers = number(optarg, MAX_FILES);
			break;
		default:
			usage();
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(cmd, "scan")) {
		if (optind != argc - 2)
			usage();
		return do_scan(argv[optind], number(argv[optind + 1], 65536));
	}
	if (optind != argc - 1)
		usage();
	dir = argv[optind];
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		perror("racer: mmap");
		return 1;
	}
	if (!strcmp(cmd, "fill"))
		return do_fill();
	if (!strcmp(cmd, "race"))
		return do_race(ops, readers);
	usage();
	return 2;
}
