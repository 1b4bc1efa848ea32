#!/usr/bin/env python3
"""Write an LVM2 physical volume (a whole disk) holding one volume group of linear logical
volumes, byte for byte the same on every run, without lvm2 tools or device-mapper.

    lvm-pv.py OUT --vg NAME --vg-uuid UUID --pv-uuid UUID --time EPOCH --host HOST \
              [--device /dev/sdf] [--free-extents N] LV...

    LV is NAME:UUID:EXTENTS[:FILE]; the LVs are laid out one after the other from extent 0, and
    FILE (a file system image, at most EXTENTS x 4 MiB) is copied to the LV's first byte, which
    is pe_start + start_extent x extent_size of the disk.

The on-disk format is lvm2's text format (lib/label/label.h, lib/format_text/layout.h,
format-text.c, export.c), as `pvcreate`/`vgcreate`/`lvcreate` of lvm2 2.03.16 write it for a new
PV with the defaults: the label in sector 1, one metadata area at 4 KiB of 1020 KiB (so that the
data area starts at 1 MiB), 4 MiB extents, the pv_header extension version 2 with the "used" flag,
and the committed metadata text right after the mda_header (offset 512, seqno 1, one write).
What is otherwise random or the clock's (PV, VG and LV UUIDs, creation_time, creation_host) comes
from the arguments.

Checksums are lvm2's calc_crc: CRC-32 (reflected, polynomial 0xEDB88320) from 0xf597a6cf, without
the usual inversions; the label's covers its sector from byte 20, the mda_header's its sector from
byte 4, the metadata text's the text and its terminating NUL.
"""
import argparse
import os
import re
import struct
import sys
import time
import zlib

SECTOR = 512
INITIAL_CRC = 0xF597A6CF
LABEL_SECTOR = 1  # pvcreate writes the label in sector 1 (of the four lvm2 scans)
MDA_OFFSET = 4096  # the first metadata area starts after the label's 4 KiB
PE_START = 1 << 20  # pe_start: 1 MiB, the default data alignment
MDA_SIZE = PE_START - MDA_OFFSET  # 1020 KiB, what pvs reports as PMdaSize
EXTENT = 4 << 20  # vgcreate's default physical extent size (4 MiB)
FMTT_MAGIC = b" LVM2 x[5A%r0N*>"
LVM_VERSION = "2.03.16(2) (2022-05-18)"  # the lvm2 whose output this imitates (Debian 12)


def lvm_crc(data: bytes) -> int:
    """calc_crc(INITIAL_CRC, data): zlib's CRC-32 inverts in and out, so invert around it."""
    return ~zlib.crc32(data, ~INITIAL_CRC & 0xFFFFFFFF) & 0xFFFFFFFF


def raw_uuid(printed: str) -> str:
    """A PV/VG/LV UUID as stored in the label: the 32 characters without dashes."""
    raw = printed.replace("-", "")
    if not re.fullmatch(r"[A-Za-z0-9!#]{32}", raw):
        sys.exit(f"lvm-pv.py: {printed!r} is not a 32-character lvm2 UUID")
    return raw


def printed_uuid(raw: str) -> str:
    """lvm2 prints UUIDs 6-4-4-4-4-4-6."""
    cuts = [0, 6, 10, 14, 18, 22, 26, 32]
    return "-".join(raw[a:b] for a, b in zip(cuts, cuts[1:]))


def label_sector(pv_uuid: str, dev_size: int) -> bytes:
    # pv_header: id[32], device_size_xl, then the data area list, the metadata area list (each
    # ended by a zero disk_locn), and the extension: version, flags, bootloader area list.
    pvh = raw_uuid(pv_uuid).encode()
    pvh += struct.pack("<Q", dev_size)
    pvh += struct.pack("<QQ", PE_START, 0) + struct.pack("<QQ", 0, 0)
    pvh += struct.pack("<QQ", MDA_OFFSET, MDA_SIZE) + struct.pack("<QQ", 0, 0)
    pvh += struct.pack("<II", 2, 1) + struct.pack("<QQ", 0, 0)  # PV_HEADER_EXTENSION_VSN, PV_EXT_USED
    # label_header: id, sector_xl, crc_xl, offset_xl (the pv_header follows at 32), type.
    body = struct.pack("<I", 32) + b"LVM2 001" + pvh
    body = body.ljust(SECTOR - 20, b"\0")
    head = b"LABELONE" + struct.pack("<Q", LABEL_SECTOR)
    return head + struct.pack("<I", lvm_crc(body)) + body


def mda_header(text: bytes) -> bytes:
    # mda_header: checksum_xl, magic[16], version, start, size, raw_locn[] (offset, size,
    # checksum, flags) ended by a zero one.
    body = FMTT_MAGIC + struct.pack("<IQQ", 1, MDA_OFFSET, MDA_SIZE)
    body += struct.pack("<QQII", SECTOR, len(text), lvm_crc(text), 0) + bytes(24)
    body = body.ljust(SECTOR - 4, b"\0")
    return struct.pack("<I", lvm_crc(body)) + body


