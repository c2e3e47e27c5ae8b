//! What the caller tells the writer: the request the bundle answers, the sources searched, and the
//! bundle password.

use std::fmt;

use chrono::{DateTime, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::ExportError;

/// The language a bundle's `index.html` shows first. Both languages are always present.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Lang {
    /// Simplified Chinese first.
    #[default]
    #[serde(rename = "zh-CN")]
    ZhCn,
    /// English first.
    #[serde(rename = "en")]
    En,
}

/// The kind of a subject identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentifierKind {
    /// An email address.
    Email,
    /// A mobile phone number.
    Mobile,
    /// An account id in the company's account system.
    AccountId,
}

impl IdentifierKind {
    pub(crate) fn label(self, zh: bool) -> &'static str {
        match (self, zh) {
            (Self::Email, true) => "电子邮件地址",
            (Self::Email, false) => "Email address",
            (Self::Mobile, true) => "手机号码",
            (Self::Mobile, false) => "Mobile number",
            (Self::AccountId, true) => "账号",
            (Self::AccountId, false) => "Account ID",
        }
    }
}

/// One identifier the subject was verified by, and the data was looked up with.
///
/// `Debug` hides the value, so that a stray `{:?}` can't put it in a log.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Identifier {
    /// What the value is.
    pub kind: IdentifierKind,
    /// The identifier as verified (an address, a number in E.164, an account id).
    pub value: String,
}

impl Identifier {
    /// An identifier of the given kind.
    pub fn new(kind: IdentifierKind, value: impl Into<String>) -> Self {
        Self {
            kind,
            value: value.into(),
        }
    }
}

impl fmt::Debug for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identifier")
            .field("kind", &self.kind)
            .field("value", &"<redacted>")
            .finish()
    }
}

/// What the bundle answers: written into `index.html` and `manifest.json`.
#[derive(Debug, Clone)]
pub struct BundleMeta {
    /// The request's human reference, e.g. `PR-2026-000123`.
    pub reference: String,
    /// The request kind (`access`, `copy`, `portability`, `next_of_kin`, …).
    pub request_kind: String,
    /// The identifiers the subject was verified by, as verified.
    pub subject_identifiers: Vec<Identifier>,
    /// When the bundle was made (the caller's clock; also every zip entry's timestamp).
    pub created_at: DateTime<Utc>,
    /// Which language `index.html` shows first.
    pub language: Lang,
}

/// How a source answered the look-up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum SourceStatus {
    /// The source was searched; its records and files are in the bundle. A source that answered
    /// with nothing is shown as holding no data about the subject.
    Answered,
    /// The source was searched and holds no data about the subject.
    NoData,
    /// The look-up failed; what the source gave before it failed (if anything) is in the bundle.
    Failed {
        /// Why, shown to the subject as is in both languages: write it for them, not for an engineer.
        reason: String,
    },
}

/// A data category of a source, as the privacy policy states it (policy §一).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryInfo {
    /// The category's key, used in file names: `data/<source>/<key>.json`.
    pub key: String,
    /// Its title in Chinese.
    pub title_zh: String,
    /// Its title in English.
    pub title_en: String,
    /// Its purpose in Chinese, as the policy states it.
    pub purpose_zh: String,
    /// Its purpose in English.
    pub purpose_en: String,
    /// The preferred order of the CSV columns (e.g. the order a connector's configuration lists
    /// them). Columns listed here that no record has are left out; keys not listed follow in the
    /// order first seen. May be empty.
    #[serde(default, skip_serializing)]
    pub columns: Vec<String>,
}

/// A connected system that was searched for the subject's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceInfo {
    /// The source's key, used in file names: `data/<name>/…`, `files/<name>/…`.
    pub name: String,
    /// Its name for people, in Chinese.
    pub display_name_zh: String,
    /// Its name for people, in English.
    pub display_name_en: String,
    /// Who is responsible for it (a department or a role).
    pub owner: String,
    /// How it answered.
    pub status: SourceStatus,
    /// The categories of personal data it holds.
    pub categories: Vec<CategoryInfo>,
}

/// A bundle password. `Debug` never shows it, and it has no `Display` and no `Serialize`.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Wraps a password; an empty one is refused.
    pub fn new(password: impl Into<String>) -> Result<Self, ExportError> {
        let password = password.into();
        if password.is_empty() {
            return Err(ExportError::EmptyPassword);
        }
        Ok(Self(password))
    }

    /// The password itself, to send to the subject (separately from the download link).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// The alphabet of generated passwords: digits and capitals without the look-alikes `0`/`O` and
/// `1`/`I`, and no lower case, so that the password can be read out or typed from an SMS.
const PASSWORD_ALPHABET: &[u8; 32] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
const PASSWORD_GROUPS: usize = 6;
const PASSWORD_GROUP_LEN: usize = 4;

/// A new random bundle password: 24 characters from a 32-character alphabet (120 bits) drawn from
/// the thread's CSPRNG (`rand::rng()`, ChaCha seeded by the operating system), in six groups of
/// four joined by `-`, e.g. `7KQM-XW3D-PN8T-…`. The hyphens are part of the password.
pub fn generate_password() -> Password {
    let mut rng = rand::rng();
    let mut out = String::with_capacity(PASSWORD_GROUPS * (PASSWORD_GROUP_LEN + 1));
    for group in 0..PASSWORD_GROUPS {
        if group > 0 {
            out.push('-');
        }
        for _ in 0..PASSWORD_GROUP_LEN {
            let i = rng.random_range(0..PASSWORD_ALPHABET.len());
            out.push(char::from(PASSWORD_ALPHABET[i]));
        }
    }
    Password(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_are_long_readable_and_different() {
        let a = generate_password();
        let b = generate_password();
        assert_ne!(a, b);
        let text = a.expose();
        assert_eq!(text.len(), 29);
        let random: Vec<char> = text.chars().filter(|c| *c != '-').collect();
        assert_eq!(random.len(), 24);
        for c in random {
            assert!(PASSWORD_ALPHABET.contains(&(c as u8)), "{c}");
            assert!(!"01OIl".contains(c));
        }
        assert_eq!(text.matches('-').count(), 5);
    }

    #[test]
    fn passwords_and_identifiers_are_redacted_in_debug() {
        let p = Password::new("hunter2-secret").unwrap();
        assert_eq!(format!("{p:?}"), "Password(<redacted>)");
        let id = Identifier::new(IdentifierKind::Email, "li.lei@example.cn");
        let shown = format!("{id:?}");
        assert!(!shown.contains("li.lei"), "{shown}");
        assert!(matches!(Password::new(""), Err(ExportError::EmptyPassword)));
    }

    #[test]
    fn statuses_and_languages_have_stable_names() {
        assert_eq!(
            serde_json::to_value(SourceStatus::NoData).unwrap(),
            serde_json::json!({"status": "no_data"})
        );
        assert_eq!(
            serde_json::to_value(SourceStatus::Failed {
                reason: "timeout".into()
            })
            .unwrap(),
            serde_json::json!({"status": "failed", "reason": "timeout"})
        );
        assert_eq!(serde_json::to_value(Lang::ZhCn).unwrap(), "zh-CN");
        assert_eq!(
            serde_json::to_value(IdentifierKind::AccountId).unwrap(),
            "account_id"
        );
    }
}
