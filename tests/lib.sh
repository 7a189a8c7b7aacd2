# Shared helpers for the mount tests, sourced by every tests/<name>/script:
# images, mounting through the server under test (or the kernel's ext4),
# unmounting until the server has let go of the image, e2fsck, and running
# one snippet on our mount and on a kernel mount of the same image.
#
# Environment (set by tests/run-tests): SERVER (path of the binary under
# test, or "kernel" for a loop mount), SERVER_NAME, TESTDIR (scratch dir),
# SRCDIR, BUILDDIR, FUSE2FS, FUSE4FS, EXTRA_MOUNT_OPTS.

SERVER=${SERVER:-kernel}
SERVER_NAME=${SERVER_NAME:-$(basename "$SERVER")}
EXTRA_MOUNT_OPTS=${EXTRA_MOUNT_OPTS:-}
TESTDIR=${TESTDIR:-$PWD}
if [ -x /usr/bin/python3 ]; then
	PY=/usr/bin/python3
else
	PY=python3
fi
FSOP="$PY $SRCDIR/tests/fsop.py"
NOBODY_UID=$(id -u nobody 2>/dev/null || echo 65534)
NOBODY_GID=$(id -g nobody 2>/dev/null || echo 65534)
# Fixed identity so that hash order and checksums repeat from run to run.
IMG_UUID=6f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9
IMG_HASH_SEED=0b9d8c7e-6f5a-4b3c-9d2e-1f0a9b8c7d6e

export LC_ALL=C TZ=UTC
. "$SRCDIR/tests/filter.sh"

# Ends the test as skipped; the runner prints the reason.
skip()
{
	echo "$*" >"$TESTDIR/.skip"
	exit 77
}

# Skips unless every named command exists.
need_cmd()
{
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || skip "$c not installed"
	done
}

# Skips when the server under test is the kernel (FUSE-only tests).
fuse_only()
{
	[ "$SERVER" != kernel ] || skip "tests the FUSE server itself"
}

is_mounted()
{
	awk -v d="$1" '$2 == d { f = 1 } END { exit !f }' /proc/mounts
}

# Absolute path of an image: relative names live in $TESTDIR.
imgpath()
{
	case $1 in
	/*) echo "$1" ;;
	*) echo "$TESTDIR/$1" ;;
	esac
}

# mkimg IMG SIZE [mke2fs options]: a fresh filesystem (ext4 and 4k blocks
# unless the options say otherwise) in a sparse file.
mkimg()
{
	local img size out t="-t ext4" b="-b 4096" a
	img=$(imgpath "$1")
	size=$2
	shift 2
	for a in "$@"; do
		case $a in
		-t) t= ;;
		-b) b= ;;
		esac
	done
	rm -f "$img"
	truncate -s "$size" "$img"
	# shellcheck disable=SC2086
	if ! out=$(mke2fs -q -F $t $b -U "$IMG_UUID" -E "hash_seed=$IMG_HASH_SEED" \
		"$@" "$img" 2>&1); then
		echo "mkimg: mke2fs $* failed: $out"
		exit 1
	fi
}

# A mount point of its own: $MNTBASE/NAME ($TESTDIR unless moved by
# nobody_mounts).
MNTBASE=$TESTDIR
mntdir()
{
	local d="$MNTBASE/$1"
	mkdir -p "$d"
	echo "$d"
}

# For tests that act as nobody: mount points that nobody can reach. When
# the scratch dir's parents are closed to others, they go to a fresh
# directory in /tmp, removed again by the EXIT trap (and the runner).
nobody_mounts()
{
	as_nobody test -x "$TESTDIR" && return 0
	MNTBASE=$(mktemp -d /tmp/fuse-tests.XXXXXX)
	chmod 755 "$MNTBASE"
	echo "$MNTBASE" >"$TESTDIR/.mntbase"
}

# Options the kernel's ext4 does not know: dropped for kernel mounts.
kernel_opts()
{
	local o out="" IFS=,
	for o in $1; do
		case $o in
		allow_other | default_permissions | fakeroot | cache_size=* | \
			iomap=* | debug | fuse2fs_debug) ;;
		*) out=${out:+$out,}$o ;;
		esac
	done
	echo "$out"
}

# Files (image + mount point) in use, for the EXIT trap and the runner.
record_mount()
{
	echo "$1 $2" >>"$TESTDIR/.mounts"
}

mount_image()
{
	awk -v d="$1" '$1 == d { i = $2 } END { print i }' "$TESTDIR/.mounts" \
		2>/dev/null
}

# Processes that have the image open: the FUSE server, once mounted.
image_users()
{
	local f
	f=$(readlink -f "$1")
	find /proc/[0-9]*/fd -maxdepth 1 -lname "$f" 2>/dev/null |
		cut -d/ -f3 | sort -u
}

