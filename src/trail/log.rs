//! One CloudTrail log file as the trail writes it to S3 (CloudTrail User Guide, "CloudTrail log
//! file examples"): gzip of one JSON object `{"Records":[...]}`, one element per event.
//!
//! Owns the reading of the bytes: a size cap on the compressed object, decompression through a
//! hard output cap (a gzip bomb stops at the cap, nothing past it is allocated or even inflated),
//! and the JSON streamed element by element into [`Record`]s: the decompressed text is never held
//! whole, and a bad record is counted and skipped without losing the file. Nesting is bounded by
//! serde_json's recursion limit (128).

use std::cell::RefCell;
use std::fmt;
use std::io::{self, BufReader, Read};

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::record::Record;

/// The gzip magic bytes (RFC 1952 §2.3.1: ID1 = 31, ID2 = 139).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// Our choice: skip reasons kept per file (the count is exact).
pub const MAX_SKIP_REASONS: usize = 20;

/// Caps on one log file.
#[derive(Debug, Clone, Copy)]
pub struct LogLimits {
    /// Bytes of the gzip object.
    pub max_compressed: u64,
    /// Bytes of JSON once decompressed.
    pub max_decompressed: u64,
    /// Elements of `Records`.
    pub max_records: usize,
}

impl Default for LogLimits {
    fn default() -> Self {
        LogLimits {
            // Our choice: CloudTrail delivers a file about every 5 minutes per account and Region
            // (CloudTrail User Guide, "Finding your CloudTrail log files"); busy accounts' files are
            // a few MiB compressed. 64 MiB is far above that.
            max_compressed: 64 * 1024 * 1024,
            // Our choice: JSON compresses about 10-20x; 512 MiB bounds what one file can make the
            // daemon inflate.
            max_decompressed: 512 * 1024 * 1024,
            // Our choice: a record is at least a few hundred bytes, so 512 MiB holds at most about a
            // million of them.
            max_records: 1_000_000,
        }
    }
}

/// The records of one log file.
#[derive(Debug, Default)]
pub struct LogFile {
    /// The readable records, in the file's order.
    pub records: Vec<Record>,
    /// Records left out (absent or wrong-typed required fields).
    pub skipped: usize,
    /// Why, for the first [`MAX_SKIP_REASONS`] skipped: "record <index>: <reason>".
    pub skip_reasons: Vec<String>,
}

/// Why a log file was not read.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The object is larger than [`LogLimits::max_compressed`].
    #[error("the log file is {bytes} bytes compressed, over the cap of {max}")]
    CompressedTooLarge {
        /// Its size.
        bytes: u64,
        /// The cap.
        max: u64,
    },
    /// It inflates past [`LogLimits::max_decompressed`] (a gzip bomb, or a cap too small).
    #[error("the log file decompresses to more than {max} bytes (a gzip bomb?)")]
    DecompressedTooLarge {
        /// The cap.
        max: u64,
    },
    /// It does not start with the gzip magic bytes.
    #[error("the log file is not gzip (it starts with {start:02x?})")]
    NotGzip {
        /// Its first bytes (at most 4).
        start: Vec<u8>,
    },
    /// Gzip, but the stream is truncated or corrupt (bad header, deflate data or CRC).
    #[error("the log file's gzip stream is corrupt or truncated: {0}")]
    CorruptGzip(#[source] io::Error),
    /// The decompressed text is not JSON (syntax, end of input, nesting over 128).
    #[error("the log file is not JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    /// JSON, but not `{"Records":[...]}`.
    #[error("the log file is not a CloudTrail log ({{\"Records\":[...]}}): {0}")]
    NotRecords(String),
    /// More elements in `Records` than [`LogLimits::max_records`].
    #[error("the log file has more than {max} records")]
    TooManyRecords {
        /// The cap.
        max: usize,
    },
}

/// Read one log file (the object's bytes as downloaded).
pub fn read(compressed: &[u8], limits: &LogLimits) -> Result<LogFile, LogError> {
    let bytes = u64::try_from(compressed.len()).unwrap_or(u64::MAX);
    if bytes > limits.max_compressed {
        return Err(LogError::CompressedTooLarge { bytes, max: limits.max_compressed });
    }
    if !compressed.starts_with(&GZIP_MAGIC) {
        return Err(LogError::NotGzip { start: compressed.iter().take(4).copied().collect() });
    }
    let capped = CappedReader {
        inner: flate2::read::MultiGzDecoder::new(compressed).take(limits.max_decompressed.saturating_add(1)),
        read: 0,
        max: limits.max_decompressed,
        failure: None,
    };
    let mut reader = BufReader::new(capped);
    let state = RefCell::new(State { file: LogFile::default(), max_records: limits.max_records, too_many: false });
    let result = {
        let mut de = serde_json::Deserializer::from_reader(&mut reader);
        FileSeed { state: &state }.deserialize(&mut de).and_then(|()| de.end())
    };
    let state = state.into_inner();
    if let Some(failure) = reader.into_inner().failure {
        return Err(match failure {
            Failure::OverCap => LogError::DecompressedTooLarge { max: limits.max_decompressed },
            Failure::Gzip(e) => LogError::CorruptGzip(e),
        });
    }
    if state.too_many {
        return Err(LogError::TooManyRecords { max: limits.max_records });
    }
    match result {
        Ok(()) => Ok(state.file),
        Err(e) if e.is_data() => Err(LogError::NotRecords(e.to_string())),
        Err(e) if e.is_io() => Err(LogError::CorruptGzip(io::Error::other(e))),
        Err(e) => Err(LogError::NotJson(e)),
    }
}

