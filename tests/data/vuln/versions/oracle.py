#!/usr/bin/python3
"""The native orderings for src/vuln/version's oracle tests, batched: one process per test.

usage: oracle.py dpkg|rpm < pairs   (one "A<TAB>B" a line)
prints one of -1, 0, 1 a line: how A orders against B.
  dpkg: apt_pkg.version_compare (Debian's python3-apt; dpkg's algorithm, spot-checked against
        `dpkg --compare-versions` by the tests);
  rpm:  rpm.ver(A) vs rpm.ver(B) (Debian's python3-rpm: librpm's own EVR parser and comparison).
Run with Debian's /usr/bin/python3, where those modules live.
"""
import sys

mode = sys.argv[1]
if mode == "dpkg":
    import apt_pkg

    apt_pkg.init_system()

    def cmp(a, b):
        return apt_pkg.version_compare(a, b)
elif mode == "rpm":
    import rpm

    def cmp(a, b):
        x, y = rpm.ver(a), rpm.ver(b)
        return (x > y) - (x < y)
else:
    sys.exit("unknown mode " + mode)

out = []
for line in sys.stdin.buffer:
    a, b = line.rstrip(b"\n").decode("utf-8").split("\t")
    r = cmp(a, b)
    out.append("-1" if r < 0 else "1" if r > 0 else "0")
sys.stdout.write("\n".join(out) + "\n")