wait_mounted()
{
	local i
	for i in $(seq 100); do
		is_mounted "$1" && return 0
		sleep 0.1
	done
	return 1
}

# kmount IMG DIR [OPTS]: the kernel's ext4 on a loop device.
kmount()
{
	local img dir out o
	img=$(imgpath "$1")
	dir=$2
	o=$(kernel_opts "${3:-}")
	record_mount "$dir" "$img"
	if ! out=$(mount -t ext4 -o "loop${o:+,$o}" "$img" "$dir" 2>&1); then
		echo "kmount: mount failed: $out"
		exit 1
	fi
}

kumount()
{
	local out
	if ! out=$(umount "$1" 2>&1); then
		echo "kumount: $out"
		return 1
	fi
}

# do_mount IMG DIR [OPTS]: mounts through $SERVER with OPTS and
# $EXTRA_MOUNT_OPTS and waits (up to 60 s) for the mount to show in
# /proc/mounts. Exits the test on failure: nothing may run on an
# unmounted directory. The server runs in the foreground (-f), in the
# background of the test, with its stdout and stderr in a log of its own:
# a daemon sends them to /dev/null, and with them its error messages and
# sanitizer reports. do_umount looks at the log (server_check).
do_mount()
{
	local img dir o log pid rc i
	if [ "$SERVER" = kernel ]; then
		kmount "$@"
		return
	fi
	img=$(imgpath "$1")
	dir=$2
	o=${3:-}
	[ -n "$EXTRA_MOUNT_OPTS" ] && o=${o:+$o,}$EXTRA_MOUNT_OPTS
	record_mount "$dir" "$img"
	log=$(mktemp "$TESTDIR/.server.XXXXXX")
	"$SERVER" "$img" "$dir" -f ${o:+-o "$o"} </dev/null >"$log" 2>&1 &
	pid=$!
	printf '%s\t%s\t%s\n' "$pid" "$log" "$dir" >>"$TESTDIR/.servers"
	for i in $(seq 600); do
		is_mounted "$dir" && return 0
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill "$pid"
		echo "do_mount: $SERVER_NAME${o:+ -o $o} not mounted after 60 s: $(cat "$log")"
	else
		wait "$pid"
		rc=$?
		echo "do_mount: $SERVER_NAME${o:+ -o $o} failed (exit $rc): $(cat "$log")"
	fi
	exit 1
}

# server_may_say ERE: lines of the servers' output that this test expects
# (a refusal it provokes, say), left out by server_check.
SERVER_MAY_SAY=
server_may_say()
{
	SERVER_MAY_SAY=$1
}

# server_check [DIR]: for every server started by do_mount that has ended
# (the one of DIR, just unmounted, is waited for up to 60 s), what it
# printed that the test did not expect, as "server: LINE" lines, and a
# non-zero exit status; a sanitizer report in full. The output of a server
# still running is looked at by a later call, once it has ended.
server_check()
{
	local pid log dir rc i left=
	[ -f "$TESTDIR/.servers" ] || return 0
	while IFS=$'\t' read -r pid log dir; do
		if [ "$dir" = "${1:-}" ]; then
			for i in $(seq 600); do
				kill -0 "$pid" 2>/dev/null || break
				sleep 0.1
			done
		fi
		if kill -0 "$pid" 2>/dev/null; then
			[ "$dir" != "${1:-}" ] ||
				echo "server: $SERVER_NAME still running 60 s after unmount"
			left="$left$pid	$log	$dir
"
			continue
		fi
		# The status of a server started in a subshell, no child of
		# ours, is lost (127).
		wait "$pid" 2>/dev/null
		rc=$?
		[ $rc = 0 ] || [ $rc = 127 ] ||
			echo "server: $SERVER_NAME exited with status $rc"
		if grep -qE 'Sanitizer|runtime error:' "$log"; then
			echo "server: sanitizer report:"
			sed 's/^/server: /' "$log"
		elif [ -n "$SERVER_MAY_SAY" ]; then
			grep -vE "$SERVER_MAY_SAY" "$log" | sed 's/^/server: /'
		else
			sed 's/^/server: /' "$log"
		fi
		rm -f "$log"
	done <"$TESTDIR/.servers"
	printf '%s' "$left" >"$TESTDIR/.servers"
}

