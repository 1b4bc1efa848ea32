#!/usr/bin/env python3
"""Build a Trivy vulnerability database (schema 2, bbolt) from Alpine secdb YAML files, so that
Trivy can scan offline as an independent oracle for our matcher.

Usage: mk_trivy_db.py CACHE_DIR SECDB.yaml...
Writes CACHE_DIR/db/trivy.db and CACHE_DIR/db/metadata.json; then
  trivy rootfs --cache-dir CACHE_DIR --skip-db-update --offline-scan --scanners vuln ROOT

Needs PyPI boltdb==0.0.2 and PyYAML. Layout (trivy-db): bucket "alpine <MAJOR.MINOR>" → bucket
<origin package> → key <CVE id> → {"FixedVersion": ...}; bucket "vulnerability" → <CVE id> → {};
bucket "data-source" → "alpine <MAJOR.MINOR>" → the source. As trivy-db's Alpine importer does,
each secfixes entry is split on whitespace, "CVE_" reads "CVE-", and ids not starting with "CVE-"
are dropped. boltdb 0.0.2 writes a zero meta checksum; bbolt checks it, so it is patched here
(FNV-1a 64 over the 56 meta bytes before the checksum field, in both meta pages).
"""
import json
import os
import struct
import sys

import boltdb
import yaml

PAGE = 4096


def fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def patch_checksums(path: str) -> None:
    with open(path, "r+b") as f:
        for page in range(2):
            # page header is 16 bytes (id u64, flags u16, count u16, overflow u32)
            off = page * PAGE + 16
            f.seek(off)
            meta = f.read(64)
            s = fnv1a64(meta[:56])
            f.seek(off + 56)
            f.write(struct.pack("<Q", s))


def main() -> None:
    cache, files = sys.argv[1], sys.argv[2:]
    advisories = {}  # platform -> pkg -> cve -> fixed
    for path in files:
        doc = yaml.safe_load(open(path))
        platform = "alpine " + doc["distroversion"].lstrip("v")
        for entry in doc.get("packages") or []:
            pkg = entry["pkg"]
            for fixed, ids in (pkg.get("secfixes") or {}).items():
                for raw in ids or []:
                    for cve in str(raw).split():
                        cve = cve.replace("CVE_", "CVE-")
                        if not cve.startswith("CVE-"):
                            continue
                        advisories.setdefault(platform, {}).setdefault(pkg["name"], {})[cve] = str(fixed)
    dbdir = os.path.join(cache, "db")
    os.makedirs(dbdir, exist_ok=True)
    dbpath = os.path.join(dbdir, "trivy.db")
    if os.path.exists(dbpath):
        os.remove(dbpath)
    db = boltdb.BoltDB(dbpath)
    with db.update() as tx:
        cves = set()
        ds = tx.create_bucket(b"data-source")
        for platform, pkgs in sorted(advisories.items()):
            ds.put(platform.encode(), json.dumps({"ID": "alpine", "Name": "Alpine Secdb", "URL": "https://secdb.alpinelinux.org/"}).encode())
            pb = tx.create_bucket(platform.encode())
            for name, per_cve in sorted(pkgs.items()):
                b = pb.create_bucket(name.encode())
                for cve, fixed in sorted(per_cve.items()):
                    b.put(cve.encode(), json.dumps({"FixedVersion": fixed}).encode())
                    cves.add(cve)
        vb = tx.create_bucket(b"vulnerability")
        for cve in sorted(cves):
            vb.put(cve.encode(), b"{}")
    db.close()
    patch_checksums(dbpath)
    meta = {"Version": 2, "NextUpdate": "2099-01-01T00:00:00Z", "UpdatedAt": "2024-01-01T00:00:00Z",
            "DownloadedAt": "2024-01-01T00:00:00Z"}
    json.dump(meta, open(os.path.join(dbdir, "metadata.json"), "w"))
    n = sum(len(c) for p in advisories.values() for c in p.values())
    print(f"{dbpath}: {n} advisories", file=sys.stderr)


if __name__ == "__main__":
    main()
