# File operations shared by the basic and fstypes tests: file_ops runs in
# the current directory (a mount), check_ops re-reads what it left after a
# remount. Reference data lives in $TESTDIR.

file_ops()
{
	local ref=$TESTDIR/ref zero=$TESTDIR/zero

	pattern 3000000 1 >"$ref"
	head -c 1048576 /dev/zero >"$zero"

	echo "== create, write, read"
	printf 'hello\n' >a
	cat a
	st a
	t touch empty
	st empty
	echo "== append"
	echo more >>a
	cat a
	$FSOP write a O_WRONLY\|O_APPEND -1 tail
	$FSOP write a O_WRONLY\|O_APPEND 2 "|"
	cat a; echo
	echo "== overwrite in the middle"
	printf XY | dd of=a bs=1 seek=2 conv=notrunc status=none
	cat a; echo
	echo "== O_EXCL, O_TRUNC"
	$FSOP open a O_WRONLY\|O_CREAT\|O_EXCL
	$FSOP open new O_WRONLY\|O_CREAT\|O_EXCL
	echo data >new
	st new
	$FSOP open new O_WRONLY\|O_TRUNC
	st new
	echo "== large file"
	cp "$ref" big
	cmp "$ref" big && echo "big: same as written"
	st big
	echo "== truncate down, then up"
	truncate -s 5000 big
	head -c 5000 "$ref" | cmp - big && echo "big: first 5000 bytes kept"
	truncate -s 70000 big
	st big
	tail -c 65000 big | cmp - <(head -c 65000 "$zero") &&
		echo "big: grown part reads as zeros"
	echo "== sparse file"
	dd if="$ref" of=sparse bs=4096 count=1 seek=2560 status=none
	st sparse
	sync sparse
	stat -c '%n blocks=%b' sparse
	head -c 4096 sparse | cmp - <(head -c 4096 "$zero") &&
		echo "sparse: hole reads as zeros"
	tail -c 4096 sparse | cmp - <(head -c 4096 "$ref") &&
		echo "sparse: data after the hole"
	$FSOP seek sparse SEEK_DATA 0
	$FSOP seek sparse SEEK_HOLE 10485760
	echo "== write into a hole"
	dd if="$ref" of=sparse bs=4096 count=1 seek=100 conv=notrunc \
		status=none
	dd if=sparse bs=4096 skip=100 count=1 status=none |
		cmp - <(head -c 4096 "$ref") && echo "sparse: block 100 written"
	dd if=sparse bs=4096 skip=99 count=1 status=none |
		cmp - <(head -c 4096 "$zero") && echo "sparse: block 99 still a hole"
	sync sparse
	stat -c '%n blocks=%b' sparse
	echo "== unaligned writes across blocks"
	dd if="$ref" of=odd bs=1 count=10000 seek=4090 status=none
	dd if="$ref" of=odd bs=777 count=3 seek=13 conv=notrunc status=none
	sum odd
	echo "== mmap"
	$PY -c 'import mmap, os
fd = os.open("mm", os.O_RDWR | os.O_CREAT, 0o644)
os.ftruncate(fd, 8192)
m = mmap.mmap(fd, 8192)
m[4090:4100] = b"0123456789"
m.flush()
m.close()
os.close(fd)'
	$FSOP read mm 4088 14
	echo "== unlink"
	t rm new
	t rm new
	ls
}

check_ops()
{
	echo "== after remount"
	ls
	st a big sparse odd mm
	cat a; echo
	sum big sparse odd mm
}
