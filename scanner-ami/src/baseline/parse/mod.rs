//! Faithful parsers of the configuration formats the baseline rules read. Each parser works on
//! text already read (bounded) through [`super::Ctx`], never touches the scanner's own files, and
//! returns line numbers so findings can point at the exact line.

pub mod accounts;
pub mod audit;
pub mod fstab;
pub mod kv;
pub mod logindefs;
pub mod modprobe;
pub mod pam;
pub mod sshd;
pub mod sudoers;
pub mod sysctl;