# Waits up to 60 s for every process holding IMG to go away, so that
# nothing writes it after we look at it.
wait_released()
{
	local i
	for i in $(seq 600); do
		[ -z "$(image_users "$1")" ] && return 0
		sleep 0.1
	done
	echo "umount: $SERVER_NAME still holds the image 60 s after unmount"
	return 1
}

# do_umount DIR: unmounts, waits until the server has exited and prints
# what it said (server_check).
do_umount()
{
	local dir=$1 img out
	if [ "$SERVER" = kernel ]; then
		kumount "$dir"
		return
	fi
	img=$(mount_image "$dir")
	if ! out=$(fusermount3 -u "$dir" 2>&1); then
		echo "do_umount: $out"
		return 1
	fi
	[ -z "$img" ] || wait_released "$img" || return 1
	server_check "$dir"
}

# Forced cleanup of whatever is still mounted (EXIT trap). FUSE mounts are
# detached lazily: a plain unmount could wait forever on a hung server.
umount_all()
{
	local dir img
	# A second signal must not cut the cleanup short.
	trap '' INT TERM
	[ -f "$TESTDIR/.mounts" ] || return 0
	cd / || true
	while read -r dir img; do
		is_mounted "$dir" || continue
		if awk -v d="$dir" '$2 == d && $3 ~ /^fuse/ { f = 1 } END { exit !f }' \
			/proc/mounts; then
			fusermount3 -u -z "$dir" 2>/dev/null
		else
			umount "$dir" 2>/dev/null || umount -l "$dir" 2>/dev/null
		fi
	done <"$TESTDIR/.mounts"
	if [ -f "$TESTDIR/.mntbase" ]; then
		rm -rf --one-file-system "$(cat "$TESTDIR/.mntbase")"
	fi
}

# e2fsck -fn's lines beyond what a clean check prints: the banner, the
# headers of passes 1 to 5, the summary, blank lines, and the offer to make
# an extent tree shallower, which e2fsck marks as no fix (the kernel leaves
# such trees behind as well). It exits 0 for some faults, wrong free counts
# among them, so its words count, not only its status.
fsck_extra()
{
	grep -Ev '^(|e2fsck [0-9].*|Pass [1-5]: .*|.*: [0-9]+/[0-9]+ files \([0-9.]+% non-contiguous\), [0-9]+/[0-9]+ blocks|Inode [0-9]+ extent tree \(at level [0-9]+\) could be (shorter|narrower)\.  Optimize\? no)$'
}

# fsck_clean IMG: "fsck: clean", or what is wrong: e2fsck's status and
# complaint in full, a superblock state other than "clean" (a server that
# died before closing the filesystem) and errors it records (the core
# records the corruption it meets there).
fsck_clean()
{
	local img out rc sb state errors
	img=$(imgpath "$1")
	out=$(e2fsck -fn "$img" 2>&1)
	rc=$?
	sb=$(dumpe2fs -h "$img" 2>/dev/null)
	state=$(printf '%s\n' "$sb" | sed -n 's/^Filesystem state: *//p')
	errors=$(printf '%s\n' "$sb" | sed -n 's/^FS Error count: *//p')
	if [ $rc -eq 0 ] && [ -z "$(printf '%s\n' "$out" | fsck_extra)" ] &&
		[ "$state" = clean ] && [ "${errors:-0}" = 0 ]; then
		echo "fsck: clean"
		return 0
	fi
	echo "fsck: exit $rc, state ${state:-unknown}, ${errors:-0} error(s) recorded"
	echo "$out" | grep -v '^e2fsck [0-9]'
	return 1
}

# Unmounts and checks the image: how every mount test ends.
finish()
{
	do_umount "$2"
	fsck_clean "$1"
}

# t CMD...: runs CMD and prints "CMD: ok" or "CMD: <error text>" (the last
# part of the command's message, without the program and file names).
t()
{
	local out
	if out=$("$@" 2>&1); then
		echo "$*: ok"
	else
		out=$(printf '%s\n' "$out" | tail -n 1)
		echo "$*: ${out##*: }"
	fi
}

# The same as another user.
as_nobody()
{
	setpriv --reuid="$NOBODY_UID" --regid="$NOBODY_GID" --clear-groups "$@"
}

