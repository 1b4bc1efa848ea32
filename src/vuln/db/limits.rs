//! Hard bounds on what an import reads. Advisory archives come from the network or from a path a
//! person typed: each bound keeps memory and time finite whatever the input claims about itself,
//! and says where its value comes from. Exceeding one refuses the import with a message naming
//! the file or archive entry; the database in use is left as it was.

/// Largest single OSV record (one JSON file or one archive entry). The largest of the 5,680
/// AlmaLinux records is 196 KB; the largest osv.dev records (PyPI and Maven advisories listing
/// thousands of `versions`, kernel CVEs with hundreds of ranges) are a few MB. 16 MiB leaves a
/// wide margin while bounding the memory of one parse.
pub const MAX_RECORD_BYTES: u64 = 16 * 1024 * 1024;

/// Longest `summary` plus `details` text of one record. Real details are advisory prose (the
/// longest of the AlmaLinux records is 10 KB); 1 MiB of text is not an advisory but an
/// attempt to bloat the database.
pub const MAX_TEXT_BYTES: usize = 1024 * 1024;

/// Largest Alpine secdb YAML file. The archived v3.11 `main.yaml` is 50 KB and today's edge
/// files are under 1 MB; 32 MiB bounds the YAML parser's memory.
pub const MAX_SECDB_BYTES: u64 = 32 * 1024 * 1024;

/// Most entries in one archive, and most files under one directory. osv.dev's largest
/// per-ecosystem archives (Debian, Ubuntu) hold about 75,000 records each
/// (docs/references.md, "OSV advisory data"); 500,000 is more than six times that.
pub const MAX_ENTRIES: usize = 500_000;

/// Most bytes decompressed from one archive. The Debian and Ubuntu archives decompress to about
/// 1 GiB; 8 GiB allows for their growth while refusing a decompression bomb long before a disk
/// or the time budget suffers.
pub const MAX_ARCHIVE_UNCOMPRESSED_BYTES: u64 = 8 * 1024 * 1024 * 1024;

/// Highest ratio of decompressed to compressed size accepted for an archive entry larger than
/// [`RATIO_MIN_BYTES`]. JSON advisories deflate 5:1 to 20:1; deflate's ceiling is about 1,032:1,
/// reached only by runs of one byte, the shape of a zip bomb.
pub const MAX_COMPRESSION_RATIO: u64 = 100;

/// Entries smaller than this are not held to [`MAX_COMPRESSION_RATIO`]: a few KB of repetitive
/// JSON may compress very well and cannot hurt.
pub const RATIO_MIN_BYTES: u64 = 1024 * 1024;

/// Deepest directory nesting walked by a directory import. OSV exports are one or two levels
/// deep (`advisories/almalinux9/`, `v3.4/`); 16 stops a crafted or looping tree.
pub const MAX_DIR_DEPTH: usize = 16;

/// How many failing records an import names before it only counts the rest: enough to see a
/// pattern, short enough to read.
pub const MAX_REPORTED_ERRORS: usize = 20;
