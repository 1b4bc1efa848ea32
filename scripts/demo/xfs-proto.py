#!/usr/bin/env python3
"""Print an mkfs.xfs protofile (xfsprogs 6.1, `mkfs.xfs -p FILE`, see mkfs.xfs(8) "-p") of a
staged directory: every inode owned by root:root; modes from MODES (lines `PATH OCTAL`, as
make-demo-fleet.sh's put() records them) or else from the staged file.

    xfs-proto.py STAGE MODES > proto

Entries are sorted by name, so the protofile is the same whatever order the staging file system
lists a directory in. The format has no sticky bit: directories that have it are listed on
stderr as `STICKY <path inside the fs> <octal mode>` for the caller to set with xfs_db.
Names the format cannot carry (spaces, ':', unprintable) are refused."""
import os
import stat
import sys


def main():
    stage, modes_file = sys.argv[1], sys.argv[2]
    modes = {}
    with open(modes_file) as f:
        for line in f:
            path, mode = line.rsplit(" ", 1)
            modes[os.path.normpath(path)] = int(mode, 8)
    out = ["/demo", "0 0"]  # boot image (unused) and the inode/block counts (ignored by mkfs)

    def mode_str(path, st):
        m = modes.get(os.path.normpath(path), stat.S_IMODE(st.st_mode))
        kind = {stat.S_IFREG: "-", stat.S_IFDIR: "d", stat.S_IFLNK: "l"}.get(stat.S_IFMT(st.st_mode))
        if kind is None:
            sys.exit(f"xfs-proto.py: {path}: only files, directories and symlinks are staged")
        return (kind + ("u" if m & stat.S_ISUID else "-") + ("g" if m & stat.S_ISGID else "-")
                + "%03o" % (m & 0o777)), m

    def walk(d, rel):
        for name in sorted(os.listdir(d)):
            p = os.path.join(d, name)
            if not name.isprintable() or " " in name or ":" in name:
                sys.exit(f"xfs-proto.py: {p}: a protofile cannot name this")
            st = os.lstat(p)
            ms, m = mode_str(p, st)
            if m & stat.S_ISVTX:
                print("STICKY", f"{rel}/{name}", "%o" % m, file=sys.stderr)
            if stat.S_ISDIR(st.st_mode):
                out.append(f"{name} {ms} 0 0")
                walk(p, f"{rel}/{name}")
                out.append("$")
            elif stat.S_ISLNK(st.st_mode):
                out.append(f"{name} {ms} 0 0 {os.readlink(p)}")
            else:
                out.append(f"{name} {ms} 0 0 {os.path.abspath(p)}")

    ms, _ = mode_str(stage, os.lstat(stage))
    out.append(f"{ms} 0 0")
    walk(stage, "")
    out.append("$")
    print("\n".join(out))


if __name__ == "__main__":
    main()
