# The output filter of the test suite, sourced by tests/run-tests (scratch,
# build, source and server paths) and tests/lib.sh (mount points of
# run_snippet): paths replaced by fixed names so that the output of a test
# does not depend on where the tree and its scratch dirs are.

# filter_paths PATH=NAME...: copies stdin to stdout with each PATH replaced
# by its NAME. PATHs are literal strings, not patterns (a "." or "[" in a
# directory name is just that), and match only as a whole path: not after
# a character of a name or a "/", and not before a character of a name,
# so that /src does not match in /srcdir, /a/src or a file named "/src"
# on the image, "/src links 2"; a PATH that ends in "/" is replaced only
# where something under it is named. The longest PATH wins where two
# match at the same place (the server binary in the build dir, the scratch
# dir in it), the first given of equal ones, and no replaced text is
# looked at again.
filter_paths()
{
	awk '
	function namechar(c)
	{
		return c != "" && index(NAMECHARS, c) > 0
	}
	# Where PATH i first matches as a whole path in s (whose text is
	# preceded by the character before), or 0.
	function find(s, before, i,    from, k, pos, prev, next_c)
	{
		from = 1
		while ((k = index(substr(s, from), path[i])) > 0) {
			pos = from + k - 1
			prev = pos > 1 ? substr(s, pos - 1, 1) : before
			next_c = substr(s, pos + length(path[i]), 1)
			if (!namechar(prev) && prev != "/" &&
			    (substr(path[i], length(path[i])) == "/" ||
			     !namechar(next_c)))
				return pos
			from = pos + 1
		}
		return 0
	}
	BEGIN {
		NAMECHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-+~"
		n = 0
		for (a = 1; a < ARGC; a++) {
			eq = 0
			for (k = length(ARGV[a]); k > 0; k--)
				if (substr(ARGV[a], k, 1) == "=") {
					eq = k
					break
				}
			if (eq > 1) {
				n++
				path[n] = substr(ARGV[a], 1, eq - 1)
				name[n] = substr(ARGV[a], eq + 1)
			}
			delete ARGV[a]
		}
		# Longest first; a stable sort keeps equal ones in order.
		for (a = 2; a <= n; a++)
			for (k = a; k > 1 && length(path[k]) > length(path[k - 1]); k--) {
				t = path[k]; path[k] = path[k - 1]; path[k - 1] = t
				t = name[k]; name[k] = name[k - 1]; name[k - 1] = t
			}
	}
	{
		out = ""
		rest = $0
		before = ""
		while (rest != "") {
			best = 0
			for (i = 1; i <= n; i++) {
				pos = find(rest, before, i)
				if (pos && (!best || pos < bpos)) {
					best = i
					bpos = pos
				}
			}
			if (!best) {
				out = out rest
				break
			}
			out = out substr(rest, 1, bpos - 1) name[best]
			before = substr(path[best], length(path[best]), 1)
			rest = substr(rest, bpos + length(path[best]))
		}
		print out
	}' "$@"
}

# filter_output TESTDIR BUILDDIR SRCDIR [SERVER]: the runner's filter of a
# mount test's output. The scratch dir and the server binary are replaced
# wherever they stand; the build and source dirs only where a file under
# them is named, since a short one (/src) is also a name a test may print.
# In a build in the source tree a file there is SRCDIR/...
filter_output()
{
	filter_paths "$1=TESTDIR" ${4:+"$4=SERVER"} "$3/=SRCDIR/" "$2/=BUILDDIR/"
}