def metadata_text(a, lvs, pe_count: int, dev_size: int) -> bytes:
    """The VG as lvm2's export.c writes it into a metadata area (no indentation, no comments in
    the VG section), then the header lines `vgcfgbackup` also writes."""
    out = [f"{a.vg} {{", f'id = "{printed_uuid(raw_uuid(a.vg_uuid))}"', "seqno = 1", 'format = "lvm2"',
           'status = ["RESIZEABLE", "READ", "WRITE"]', "flags = []", f"extent_size = {EXTENT // SECTOR}",
           "max_lv = 0", "max_pv = 0", "metadata_copies = 0", "", "physical_volumes {", "", "pv0 {",
           f'id = "{printed_uuid(raw_uuid(a.pv_uuid))}"', f'device = "{a.device}"', "",
           'status = ["ALLOCATABLE"]', "flags = []", f"dev_size = {dev_size // SECTOR}",
           f"pe_start = {PE_START // SECTOR}", f"pe_count = {pe_count}", "}", "}", "", "logical_volumes {"]
    start = 0
    for name, uuid, extents, _ in lvs:
        out += ["", f"{name} {{", f'id = "{printed_uuid(raw_uuid(uuid))}"', 'status = ["READ", "WRITE", "VISIBLE"]',
                "flags = []", f"creation_time = {a.time}", f'creation_host = "{a.host}"', "segment_count = 1", "",
                "segment1 {", "start_extent = 0", f"extent_count = {extents}", "", 'type = "striped"',
                "stripe_count = 1", "", "stripes = [", f'"pv0", {start}', "]", "}", "}"]
        start += extents
    out += ["}", "", "}"]
    stamp = time.strftime("%a %b %e %H:%M:%S %Y", time.gmtime(a.time))
    out += [f"# Generated by LVM2 version {LVM_VERSION}: {stamp}", "", 'contents = "Text Format Volume Group"',
            "version = 1", "", 'description = ""', "", f'creation_host = "{a.host}"\t# Linux {a.host}',
            f"creation_time = {a.time}\t# {stamp}", "", ""]
    return "\n".join(out).encode() + b"\0"


def parse_lv(spec: str):
    parts = spec.split(":", 3)
    if len(parts) < 3 or not parts[2].isdigit() or int(parts[2]) == 0:
        sys.exit(f"lvm-pv.py: LV {spec!r} is not NAME:UUID:EXTENTS[:FILE]")
    raw_uuid(parts[1])
    return parts[0], parts[1], int(parts[2]), parts[3] if len(parts) == 4 else None


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out")
    p.add_argument("--vg", required=True)
    p.add_argument("--vg-uuid", required=True)
    p.add_argument("--pv-uuid", required=True)
    p.add_argument("--time", type=int, required=True, help="creation_time of the VG and its LVs")
    p.add_argument("--host", required=True, help="creation_host of the VG and its LVs")
    p.add_argument("--device", default="/dev/sdf", help="the PV's device name hint")
    p.add_argument("--free-extents", type=int, default=0)
    p.add_argument("lv", nargs="+")
    a = p.parse_args()
    lvs = [parse_lv(s) for s in a.lv]
    pe_count = sum(lv[2] for lv in lvs) + a.free_extents
    dev_size = PE_START + pe_count * EXTENT
    text = metadata_text(a, lvs, pe_count, dev_size)
    if SECTOR + len(text) > MDA_SIZE:
        sys.exit("lvm-pv.py: the metadata text does not fit the metadata area")
    with open(a.out, "wb") as f:
        f.truncate(dev_size)
        f.seek(LABEL_SECTOR * SECTOR)
        f.write(label_sector(a.pv_uuid, dev_size))
        f.seek(MDA_OFFSET)
        f.write(mda_header(text))
        f.write(text)
        start = 0
        for name, _, extents, path in lvs:
            if path is not None:
                size = os.path.getsize(path)
                if size > extents * EXTENT:
                    sys.exit(f"lvm-pv.py: {path} ({size} bytes) does not fit LV {name} ({extents} extents)")
                with open(path, "rb") as src:
                    f.seek(PE_START + start * EXTENT)
                    while chunk := src.read(1 << 20):
                        if chunk.count(0) == len(chunk):
                            f.seek(len(chunk), os.SEEK_CUR)  # keep the image sparse
                        else:
                            f.write(chunk)
            print(f"{name}: extents {start}-{start + extents - 1}, bytes {PE_START + start * EXTENT}"
                  f"-{PE_START + (start + extents) * EXTENT - 1}")
            start += extents


if __name__ == "__main__":
    main()
