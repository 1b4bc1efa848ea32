//! A bounded ELF header reader: the file header, the section header table (with section names)
//! and the program header table, each read by file offset with a size bound and parsed with
//! `goblin` from buffers this module reads — never `Elf::parse` of a whole file, which would need
//! the whole file in memory (docs/references.md, "Application inventory bounds").
//!
//! This module owns [`ElfFile`] (what the Go and Rust readers need to know about an executable),
//! reading one section with a cap ([`ElfFile::read_section`]) and mapping virtual addresses to
//! file offsets through the `PT_LOAD` segments ([`ElfFile::read_vaddr`]). Both endiannesses and
//! both classes are read; any offset, size or count outside the file or over a bound is an
//! [`AppError`], never a panic or an allocation the file size does not justify.

use goblin::container::{Container, Ctx};
use goblin::elf::header::{EI_CLASS, ELFCLASS32, ELFCLASS64, ELFMAG, SELFMAG};
use goblin::elf::program_header::PT_LOAD;
use goblin::elf::section_header::{SHN_XINDEX, SHT_NOBITS};
use goblin::elf::{Elf, ProgramHeader, SectionHeader};

use super::AppError;
use crate::fs::FileRead;

/// Bytes read for the file header: the ELF64 header is 64 bytes, the ELF32 one 52 (ELF gABI).
const HEADER_READ: usize = 64;

/// Most bytes of section header table read (`e_shnum × e_shentsize`): 1 MiB is 16,384 ELF64
/// entries, far above any real executable (docs/references.md).
pub const MAX_SECTION_TABLE: u64 = 1 << 20;

/// Most bytes of program header table read (`e_phnum × e_phentsize`): the same 1 MiB bound; real
/// executables have about ten entries.
pub const MAX_PROGRAM_TABLE: u64 = 1 << 20;

/// Most bytes of the section name string table read (docs/references.md); names whose
/// offset lies past this bound are read as empty.
pub const MAX_SHSTRTAB: u64 = 64 << 10;

/// Longest section name kept (bytes); longer names cannot be any section we look for.
const MAX_SECTION_NAME: usize = 256;

/// One section header, with its name resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    /// `sh_type` (`SHT_PROGBITS`, `SHT_NOBITS`...).
    pub kind: u32,
    pub offset: u64,
    pub size: u64,
    pub addr: u64,
    pub flags: u64,
}

/// One program header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// `p_type` (`PT_LOAD`...).
    pub kind: u32,
    /// `p_flags` (`PF_X` 1, `PF_W` 2, `PF_R` 4).
    pub flags: u32,
    pub offset: u64,
    pub vaddr: u64,
    pub filesz: u64,
    pub memsz: u64,
}

/// What the application readers need from one ELF file's headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfFile {
    pub is_64: bool,
    pub little_endian: bool,
    /// `e_machine`.
    pub machine: u16,
    pub sections: Vec<Section>,
    pub segments: Vec<Segment>,
}

/// True when `magic` (the first four bytes of a file) is the ELF magic.
#[must_use]
pub fn is_elf_magic(magic: &[u8]) -> bool {
    magic.get(..SELFMAG) == Some(&ELFMAG[..])
}

/// Read `len` bytes at `offset`, refusing (before allocating) a range that is not inside the file.
///
/// # Errors
///
/// The range is outside the file, or the read fails.
pub fn read_range(file: &mut dyn FileRead, path: &str, offset: u64, len: u64, what: &str) -> Result<Vec<u8>, AppError> {
    let size = file.len();
    let end = offset.checked_add(len).filter(|end| *end <= size).ok_or_else(|| {
        AppError::new(
            path,
            format!("{what}: {len} bytes at offset {offset} run past the end of the file ({size} bytes)"),
        )
    })?;
    let n =
        usize::try_from(len).map_err(|_| AppError::new(path, format!("{what}: {len} bytes do not fit in memory")))?;
    let mut buf = vec![0u8; n];
    file.read_exact_at(offset, &mut buf)
        .map_err(|e| AppError::new(path, format!("{what}: read of bytes {offset}..{end}: {e}")))?;
    Ok(buf)
}

