//! The requester's contact details, parsed at the edge so that an invalid address or
//! number cannot exist past it.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::validation::{ObjectReader, ValidationErrors, limits};

/// An email address, normalised to lower case (mailbox look-ups and search are
/// case-insensitive in practice).
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub const MAX_LEN: usize = 254;

    pub fn parse(raw: &str) -> Result<Self, (&'static str, String)> {
        let raw = raw.trim();
        if raw.len() > Self::MAX_LEN {
            return Err((
                "too_long",
                format!("must be at most {} characters", Self::MAX_LEN),
            ));
        }
        // The crate accepts RFC 5322 forms that no mailbox uses in practice
        // (quoted local parts, IP-literal domains, display names); refuse them.
        let parsed = email_address::EmailAddress::parse_with_options(
            raw,
            email_address::Options::default()
                .without_display_text()
                .without_domain_literal()
                .with_required_tld(),
        )
        .map_err(|_| ("invalid_email", "is not a valid email address".to_owned()))?;
        let domain = parsed.domain();
        if !domain.contains('.') || parsed.local_part().starts_with('"') {
            return Err(("invalid_email", "is not a valid email address".to_owned()));
        }
        Ok(Self(raw.to_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Email(<redacted>)")
    }
}

/// A mobile number in E.164 form (`+8613812345678`). A bare 11-digit mainland number
/// is read as +86; a +86 number must be a mainland mobile number.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Phone(String);

impl Phone {
    pub fn parse(raw: &str) -> Result<Self, (&'static str, String)> {
        let invalid = || {
            (
                "invalid_phone",
                "is not a valid mobile number (E.164 such as +8613812345678, or an 11-digit mainland number)"
                    .to_owned(),
            )
        };
        let raw = raw.trim();
        if raw.len() > 32 {
            return Err(invalid());
        }
        let (plus, rest) = match raw.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, raw),
        };
        let mut digits = String::with_capacity(rest.len());
        for c in rest.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' | '(' | ')' | '.' => {}
                _ => return Err(invalid()),
            }
        }
        let e164 = if plus {
            digits
        } else if digits.len() == 11 && digits.starts_with('1') {
            format!("86{digits}")
        } else if let Some(intl) = digits.strip_prefix("00") {
            intl.to_owned()
        } else {
            return Err(invalid());
        };
        if !(8..=15).contains(&e164.len()) || e164.starts_with('0') {
            return Err(invalid());
        }
        if let Some(national) = e164.strip_prefix("86") {
            let bytes = national.as_bytes();
            if bytes.len() != 11 || bytes[0] != b'1' || !(b'3'..=b'9').contains(&bytes[1]) {
                return Err(invalid());
            }
        }
        Ok(Self(format!("+{e164}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Phone(<redacted>)")
    }
}

/// The languages notices are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum Language {
    #[default]
    #[serde(rename = "zh-CN")]
    ZhCn,
    #[serde(rename = "en")]
    En,
}

impl Language {
    pub fn parse(raw: &str) -> Result<Self, (&'static str, String)> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "zh" | "zh-cn" | "zh-hans" | "zh-hans-cn" => Ok(Self::ZhCn),
            "en" | "en-us" | "en-gb" => Ok(Self::En),
            _ => Err((
                "unsupported_language",
                "must be one of zh-CN, en".to_owned(),
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ZhCn => "zh-CN",
            Self::En => "en",
        }
    }
}

crate::kinds::string_enum! {
    /// In what capacity someone files for another living person (SPEC §2): a parent or
    /// guardian of a minor (under 14, PIPL art. 31), or an agent with a power of attorney.
    Capacity {
        Guardian = "guardian",
        Agent = "agent",
    }
}

/// The person a guardian or an agent files for: the data subject. Identifiers are
/// optional (a child may have none); the name is not.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActingFor {
    pub capacity: Capacity,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<Email>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<Phone>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
}

impl fmt::Debug for ActingFor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActingFor")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl ActingFor {
    fn read(value: Option<&Value>, path: &str, errors: &mut ValidationErrors) -> Option<Self> {
        let mut r = ObjectReader::new(value, path, false, errors)?;
        let before = r.errors().0.len();
        let capacity_path = r.field_path("capacity");
        let capacity = match r.string("capacity", true, limits::SHORT_TEXT) {
            Some(c) => match c.parse::<Capacity>() {
                Ok(c) => Some(c),
                Err(m) => {
                    r.errors().push(capacity_path, "invalid_value", m);
                    None
                }
            },
            None => None,
        };
        let name = r.string("name", true, limits::NAME);
        let email = parse_with(&mut r, "email", Email::parse);
        let phone = parse_with(&mut r, "phone", Phone::parse);
        let account_id = r.string("account_id", false, limits::SHORT_TEXT);
        let clean = r.errors().0.len() == before;
        r.deny_unknown();
        if !clean {
            return None;
        }
        Some(Self {
            capacity: capacity?,
            name: name?,
            email: email.ok()?,
            phone: phone.ok()?,
            account_id,
        })
    }
}