/// Why the decompressed stream stopped.
enum Failure {
    /// One byte past the cap was produced.
    OverCap,
    /// The gzip decoder failed.
    Gzip(io::Error),
}

/// The decompressed stream, failing (and remembering why) one byte past `max`: the decoder is a
/// `Take` of `max + 1`, so nothing beyond that is ever inflated.
struct CappedReader<R> {
    inner: io::Take<R>,
    read: u64,
    max: u64,
    failure: Option<Failure>,
}

impl<R: Read> Read for CappedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.failure.is_some() {
            return Err(io::Error::other("the log file's stream already failed"));
        }
        match self.inner.read(buf) {
            Ok(n) => {
                self.read = self.read.saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
                if self.read > self.max {
                    self.failure = Some(Failure::OverCap);
                    Err(io::Error::other("the decompressed size cap was exceeded"))
                } else {
                    Ok(n)
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                let message = e.to_string();
                self.failure = Some(Failure::Gzip(e));
                Err(io::Error::other(message))
            }
        }
    }
}

/// What the streaming visitors fill in.
struct State {
    file: LogFile,
    max_records: usize,
    /// Set when `Records` has more than `max_records` elements (the visitor then fails).
    too_many: bool,
}

/// The top level: an object whose `Records` is read by [`RecordsSeed`]; other keys ignored.
struct FileSeed<'a> {
    state: &'a RefCell<State>,
}

impl<'de> DeserializeSeed<'de> for FileSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FileSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object with a Records array")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = false;
        while let Some(key) = map.next_key::<String>()? {
            if key == "Records" {
                if seen {
                    return Err(de::Error::duplicate_field("Records"));
                }
                seen = true;
                map.next_value_seed(RecordsSeed { state: self.state })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        if seen { Ok(()) } else { Err(de::Error::missing_field("Records")) }
    }
}

/// The `Records` array: each element becomes a [`Record`] or a skip as it is read.
struct RecordsSeed<'a> {
    state: &'a RefCell<State>,
}

impl<'de> DeserializeSeed<'de> for RecordsSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for RecordsSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of CloudTrail records")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0usize;
        while let Some(element) = seq.next_element::<Value>()? {
            let mut state = self.state.borrow_mut();
            if index >= state.max_records {
                state.too_many = true;
                return Err(de::Error::custom("too many records"));
            }
            match Record::from_owned(element) {
                Ok(record) => state.file.records.push(record),
                Err(reason) => {
                    state.file.skipped += 1;
                    if state.file.skip_reasons.len() < MAX_SKIP_REASONS {
                        state.file.skip_reasons.push(format!("record {index}: {reason}"));
                    }
                }
            }
            index += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(data).expect("write");
        enc.finish().expect("finish")
    }

    #[test]
    fn empty_records_and_other_keys() {
        let file = read(&gzip(br#"{"x":[1,{"y":2}],"Records":[]}"#), &LogLimits::default()).expect("read");
        assert!(file.records.is_empty());
        assert_eq!(file.skipped, 0);
    }

    #[test]
    fn duplicate_records_key_is_refused() {
        let e = read(&gzip(br#"{"Records":[],"Records":[]}"#), &LogLimits::default()).expect_err("refused");
        assert!(matches!(e, LogError::NotRecords(_)), "{e}");
    }

    #[test]
    fn trailing_garbage_is_not_json() {
        let e = read(&gzip(br#"{"Records":[]} x"#), &LogLimits::default()).expect_err("refused");
        assert!(matches!(e, LogError::NotJson(_)), "{e}");
    }

    #[test]
    fn the_cap_is_exact() {
        let text = br#"{"Records":[]}"#;
        let limits = |max| LogLimits { max_decompressed: max, ..LogLimits::default() };
        assert!(read(&gzip(text), &limits(text.len() as u64)).is_ok());
        let e = read(&gzip(text), &limits(text.len() as u64 - 1)).expect_err("over");
        assert!(matches!(e, LogError::DecompressedTooLarge { .. }), "{e}");
    }
}
