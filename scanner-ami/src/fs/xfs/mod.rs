//! XFS (v4 and v5) read in userspace, read-only: superblock and allocation-group geometry,
//! inodes, data forks, directories and symlinks, with a dirty log replayed in memory ([`log`]).

pub mod log;
