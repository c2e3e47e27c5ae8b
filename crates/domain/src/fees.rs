//! The cost fee an officer may quote for a repeated request (SPEC §8; policy §六: "对多次
//! 重复、超出合理限度的请求，我们将视情况收取一定成本费用"). Amounts are exact: a decimal
//! with at most two places, held in minor units (分 for CNY), never a float.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The largest fee that can be quoted, in major units: a cost fee, not a price list.
pub const MAX_MAJOR_UNITS: u64 = 100_000;

/// An amount of money in one currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fee {
    /// The amount as written for people, always with two decimals (`"30.00"`).
    pub amount: String,
    /// ISO 4217 code, upper case (`CNY`).
    pub currency: String,
}

/// Why an amount or a currency is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeeError {
    #[error("must be a positive amount with at most two decimals, like \"30\" or \"30.50\"")]
    Amount,
    #[error("must be at most {MAX_MAJOR_UNITS}")]
    TooLarge,
    #[error("must be an ISO 4217 code of three upper-case letters, like CNY")]
    Currency,
}

impl Fee {
    /// Parses `amount` (`"30"`, `"30.5"`, `"30.50"`) and `currency` (`"CNY"`).
    pub fn parse(amount: &str, currency: &str) -> Result<Self, FeeError> {
        let minor = parse_minor_units(amount)?;
        if minor == 0 {
            return Err(FeeError::Amount);
        }
        if minor > MAX_MAJOR_UNITS * 100 {
            return Err(FeeError::TooLarge);
        }
        if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(FeeError::Currency);
        }
        Ok(Self {
            amount: format!("{}.{:02}", minor / 100, minor % 100),
            currency: currency.to_owned(),
        })
    }
}

impl fmt::Display for Fee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}

fn parse_minor_units(s: &str) -> Result<u64, FeeError> {
    let (whole, fraction) = s.split_once('.').unwrap_or((s, ""));
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty()
        || whole.len() > 9
        || !digits(whole)
        || fraction.len() > 2
        || !digits(fraction)
        || (s.contains('.') && fraction.is_empty())
    {
        return Err(FeeError::Amount);
    }
    let whole: u64 = whole.parse().map_err(|_| FeeError::Amount)?;
    let cents = match fraction.len() {
        0 => 0,
        1 => fraction.parse::<u64>().map_err(|_| FeeError::Amount)? * 10,
        _ => fraction.parse::<u64>().map_err(|_| FeeError::Amount)?,
    };
    Ok(whole * 100 + cents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_exact_with_two_decimals() {
        assert_eq!(Fee::parse("30", "CNY").unwrap().amount, "30.00");
        assert_eq!(Fee::parse("30.5", "CNY").unwrap().amount, "30.50");
        assert_eq!(Fee::parse("0.05", "CNY").unwrap().amount, "0.05");
        assert_eq!(Fee::parse("12.34", "USD").unwrap().to_string(), "12.34 USD");
        assert_eq!(Fee::parse("100000", "CNY").unwrap().amount, "100000.00");
    }

    #[test]
    fn bad_amounts_and_currencies_are_refused() {
        for bad in [
            "", "0", "0.00", "-1", "1.234", "1.", ".5", "1e3", "abc", " 1", "1,5",
        ] {
            assert_eq!(Fee::parse(bad, "CNY"), Err(FeeError::Amount), "{bad:?}");
        }
        assert_eq!(Fee::parse("100000.01", "CNY"), Err(FeeError::TooLarge));
        assert_eq!(Fee::parse("9999999999", "CNY"), Err(FeeError::Amount));
        for bad in ["cny", "CN", "CNYY", "C1Y", ""] {
            assert_eq!(Fee::parse("1", bad), Err(FeeError::Currency), "{bad:?}");
        }
    }
}