/// The person who files a request (who may differ from the subject, e.g. next of kin).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requester {
    pub name: String,
    pub email: Option<Email>,
    pub phone: Option<Phone>,
    pub language: Language,
    /// Set when the requester is a guardian or an agent filing for someone else.
    pub acting_for: Option<ActingFor>,
}

impl fmt::Debug for Requester {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Requester")
            .field("language", &self.language)
            .finish_non_exhaustive()
    }
}

impl Requester {
    /// Parses `value` (the `requester` member of a filing), recording problems under
    /// `path`. At least one of email and phone is required.
    pub fn read(value: Option<&Value>, path: &str, errors: &mut ValidationErrors) -> Option<Self> {
        let mut r = ObjectReader::new(value, path, false, errors)?;
        let before = r.errors().0.len();
        let name = r.string("name", true, limits::NAME);
        let email = parse_with(&mut r, "email", Email::parse);
        let phone = parse_with(&mut r, "phone", Phone::parse);
        let language = parse_with(&mut r, "language", Language::parse);
        let acting_path = r.field_path("acting_for");
        let acting_for = match r.take("acting_for") {
            None | Some(Value::Null) => Ok(None),
            Some(v) => ActingFor::read(Some(&v), &acting_path, r.errors())
                .map(Some)
                .ok_or(()),
        };
        let missing_contact = matches!(&email, Ok(None)) && matches!(&phone, Ok(None));
        if missing_contact {
            let p = r.field_path("email");
            r.errors().push(
                p,
                "contact_required",
                "at least one of email and phone is required",
            );
        }
        let clean = r.errors().0.len() == before;
        r.deny_unknown();
        if !clean {
            return None;
        }
        Some(Self {
            name: name?,
            email: email.ok()?,
            phone: phone.ok()?,
            language: language.ok()?.unwrap_or_default(),
            acting_for: acting_for.ok()?,
        })
    }
}

/// Reads an optional string member and parses it; `Err(())` means an error was recorded.
fn parse_with<T>(
    r: &mut ObjectReader<'_>,
    name: &str,
    parse: impl Fn(&str) -> Result<T, (&'static str, String)>,
) -> Result<Option<T>, ()> {
    let path = r.field_path(name);
    match r.take(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => match parse(&s) {
            Ok(v) => Ok(Some(v)),
            Err((code, message)) => {
                r.errors().push(path, code, message);
                Err(())
            }
        },
        Some(_) => {
            r.errors().push(path, "invalid_type", "must be a string");
            Err(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn emails() {
        assert_eq!(
            Email::parse(" Li.Wei@Example.COM ").unwrap().as_str(),
            "li.wei@example.com"
        );
        for bad in [
            "",
            "no-at",
            "a@b",
            "a@[127.0.0.1]",
            "Li <li@example.com>",
            "a b@example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
        assert!(Email::parse(&format!("{}@example.com", "a".repeat(250))).is_err());
    }

    #[test]
    fn phones() {
        assert_eq!(
            Phone::parse("13812345678").unwrap().as_str(),
            "+8613812345678"
        );
        assert_eq!(
            Phone::parse("+86 138-1234-5678").unwrap().as_str(),
            "+8613812345678"
        );
        assert_eq!(
            Phone::parse("0044 7911 123456").unwrap().as_str(),
            "+447911123456"
        );
        assert_eq!(
            Phone::parse("+1 (415) 555-0100").unwrap().as_str(),
            "+14155550100"
        );
        for bad in [
            "",
            "12345",
            "+8612345678901",
            "+86 02112345678",
            "phone",
            "+0123456789",
            "23812345678",
        ] {
            assert!(Phone::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn requester_needs_a_contact() {
        let mut errors = ValidationErrors::default();
        let r = Requester::read(Some(&json!({"name": "李雷"})), "requester", &mut errors);
        assert!(r.is_none());
        assert_eq!(errors.0[0].field, "requester.email");
        assert_eq!(errors.0[0].code, "contact_required");
    }

    #[test]
    fn requester_debug_hides_personal_data() {
        let mut errors = ValidationErrors::default();
        let r = Requester::read(
            Some(&json!({"name": "李雷", "email": "li@example.com", "language": "en"})),
            "requester",
            &mut errors,
        )
        .unwrap();
        let printed = format!("{r:?}");
        assert!(
            !printed.contains("李雷") && !printed.contains("example.com"),
            "{printed}"
        );
        assert_eq!(r.language, Language::En);
    }
}