fn corrupt(path: &str, what: impl std::fmt::Display) -> AppError {
    AppError::new(path, format!("ELF: {what}"))
}

impl ElfFile {
    /// Read the headers of the ELF file `file`; `Ok(None)` when it does not start with the ELF
    /// magic.
    ///
    /// A file whose `e_shnum` is 0 with a non-zero `e_shoff` takes its section count from section
    /// 0's `sh_size`, and an `e_shstrndx` of `SHN_XINDEX` its index from section 0's `sh_link`
    /// (ELF gABI, "extended section numbering").
    ///
    /// # Errors
    ///
    /// The header is damaged, a table lies outside the file or exceeds its bound.
    pub fn read(file: &mut dyn FileRead, path: &str) -> Result<Option<ElfFile>, AppError> {
        let size = file.len();
        let head_len = size.min(HEADER_READ as u64);
        let head = read_range(file, path, 0, head_len, "ELF header")?;
        if !is_elf_magic(&head) {
            return Ok(None);
        }
        // goblin reads a 64-byte header whatever the class; a short ELF32 file is padded.
        let mut padded = [0u8; HEADER_READ];
        if let Some(dst) = padded.get_mut(..head.len()) {
            dst.copy_from_slice(&head);
        }
        let class = head.get(EI_CLASS).copied().unwrap_or(0);
        if class != ELFCLASS32 && class != ELFCLASS64 {
            return Err(corrupt(path, format!("unknown class {class}")));
        }
        let header = Elf::parse_header(&padded).map_err(|e| corrupt(path, format!("header: {e}")))?;
        let container = header.container().map_err(|e| corrupt(path, format!("header: {e}")))?;
        let le = header.endianness().map_err(|e| corrupt(path, format!("header: {e}")))?;
        let ctx = Ctx::new(container, le);
        let is_64 = container == Container::Big;
        let header_size = if is_64 { 64 } else { 52 };
        if size < header_size {
            return Err(corrupt(path, format!("file of {size} bytes is shorter than its header")));
        }

        let segments = Self::read_segments(file, path, &header, ctx)?;
        let sections = Self::read_sections(file, path, &header, ctx)?;
        Ok(Some(ElfFile { is_64, little_endian: le.is_little(), machine: header.e_machine, sections, segments }))
    }

    fn read_segments(
        file: &mut dyn FileRead,
        path: &str,
        header: &goblin::elf::Header,
        ctx: Ctx,
    ) -> Result<Vec<Segment>, AppError> {
        let count = u64::from(header.e_phnum);
        if header.e_phoff == 0 || count == 0 {
            return Ok(Vec::new());
        }
        let entry = ProgramHeader::size(ctx) as u64;
        if u64::from(header.e_phentsize) != entry {
            return Err(corrupt(path, format!("e_phentsize {} is not {entry}", header.e_phentsize)));
        }
        let table = count.checked_mul(entry).filter(|t| *t <= MAX_PROGRAM_TABLE).ok_or_else(|| {
            corrupt(path, format!("{count} program headers exceed the {MAX_PROGRAM_TABLE}-byte bound"))
        })?;
        let buf = read_range(file, path, header.e_phoff, table, "ELF program header table")?;
        let count = usize::try_from(count).map_err(|_| corrupt(path, "program header count"))?;
        let phdrs =
            ProgramHeader::parse(&buf, 0, count, ctx).map_err(|e| corrupt(path, format!("program headers: {e}")))?;
        Ok(phdrs
            .into_iter()
            .map(|p| Segment {
                kind: p.p_type,
                flags: p.p_flags,
                offset: p.p_offset,
                vaddr: p.p_vaddr,
                filesz: p.p_filesz,
                memsz: p.p_memsz,
            })
            .collect())
    }

