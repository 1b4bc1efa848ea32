//! IPv4 and IPv6 CIDR blocks for the `IpAddress` / `NotIpAddress` condition operators.
//!
//! A policy value is `address/prefix` (RFC 4632 / RFC 4291 notation, e.g. `203.0.113.0/24`,
//! `2001:db8::/32`) or a bare address, which is a /32 (IPv4) or /128 (IPv6) block. Addresses are
//! parsed with the standard library's strict parsers; the prefix and containment logic is ours.
//! Host bits set in the policy value (`10.0.0.1/8`) are ignored, as AWS does: the block is the
//! network the prefix names. An IPv4 address never falls in an IPv6 block and vice versa (no
//! IPv4-mapped `::ffff:0:0/96` translation).

use std::fmt;
use std::net::IpAddr;

/// One CIDR block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// The network address with the host bits cleared, as a 128-bit number (IPv4 in the low 32 bits).
    network: u128,
    prefix: u8,
    v6: bool,
}

/// Why a CIDR block did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    #[error("\"{0}\" is not an IPv4 or IPv6 address")]
    Address(String),
    #[error("\"{0}\" has a prefix length that is not a number of bits from 0 to {1}")]
    Prefix(String, u8),
}

impl Cidr {
    /// Parse `a.b.c.d/n`, `x:y::z/n` or a bare address.
    pub fn parse(text: &str) -> Result<Cidr, CidrError> {
        let (addr_text, prefix_text) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr_text.parse().map_err(|_| CidrError::Address(text.to_owned()))?;
        let (bits, width, v6) = to_bits(addr);
        let prefix = match prefix_text {
            None => width,
            Some(p) => {
                if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(CidrError::Prefix(text.to_owned(), width));
                }
                match p.parse::<u8>() {
                    Ok(n) if n <= width => n,
                    _ => return Err(CidrError::Prefix(text.to_owned(), width)),
                }
            }
        };
        Ok(Cidr { network: bits & mask(width, prefix), prefix, v6 })
    }

    /// Is `addr` inside this block?
    #[must_use]
    pub fn contains(&self, addr: IpAddr) -> bool {
        let (bits, width, v6) = to_bits(addr);
        v6 == self.v6 && bits & mask(width, self.prefix) == self.network
    }

    /// Parse `text` as an address (a request's `aws:SourceIp`) and test it; anything that is not
    /// an address is outside every block.
    #[must_use]
    pub fn contains_text(&self, text: &str) -> bool {
        text.parse::<IpAddr>().is_ok_and(|a| self.contains(a))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.v6 {
            write!(f, "{}/{}", std::net::Ipv6Addr::from(self.network), self.prefix)
        } else {
            let v4 = u32::try_from(self.network).map_err(|_| fmt::Error)?;
            write!(f, "{}/{}", std::net::Ipv4Addr::from(v4), self.prefix)
        }
    }
}

/// The address as a number, its width in bits and whether it is IPv6.
fn to_bits(addr: IpAddr) -> (u128, u8, bool) {
    match addr {
        IpAddr::V4(a) => (u128::from(u32::from(a)), 32, false),
        IpAddr::V6(a) => (u128::from(a), 128, true),
    }
}

/// The network mask of a `prefix`-bit block in a `width`-bit address, as the low `width` bits.
fn mask(width: u8, prefix: u8) -> u128 {
    let all: u128 = if width == 128 { u128::MAX } else { (1u128 << width) - 1 };
    let host_bits = width - prefix.min(width);
    if host_bits >= 128 { 0 } else { all & !((1u128 << host_bits) - 1) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
    }

    #[test]
    fn ipv4_blocks() {
        let c = Cidr::parse("203.0.113.0/24").expect("cidr");
        assert!(c.contains(ip("203.0.113.0")));
        assert!(c.contains(ip("203.0.113.255")));
        assert!(!c.contains(ip("203.0.114.0")));
        assert!(Cidr::parse("0.0.0.0/0").expect("cidr").contains(ip("255.255.255.255")));
        let host = Cidr::parse("10.1.2.3").expect("cidr");
        assert!(host.contains(ip("10.1.2.3")) && !host.contains(ip("10.1.2.4")));
        // Host bits in the policy value are ignored.
        assert!(Cidr::parse("10.9.9.9/8").expect("cidr").contains(ip("10.200.0.1")));
        assert_eq!(Cidr::parse("10.9.9.9/8").expect("cidr").to_string(), "10.0.0.0/8");
        assert!(Cidr::parse("10.0.0.0/31").expect("cidr").contains(ip("10.0.0.1")));
    }

    #[test]
    fn ipv6_blocks() {
        let c = Cidr::parse("2001:db8::/32").expect("cidr");
        assert!(c.contains(ip("2001:db8:ffff::1")));
        assert!(!c.contains(ip("2001:db9::1")));
        assert!(Cidr::parse("::/0").expect("cidr").contains(ip("::1")));
        assert!(Cidr::parse("2001:db8::1/128").expect("cidr").contains(ip("2001:db8::1")));
        assert!(!Cidr::parse("2001:db8::1/127").expect("cidr").contains(ip("2001:db8::2")));
        assert!(Cidr::parse("2001:db8::/33").expect("cidr").contains(ip("2001:db8:7fff::")));
        assert!(!Cidr::parse("2001:db8::/33").expect("cidr").contains(ip("2001:db8:8000::")));
    }

    #[test]
    fn families_do_not_mix() {
        assert!(!Cidr::parse("0.0.0.0/0").expect("cidr").contains(ip("::1")));
        assert!(!Cidr::parse("::/0").expect("cidr").contains(ip("10.0.0.1")));
        assert!(!Cidr::parse("0.0.0.0/0").expect("cidr").contains_text("not-an-ip"));
    }

    #[test]
    fn bad_blocks() {
        for bad in
            ["", "10.0.0", "10.0.0.0/33", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/+8", "::/129", "x/8", "1.2.3.4/0008"]
        {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }
}
