//! Hard bounds on everything the agent reads from a scanned disk.
//!
//! Every byte of a scanned disk is hostile input. These limits bound memory and time whatever the
//! disk claims about itself; each says where its value comes from. Exceeding one is reported as an
//! error for that part of the scan (never a panic), and the rest of the scan goes on.

/// Largest text database read whole into memory (dpkg `status`, apk `installed`, os-release, rpm
/// manifest). The biggest real dpkg status files seen on full desktop installs are ~10 MiB; four
/// times that leaves room while keeping peak memory bounded.
pub const MAX_TEXT_DB_BYTES: u64 = 48 * 1024 * 1024;

/// Largest small config file (os-release and friends). Real ones are under 1 KiB.
pub const MAX_SMALL_FILE_BYTES: u64 = 64 * 1024;

/// Largest SQLite rpmdb read into memory for `sqlite3_deserialize`. Fedora/RHEL 9 installs with
/// ~3,000 packages have rpmdb.sqlite files of 60-120 MiB; 256 MiB bounds it with headroom.
pub const MAX_RPM_SQLITE_BYTES: u64 = 256 * 1024 * 1024;

/// Largest single rpm header blob. rpm itself refuses headers over 256 MiB (`headerMaxbytes`,
/// rpm `lib/header_internal.h`); real headers are 2 KiB - 2 MiB. We keep rpm's index-count bound
/// and a tighter data bound.
pub const MAX_RPM_HEADER_BYTES: usize = 64 * 1024 * 1024;

/// rpm's own bound on the number of index entries in a header (`hdrchkTags`: 0x0000ffff).
pub const MAX_RPM_HEADER_TAGS: usize = 0xffff;

/// Most packages accepted from one database. The largest distributions install ~10k packages;
/// this stops a crafted database from producing unbounded output.
pub const MAX_PACKAGES_PER_DB: usize = 200_000;

/// Most entries listed from one directory (dpkg `status.d`, rpm dirs). Bounds time and memory on
/// a crafted directory with millions of entries.
pub const MAX_DIR_ENTRIES: usize = 100_000;

/// Most partitions read from one partition table (GPT arrays hold 128 by default; an MBR chain
/// of logical partitions is bounded to the same figure).
pub const MAX_PARTITIONS: usize = 128;

/// Largest GPT partition entry array accepted (128 entries x 128 bytes = 16 KiB by default; the
/// UEFI spec allows more, we allow 64x the default).
pub const MAX_GPT_ARRAY_BYTES: u64 = 1024 * 1024;

/// Largest LVM2 metadata text read from one metadata area. lvm2 2.03 makes a 1020 KiB area by
/// default and keeps each VG text well under half of it (the circular buffer holds the old and the
/// new copy); `--metadatasize` can raise the area, and VGs with thousands of LVs have a few MiB of
/// text. 16 MiB covers them; the area's own size bounds the read first.
pub const MAX_LVM_METADATA_BYTES: u64 = 16 * 1024 * 1024;

/// Most LVM2 metadata text read in one assembly, over all PVs and all their metadata areas (each PV
/// usually holds one or two copies of its VG's text): stops many crafted PVs from multiplying the
/// per-area bound.
pub const MAX_LVM_METADATA_TOTAL_BYTES: u64 = 64 * 1024 * 1024;

/// Deepest nesting of sections in LVM2 metadata text. Real metadata nests four deep (VG,
/// `logical_volumes`, the LV, its `segmentN`); lvm.conf-style profiles a little deeper.
pub const MAX_LVM_CONFIG_DEPTH: usize = 16;

/// Most keys, sections and array elements in one LVM2 metadata text. An LV costs about 15 and
/// each further segment about 10, so a VG of 10,000 LVs stays under 300,000; the bound keeps the
/// parsed tree's memory proportionate even when the text is at its byte limit.
pub const MAX_LVM_CONFIG_NODES: usize = 500_000;

/// Most segments in one logical volume. lvm2 sets no limit; an LV extended a few hundred times
/// has a few hundred. The LV's read map holds one entry per segment.
pub const MAX_LVM_SEGMENTS_PER_LV: usize = 10_000;

/// Most stripes in one striped segment: lvm2's own `MAX_STRIPES` (128,
/// `lib/metadata/metadata-exported.h`).
pub const MAX_LVM_STRIPES: usize = 128;

/// Most physical-volume candidates assembled at once. EC2 instances attach at most a few dozen
/// EBS volumes (128 on the largest Nitro types), each with a handful of partitions.
pub const MAX_LVM_PV_CANDIDATES: usize = 1024;

/// Deepest XFS block-map B+tree accepted (levels below the root in the inode). The kernel's own
/// bound for 64-bit extent counters on 1 KiB blocks is 11 (`xfs_bmbt_maxlevels_ondisk`, which
/// assumes half-full blocks); 16 leaves room and bounds the reads of one lookup.
pub const MAX_XFS_BTREE_LEVELS: usize = 16;

/// Deepest XFS directory hash-index (DA B+tree) accepted: the kernel's `XFS_DA_NODE_MAXDEPTH`.
pub const MAX_XFS_DA_DEPTH: usize = 5;

/// Most bytes of directory data blocks read to list one XFS directory. [`MAX_DIR_ENTRIES`]
/// entries with the longest names (255 bytes: 272-byte entries) take ~27 MiB; a crafted
/// directory of empty blocks stops here instead of reading up to its 32 GiB data space.
pub const MAX_XFS_DIR_BYTES: u64 = 64 * 1024 * 1024;

/// Bytes of checked XFS metadata blocks (directory and block-map blocks) kept in memory, so the
/// blocks near the root of a walk are not read again for every path.
pub const XFS_META_CACHE_BYTES: usize = 4 * 1024 * 1024;

/// Checked XFS inodes kept in memory (each at most the 2 KiB inode size plus its decoding).
pub const XFS_INODE_CACHE_ENTRIES: usize = 1024;