    fn read_sections(
        file: &mut dyn FileRead,
        path: &str,
        header: &goblin::elf::Header,
        ctx: Ctx,
    ) -> Result<Vec<Section>, AppError> {
        if header.e_shoff == 0 {
            return Ok(Vec::new());
        }
        let entry = SectionHeader::size(ctx) as u64;
        if u64::from(header.e_shentsize) != entry {
            if header.e_shnum == 0 {
                return Ok(Vec::new());
            }
            return Err(corrupt(path, format!("e_shentsize {} is not {entry}", header.e_shentsize)));
        }
        // Section 0 holds the real count and string table index when they overflow the header.
        let first = read_range(file, path, header.e_shoff, entry, "ELF section header 0")?;
        let zero = SectionHeader::parse_from(&first, 0, 1, ctx)
            .map_err(|e| corrupt(path, format!("section header 0: {e}")))?
            .into_iter()
            .next()
            .ok_or_else(|| corrupt(path, "section header 0 missing"))?;
        let count = if header.e_shnum == 0 { zero.sh_size } else { u64::from(header.e_shnum) };
        if count == 0 {
            return Ok(Vec::new());
        }
        let strndx = if u32::from(header.e_shstrndx) == SHN_XINDEX {
            u64::from(zero.sh_link)
        } else {
            u64::from(header.e_shstrndx)
        };
        let table = count.checked_mul(entry).filter(|t| *t <= MAX_SECTION_TABLE).ok_or_else(|| {
            corrupt(path, format!("{count} section headers exceed the {MAX_SECTION_TABLE}-byte bound"))
        })?;
        let buf = read_range(file, path, header.e_shoff, table, "ELF section header table")?;
        let n = usize::try_from(count).map_err(|_| corrupt(path, "section count"))?;
        let shdrs =
            SectionHeader::parse_from(&buf, 0, n, ctx).map_err(|e| corrupt(path, format!("section headers: {e}")))?;

        // The section name table, cut at MAX_SHSTRTAB; no table (index 0) means no names.
        let names = match usize::try_from(strndx).ok().filter(|i| *i != 0).and_then(|i| shdrs.get(i)) {
            Some(s) if s.sh_type != SHT_NOBITS => {
                let len = s.sh_size.min(MAX_SHSTRTAB);
                read_range(file, path, s.sh_offset, len, "ELF section name table")?
            }
            _ => Vec::new(),
        };
        Ok(shdrs
            .iter()
            .map(|s| Section {
                name: section_name(&names, s.sh_name),
                kind: s.sh_type,
                offset: s.sh_offset,
                size: s.sh_size,
                addr: s.sh_addr,
                flags: s.sh_flags,
            })
            .collect())
    }

    /// The first section named `name`.
    #[must_use]
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// The contents of `section`, read by file offset (whether or not it is loaded).
    ///
    /// # Errors
    ///
    /// The section is larger than `cap` bytes, occupies no file space (`SHT_NOBITS`), lies
    /// outside the file, or the read fails.
    pub fn read_section(
        &self,
        file: &mut dyn FileRead,
        path: &str,
        section: &Section,
        cap: u64,
    ) -> Result<Vec<u8>, AppError> {
        let what = format!("section {}", section.name);
        if section.kind == SHT_NOBITS {
            return Err(AppError::new(path, format!("{what} occupies no file space")));
        }
        if section.size > cap {
            return Err(AppError::new(path, format!("{what}: {} bytes exceed the {cap}-byte bound", section.size)));
        }
        read_range(file, path, section.offset, section.size, &what)
    }

    /// The file offset of virtual address `addr` and how many bytes of file data the `PT_LOAD`
    /// segment holding it has from there; `None` when no loaded segment maps it from the file.
    #[must_use]
    pub fn vaddr_to_offset(&self, addr: u64) -> Option<(u64, u64)> {
        self.segments.iter().filter(|s| s.kind == PT_LOAD).find_map(|s| {
            let rel = addr.checked_sub(s.vaddr)?;
            if rel >= s.filesz {
                return None;
            }
            Some((s.offset.checked_add(rel)?, s.filesz - rel))
        })
    }

