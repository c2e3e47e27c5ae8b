//! Human request references: `PR-<year>-<6 digits>`, for people (letters, phone calls,
//! email subjects).
//!
//! References are numbered per year from a counter, so two requests never draw the same
//! one, and the counter goes through a keyed permutation of the year's million numbers
//! ([`Numbering`]), so a reference says nothing about the id, about how many requests
//! exist, or about its neighbours.

use std::fmt;
use std::str::FromStr;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    year: u16,
    number: u32,
}

/// How many distinct references a year holds.
pub const NUMBERS_PER_YEAR: u32 = 1_000_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a reference looks like PR-2026-000123")]
pub struct InvalidReference;

impl Reference {
    /// `number` is reduced modulo one million; `year` must have four digits.
    pub fn new(year: i32, number: u32) -> Result<Self, InvalidReference> {
        if !(1000..=9999).contains(&year) {
            return Err(InvalidReference);
        }
        Ok(Self {
            year: year as u16,
            number: number % NUMBERS_PER_YEAR,
        })
    }

    pub fn year(&self) -> i32 {
        i32::from(self.year)
    }

    pub fn number(&self) -> u32 {
        self.number
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PR-{:04}-{:06}", self.year, self.number)
    }
}

impl FromStr for Reference {
    type Err = InvalidReference;

    /// Accepts any letter case (people type references by hand).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let bytes = s.as_bytes();
        if bytes.len() != 14
            || !bytes[..3].eq_ignore_ascii_case(b"PR-")
            || bytes[7] != b'-'
            || !bytes[3..7].iter().all(u8::is_ascii_digit)
            || !bytes[8..].iter().all(u8::is_ascii_digit)
        {
            return Err(InvalidReference);
        }
        let year: i32 = s[3..7].parse().map_err(|_| InvalidReference)?;
        let number: u32 = s[8..].parse().map_err(|_| InvalidReference)?;
        Self::new(year, number)
    }
}

impl Serialize for Reference {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Reference {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Maps the `n`-th reference of a year to its number: a keyed permutation of
/// `0..NUMBERS_PER_YEAR`, different for every year. It is a balanced Feistel network on
/// 20 bits (HMAC-SHA256 as the round function) restricted to the first million by
/// cycle-walking, so distinct counters always give distinct numbers.
///
/// The key must never change once references were issued: a new key maps the rest of
/// the year onto numbers already used (the filing path then skips taken numbers, at a
/// cost).
#[derive(Clone)]
pub struct Numbering {
    mac: Hmac<Sha256>,
}

const HALF_BITS: u32 = 10;
const HALF_MASK: u32 = (1 << HALF_BITS) - 1;
const ROUNDS: u8 = 8;

impl Numbering {
    pub fn new(key: &[u8]) -> Self {
        Self {
            mac: <Hmac<Sha256> as Mac>::new_from_slice(key)
                .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length")),
        }
    }

    /// The reference numbered `counter` (0-based) in `year`, or `None` when the year's
    /// million references are used up.
    pub fn reference(&self, year: i32, counter: u32) -> Option<Reference> {
        if counter >= NUMBERS_PER_YEAR {
            return None;
        }
        let mut x = counter;
        // Cycle-walking: 2^20 is just above a million, so this loops about 1.05 times.
        loop {
            x = self.permute(year, x);
            if x < NUMBERS_PER_YEAR {
                return Reference::new(year, x).ok();
            }
        }
    }

    fn permute(&self, year: i32, x: u32) -> u32 {
        let (mut left, mut right) = (x >> HALF_BITS, x & HALF_MASK);
        for round in 0..ROUNDS {
            let mut mac = self.mac.clone();
            mac.update(b"reference:");
            mac.update(&year.to_be_bytes());
            mac.update(&[round]);
            mac.update(&right.to_be_bytes());
            let out = mac.finalize().into_bytes();
            let f = u32::from(u16::from_be_bytes([out[0], out[1]])) & HALF_MASK;
            (left, right) = (right, left ^ f);
        }
        (left << HALF_BITS) | right
    }
}

impl fmt::Debug for Numbering {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Numbering(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let r = Reference::new(2026, 123).unwrap();
        assert_eq!(r.to_string(), "PR-2026-000123");
        assert_eq!("pr-2026-000123".parse::<Reference>().unwrap(), r);
        assert_eq!(
            Reference::new(2026, 1_234_567).unwrap().to_string(),
            "PR-2026-234567"
        );
    }

    #[test]
    fn numbering_never_repeats_and_hides_the_order() {
        let numbering = Numbering::new(b"key one");
        let mut seen = std::collections::HashSet::new();
        let mut previous = None;
        let mut adjacent = 0;
        for counter in 0..50_000 {
            let r = numbering.reference(2026, counter).unwrap();
            assert_eq!(r.year(), 2026);
            assert!(
                seen.insert(r.number()),
                "counter {counter} repeated a number"
            );
            if let Some(p) = previous
                && r.number().abs_diff(p) == 1
            {
                adjacent += 1;
            }
            previous = Some(r.number());
        }
        // Consecutive filings do not get consecutive numbers.
        assert!(adjacent < 10, "{adjacent} consecutive pairs");
        assert!(numbering.reference(2026, NUMBERS_PER_YEAR).is_none());
        assert!(numbering.reference(2026, NUMBERS_PER_YEAR - 1).is_some());
    }

    #[test]
    fn numbering_depends_on_key_and_year() {
        let a = Numbering::new(b"key one");
        let b = Numbering::new(b"key two");
        let first: Vec<u32> = (0..20)
            .map(|c| a.reference(2026, c).unwrap().number())
            .collect();
        let other_key: Vec<u32> = (0..20)
            .map(|c| b.reference(2026, c).unwrap().number())
            .collect();
        let other_year: Vec<u32> = (0..20)
            .map(|c| a.reference(2027, c).unwrap().number())
            .collect();
        assert_ne!(first, other_key);
        assert_ne!(first, other_year);
        // The same key and year always give the same numbers (instances agree).
        let again: Vec<u32> = (0..20)
            .map(|c| {
                Numbering::new(b"key one")
                    .reference(2026, c)
                    .unwrap()
                    .number()
            })
            .collect();
        assert_eq!(first, again);
    }

    #[test]
    fn refuses_other_shapes() {
        for bad in [
            "",
            "PR-2026-12345",
            "PR-26-000123",
            "XX-2026-000123",
            "PR-2026-00012a",
            "PR_2026_000123",
        ] {
            assert!(bad.parse::<Reference>().is_err(), "{bad}");
        }
    }
}