tn()
{
	local out
	if out=$(as_nobody "$@" 2>&1); then
		echo "nobody: $*: ok"
	else
		out=$(printf '%s\n' "$out" | tail -n 1)
		echo "nobody: $*: ${out##*: }"
	fi
}

# st PATH...: type, mode, link count, owner and size; no inode numbers or
# times. Directory sizes are left out: they depend on block allocation.
st()
{
	stat -c '%n %F %A %h %u:%g %s' "$@" |
		awk '$2 == "directory" { $NF = "-" } { print }'
}

# File data as a checksum (short and stable).
sum()
{
	md5sum "$@"
}

# pattern SIZE SEED: SIZE bytes of repeatable pseudo-random data. Like any
# other command it dies quietly when its reader stops early (head -c).
pattern()
{
	$PY -c 'import random, signal, sys
signal.signal(signal.SIGPIPE, signal.SIG_DFL)
random.seed(int(sys.argv[2]))
sys.stdout.buffer.write(random.randbytes(int(sys.argv[1])))' "$1" "$2"
}

# debugfs on an unmounted image, without its banner.
dbg()
{
	local img
	img=$(imgpath "$1")
	shift
	debugfs -R "$*" "$img" 2>&1 | grep -v '^debugfs [0-9]'
}

# disk_links IMG PATH: the link count on disk, as e2fsck will see it.
disk_links()
{
	echo "disk: $2 links $(dbg "$1" "stat $2" |
		sed -n 's/.*Links: *\([0-9]*\).*/\1/p')"
}

# disk_indexed IMG DIR: whether DIR has an htree index (EXT2_INDEX_FL).
disk_indexed()
{
	local flags
	flags=$(dbg "$1" "stat $2" | sed -n 's/.*Flags: \(0x[0-9a-f]*\).*/\1/p')
	if [ $((${flags:-0} & 0x1000)) != 0 ]; then
		echo "disk: $2 is indexed"
	else
		echo "disk: $2 is not indexed"
	fi
}

# disk_dotdot IMG DIR: whether DIR's ".." entry on disk names its parent.
disk_dotdot()
{
	local dd parent
	dd=$(dbg "$1" "ls -l $2" | awk '$NF == ".." { print $1 }')
	parent=$(dbg "$1" "ls -l $(dirname "$2")" | awk '$NF == "." { print $1 }')
	if [ -n "$dd" ] && [ "$dd" = "$parent" ]; then
		echo "disk: $2/.. is $(dirname "$2")"
	else
		echo "disk: $2/.. is inode $dd, parent is inode $parent"
	fi
}

# cmp_kernel LABEL IMG SNIPPET [OPTS]: runs SNIPPET (bash, in the mount
# dir, lib.sh loaded) on a mount of IMG through $SERVER and on a kernel
# mount of a copy; prints "LABEL: same as kernel" or the diff (kernel first).
# Both images are checked with e2fsck afterwards.
cmp_kernel()
{
	local label=$1 img snippet=$3 opts=${4:-} kimg fdir kdir
	img=$(imgpath "$2")
	kimg=$img.kernel
	cp --sparse=always "$img" "$kimg"
	fdir=$(mntdir "cmp.server")
	kdir=$(mntdir "cmp.kernel")
	do_mount "$img" "$fdir" "$opts"
	kmount "$kimg" "$kdir" "$opts"
	run_snippet "$fdir" "$snippet" >"$TESTDIR/$label.server" 2>&1
	run_snippet "$kdir" "$snippet" >"$TESTDIR/$label.kernel" 2>&1
	do_umount "$fdir"
	kumount "$kdir"
	if diff -u "$TESTDIR/$label.kernel" "$TESTDIR/$label.server" \
		>"$TESTDIR/$label.diff"; then
		echo "$label: same as kernel"
	else
		echo "$label: differs from kernel:"
		tail -n +3 "$TESTDIR/$label.diff"
	fi
	fsck_clean "$img"
	[ "$(fsck_clean "$kimg")" = "fsck: clean" ] ||
		echo "$label: kernel image not clean"
}

run_snippet()
{
	(cd "$1" && LIB_NO_TRAP=1 MNT=$1 bash -c ". '$SRCDIR/tests/lib.sh'
$2") 2>&1 | filter_paths "$1=MNT"
}

if [ -z "${LIB_NO_TRAP:-}" ]; then
	: >"$TESTDIR/.mounts"
	trap umount_all EXIT
fi