    /// Up to `max` bytes of file data at virtual address `addr`: fewer when the segment's file
    /// data ends first (as Go's `debug/buildinfo` reads).
    ///
    /// # Errors
    ///
    /// No `PT_LOAD` segment maps `addr`, the data lies outside the file, or the read fails.
    pub fn read_vaddr(&self, file: &mut dyn FileRead, path: &str, addr: u64, max: u64) -> Result<Vec<u8>, AppError> {
        let (offset, avail) = self
            .vaddr_to_offset(addr)
            .ok_or_else(|| AppError::new(path, format!("virtual address {addr:#x} is in no loaded segment")))?;
        read_range(file, path, offset, avail.min(max), "loaded segment")
    }

    /// The first loaded segment that is writable and not executable (where the Go linker puts the
    /// build info when there are no section headers).
    #[must_use]
    pub fn first_writable_load(&self) -> Option<&Segment> {
        use goblin::elf::program_header::{PF_W, PF_X};
        self.segments.iter().find(|s| s.kind == PT_LOAD && s.flags & (PF_X | PF_W) == PF_W)
    }
}

/// The NUL-terminated name at `index` in the string table `names` (empty when out of range or
/// not UTF-8).
fn section_name(names: &[u8], index: usize) -> String {
    let Some(rest) = names.get(index..) else {
        return String::new();
    };
    let end = rest.iter().position(|b| *b == 0).unwrap_or(rest.len()).min(MAX_SECTION_NAME);
    rest.get(..end).and_then(|b| std::str::from_utf8(b).ok()).unwrap_or_default().to_owned()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::fs::MemFile;

    /// A minimal ELF: header, `phnum` program headers after it, sections given as (name, type,
    /// flags, addr, contents) laid out after the program headers, then `.shstrtab` and the
    /// section header table. Both classes and endiannesses.
    pub(crate) struct Builder {
        pub is_64: bool,
        pub big: bool,
        pub segments: Vec<Segment>,
        pub sections: Vec<(String, u32, u64, u64, Vec<u8>)>,
    }

    impl Builder {
        pub(crate) fn new(is_64: bool, big: bool) -> Self {
            Builder { is_64, big, segments: Vec::new(), sections: Vec::new() }
        }

        fn put(&self, out: &mut Vec<u8>, v: u64, n: usize) {
            let bytes = if self.big { v.to_be_bytes() } else { v.to_le_bytes() };
            if self.big {
                out.extend_from_slice(&bytes[8 - n..]);
            } else {
                out.extend_from_slice(&bytes[..n]);
            }
        }

        fn word(&self, out: &mut Vec<u8>, v: u64) {
            self.put(out, v, if self.is_64 { 8 } else { 4 });
        }

        /// Where the contents of section `i` start in the built file (push the segments first).
        pub(crate) fn section_offset(&self, i: usize) -> u64 {
            let (eh, ph) = if self.is_64 { (64, 56) } else { (52, 32) };
            let mut off = eh + ph * self.segments.len();
            for s in &self.sections[..i] {
                off += s.4.len();
            }
            off as u64
        }

        pub(crate) fn build(&self) -> Vec<u8> {
            let (eh, ph, sh) = if self.is_64 { (64usize, 56usize, 64usize) } else { (52, 32, 40) };
            let mut names = vec![0u8];
            let mut name_idx = Vec::new();
            for s in &self.sections {
                name_idx.push(names.len());
                names.extend_from_slice(s.0.as_bytes());
                names.push(0);
            }
            let shstr_name = names.len();
            names.extend_from_slice(b".shstrtab\0");
            let body_start = eh + ph * self.segments.len();
            let body_len: usize = self.sections.iter().map(|s| s.4.len()).sum();
            let names_off = body_start + body_len;
            let shoff = names_off + names.len();
            let shnum = self.sections.len() + 2;

            let mut out = Vec::new();
            out.extend_from_slice(b"\x7fELF");
            out.push(if self.is_64 { 2 } else { 1 });
            out.push(if self.big { 2 } else { 1 });
            out.push(1);
            out.resize(16, 0);
            self.put(&mut out, 2, 2); // ET_EXEC
            self.put(&mut out, 62, 2); // EM_X86_64
            self.put(&mut out, 1, 4);
            self.word(&mut out, 0x401000); // entry
            self.word(&mut out, if self.segments.is_empty() { 0 } else { eh as u64 });
            self.word(&mut out, shoff as u64);
            self.put(&mut out, 0, 4);
            self.put(&mut out, eh as u64, 2);
            self.put(&mut out, ph as u64, 2);
            self.put(&mut out, self.segments.len() as u64, 2);
            self.put(&mut out, sh as u64, 2);
            self.put(&mut out, shnum as u64, 2);
            self.put(&mut out, (shnum - 1) as u64, 2);
            assert_eq!(out.len(), eh);
            for s in &self.segments {
                self.put(&mut out, u64::from(s.kind), 4);
                if self.is_64 {
                    self.put(&mut out, u64::from(s.flags), 4);
                }
                self.word(&mut out, s.offset);
                self.word(&mut out, s.vaddr);
                self.word(&mut out, s.vaddr);
                self.word(&mut out, s.filesz);
                self.word(&mut out, s.memsz);
                if !self.is_64 {
                    self.put(&mut out, u64::from(s.flags), 4);
                }
                self.word(&mut out, 0x1000);
            }
            for s in &self.sections {
                out.extend_from_slice(&s.4);
            }
            out.extend_from_slice(&names);
            // Section 0, then ours, then .shstrtab.
            out.extend(std::iter::repeat_n(0u8, sh));
            let mut off = body_start;
            for (i, s) in self.sections.iter().enumerate() {
                self.section_header(&mut out, name_idx[i] as u64, s.1, s.2, s.3, off as u64, s.4.len() as u64);
                off += s.4.len();
            }
            self.section_header(&mut out, shstr_name as u64, 3, 0, 0, names_off as u64, names.len() as u64);
            out
        }

        #[allow(clippy::too_many_arguments)]
        fn section_header(&self, out: &mut Vec<u8>, name: u64, kind: u32, flags: u64, addr: u64, off: u64, size: u64) {
            self.put(out, name, 4);
            self.put(out, u64::from(kind), 4);
            self.word(out, flags);
            self.word(out, addr);
            self.word(out, off);
            self.word(out, size);
            self.put(out, 0, 4);
            self.put(out, 0, 4);
            self.word(out, 1);
            self.word(out, 0);
        }
    }

    fn read(bytes: Vec<u8>) -> Result<Option<ElfFile>, AppError> {
        ElfFile::read(&mut MemFile(bytes), "/bin/x")
    }

    #[test]
    fn both_classes_and_endiannesses() {
        for (is_64, big) in [(true, false), (true, true), (false, false), (false, true)] {
            let mut b = Builder::new(is_64, big);
            b.sections.push((".data".into(), 1, 3, 0x2000, b"hello world".to_vec()));
            b.segments.push(Segment { kind: PT_LOAD, flags: 6, offset: 0, vaddr: 0x2000, filesz: 11, memsz: 64 });
            let data_off = b.section_offset(0);
            b.segments[0].offset = data_off;
            let bytes = b.build();
            let mut f = MemFile(bytes);
            let elf = ElfFile::read(&mut f, "/x").expect("valid in this test").expect("valid in this test");
            assert_eq!((elf.is_64, elf.little_endian, elf.machine), (is_64, !big, 62));
            let names: Vec<_> = elf.sections.iter().map(|s| s.name.as_str()).collect();
            assert_eq!(names, ["", ".data", ".shstrtab"]);
            let data = elf.section(".data").expect("valid in this test").clone();
            assert_eq!((data.addr, data.size, data.flags), (0x2000, 11, 3));
            assert_eq!(elf.read_section(&mut f, "/x", &data, 64).expect("valid in this test"), b"hello world");
            assert!(elf.read_section(&mut f, "/x", &data, 10).is_err());
            assert_eq!(elf.vaddr_to_offset(0x2006), Some((data_off + 6, 5)));
            assert_eq!(elf.read_vaddr(&mut f, "/x", 0x2006, 100).expect("valid in this test"), b"world");
            assert_eq!(elf.vaddr_to_offset(0x200b), None, "past filesz (bss) is not file data");
            assert!(elf.read_vaddr(&mut f, "/x", 0x1000, 1).is_err());
            assert_eq!(elf.first_writable_load().map(|s| s.vaddr), Some(0x2000));
        }
    }

    #[test]
    fn not_elf_and_short_files() {
        assert_eq!(read(b"#!/bin/sh\necho hi\n".to_vec()).expect("valid in this test"), None);
        assert_eq!(read(Vec::new()).expect("valid in this test"), None);
        assert!(read(b"\x7fELF\x02\x01\x01".to_vec()).is_err(), "truncated header");
        assert!(read(b"\x7fELF\x05\x01\x01\0\0\0\0\0\0\0\0\0".to_vec()).is_err(), "bad class");
    }

    #[test]
    fn hostile_tables_are_errors() {
        let good = Builder::new(true, false).build();
        // e_shoff past the end.
        let mut b = good.clone();
        b[0x28..0x30].copy_from_slice(&(1u64 << 40).to_le_bytes());
        assert!(read(b).expect_err("an error").reason.contains("past the end"));
        // e_shoff + table wrapping around u64.
        let mut b = good.clone();
        b[0x28..0x30].copy_from_slice(&(u64::MAX - 10).to_le_bytes());
        assert!(read(b).is_err());
        // e_shnum = 0xffff with the right entry size: 4 MiB table over the bound.
        let mut b = good.clone();
        b[0x3c..0x3e].copy_from_slice(&0xffffu16.to_le_bytes());
        assert!(read(b).expect_err("an error").reason.contains("bound"));
        // e_shentsize = e_shnum = 0xffff.
        let mut b = good.clone();
        b[0x3a..0x3e].copy_from_slice(&[0xff; 4]);
        assert!(read(b).is_err());
        // e_shnum = 0: the count comes from section 0's sh_size, here 2^60.
        let mut b = good.clone();
        b[0x3c..0x3e].copy_from_slice(&[0, 0]);
        let shoff = u64::from_le_bytes(b[0x28..0x30].try_into().expect("valid in this test")) as usize;
        b[shoff + 32..shoff + 40].copy_from_slice(&(1u64 << 60).to_le_bytes());
        assert!(read(b).expect_err("an error").reason.contains("bound"));
        // e_phnum at maximum with a matching entry size: 3.6 MB of program headers.
        let mut b = good.clone();
        b[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        b[0x38..0x3a].copy_from_slice(&0xffffu16.to_le_bytes());
        assert!(read(b).expect_err("an error").reason.contains("bound"));
    }

    #[test]
    fn extended_section_numbering() {
        // e_shnum = 0 and e_shstrndx = SHN_XINDEX, the real values in section 0.
        let mut b = Builder::new(true, false);
        b.sections.push((".go.buildinfo".into(), 1, 3, 0x1000, vec![1, 2, 3]));
        let mut bytes = b.build();
        let shoff = u64::from_le_bytes(bytes[0x28..0x30].try_into().expect("valid in this test")) as usize;
        bytes[0x3c..0x40].copy_from_slice(&[0, 0, 0xff, 0xff]);
        bytes[shoff + 32..shoff + 40].copy_from_slice(&3u64.to_le_bytes()); // sh_size: count
        bytes[shoff + 40..shoff + 44].copy_from_slice(&2u32.to_le_bytes()); // sh_link: strndx
        let elf = read(bytes).expect("valid in this test").expect("valid in this test");
        assert_eq!(elf.sections.len(), 3);
        assert_eq!(elf.section(".go.buildinfo").map(|s| s.size), Some(3));
    }

    #[test]
    fn section_names_out_of_range_are_empty() {
        assert_eq!(section_name(b"\0abc\0", 1), "abc");
        assert_eq!(section_name(b"\0abc", 1), "abc");
        assert_eq!(section_name(b"\0abc\0", 99), "");
        assert_eq!(section_name(b"\0\xff\0", 1), "");
    }
}
