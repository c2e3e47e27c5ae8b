//! Human request references: `PR-<year>-<6 digits>`, for people (letters, phone calls,
//! email subjects). The number is drawn at random by the caller, so a reference says
//! nothing about the id or about how many requests exist.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

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
