//! Arrangements (生前安排, SPEC §2, PIPL 49): what a subject wants done with their data
//! after their death, and how a next of kin's request is checked against it.
//!
//! An arrangement names a **legacy contact** (optional), says per right (access, copy,
//! correction, deletion) whether relatives may exercise it — `allow`, `deny`, or
//! `legacy_contact` (only the legacy contact) — or asks to **delete everything**: then
//! relatives may have the data deleted, and nothing else. A right the arrangement does
//! not name is allowed (PIPL 49's default). [`check`] gives the verdict for one request:
//! every right asked for granted (`allow`), some (`limit`) or none (`deny`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::contact::{Email, Phone};
use crate::kinds::{NextOfKinRight, string_enum};
use crate::validation::{ObjectReader, limits};

string_enum! {
    /// Whether relatives may exercise a right over the deceased's data: `legacy_contact`
    /// is only the legacy contact the arrangement names.
    Allowance {
        Allow = "allow",
        Deny = "deny",
        LegacyContact = "legacy_contact",
    }
}

string_enum! {
    /// A next of kin's request, as the arrangement lets it go ahead: every right asked
    /// for (`allow`), some (`limit`), or none (`deny`: refused with
    /// `deceased_arrangement`).
    Outcome {
        Allow = "allow",
        Limit = "limit",
        Deny = "deny",
    }
}

/// The person the deceased chose to act for them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegacyContact {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<Email>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<Phone>,
}

/// What a subject wants done with their data after death.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Arrangement {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legacy_contact: Option<LegacyContact>,
    /// Per right; a right not named is allowed.
    #[serde(default)]
    pub rights: BTreeMap<String, Allowance>,
    /// Delete everything: relatives may have the data deleted, nothing else.
    #[serde(default)]
    pub delete_everything: bool,
}

/// Why a right is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refused {
    pub right: NextOfKinRight,
    /// `denied` (the arrangement says no), `legacy_contact_only` (the requester is not
    /// the legacy contact) or `delete_everything`.
    pub why: String,
}

/// The verdict on one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub outcome: Outcome,
    pub granted: Vec<NextOfKinRight>,
    pub refused: Vec<Refused>,
}

/// Checks the rights `asked` by a relative with `email` / `phone` against the deceased's
/// `arrangement` (none: everything is allowed).
pub fn check(
    arrangement: Option<&Arrangement>,
    asked: &[NextOfKinRight],
    email: Option<&str>,
    phone: Option<&str>,
) -> Verdict {
    let mut granted = Vec::new();
    let mut refused = Vec::new();
    for &right in asked {
        let why = match arrangement {
            None => None,
            Some(a) if a.delete_everything => {
                (right != NextOfKinRight::Deletion).then_some("delete_everything")
            }
            Some(a) => match a.rights.get(right.as_str()).copied() {
                None | Some(Allowance::Allow) => None,
                Some(Allowance::Deny) => Some("denied"),
                Some(Allowance::LegacyContact) => {
                    (!is_legacy_contact(a, email, phone)).then_some("legacy_contact_only")
                }
            },
        };
        match why {
            None => granted.push(right),
            Some(why) => refused.push(Refused {
                right,
                why: why.to_owned(),
            }),
        }
    }
    let outcome = match (granted.is_empty(), refused.is_empty()) {
        (_, true) => Outcome::Allow,
        (true, false) => Outcome::Deny,
        (false, false) => Outcome::Limit,
    };
    Verdict {
        outcome,
        granted,
        refused,
    }
}

/// Whether the requester's contact is the legacy contact's (an email address or a
/// mobile number the arrangement gives, as verified).
fn is_legacy_contact(a: &Arrangement, email: Option<&str>, phone: Option<&str>) -> bool {
    let Some(c) = &a.legacy_contact else {
        return false;
    };
    let same_email =
        matches!((&c.email, email), (Some(x), Some(y)) if x.as_str().eq_ignore_ascii_case(y));
    let same_phone = matches!((&c.phone, phone), (Some(x), Some(y)) if x.as_str() == y);
    same_email || same_phone
}

impl Arrangement {
    /// Reads `{legacy_contact?: {name, email?, phone?}, rights?: {access: allow | deny |
    /// legacy_contact, …}, delete_everything?}` from `r` (the members of a body).
    pub fn read(r: &mut ObjectReader<'_>) -> Option<Self> {
        let before = r.errors().0.len();
        let contact_path = r.field_path("legacy_contact");
        let legacy_contact = match r.take("legacy_contact") {
            None | Some(Value::Null) => None,
            Some(v) => {
                let mut c = ObjectReader::new(Some(&v), &contact_path, false, r.errors())?;
                let name = c.string("name", true, limits::NAME);
                let email_path = c.field_path("email");
                let email = c.string("email", false, limits::SHORT_TEXT).and_then(|e| {
                    Email::parse(&e)
                        .map_err(|(code, m)| c.errors().push(email_path, code, m))
                        .ok()
                });
                let phone_path = c.field_path("phone");
                let phone = c.string("phone", false, limits::SHORT_TEXT).and_then(|p| {
                    Phone::parse(&p)
                        .map_err(|(code, m)| c.errors().push(phone_path, code, m))
                        .ok()
                });
                if email.is_none() && phone.is_none() {
                    let path = c.field_path("email");
                    c.errors().push(
                        path,
                        "contact_required",
                        "a legacy contact needs an email address or a mobile number",
                    );
                }
                c.deny_unknown();
                name.map(|name| LegacyContact { name, email, phone })
            }
        };
        let rights_path = r.field_path("rights");
        let mut rights = BTreeMap::new();
        match r.take("rights") {
            None | Some(Value::Null) => {}
            Some(Value::Object(map)) => {
                for (key, value) in map {
                    let path = format!("{rights_path}.{key}");
                    if key.parse::<NextOfKinRight>().is_err() {
                        r.errors().push(
                            path,
                            "unknown_field",
                            "a right is access, copy, correction or deletion",
                        );
                        continue;
                    }
                    match value.as_str().map(str::parse::<Allowance>) {
                        Some(Ok(a)) => {
                            rights.insert(key, a);
                        }
                        _ => r.errors().push(
                            path,
                            "invalid_value",
                            "must be allow, deny or legacy_contact",
                        ),
                    }
                }
            }
            Some(_) => r
                .errors()
                .push(rights_path.clone(), "invalid_type", "must be an object"),
        }
        let delete_everything = r.flag("delete_everything");
        if legacy_contact.is_none() && rights.values().any(|a| *a == Allowance::LegacyContact) {
            r.errors().push(
                contact_path,
                "required",
                "a right left to the legacy contact needs the legacy contact",
            );
        }
        if delete_everything && !rights.is_empty() {
            r.errors().push(
                rights_path,
                "invalid_value",
                "delete_everything already says what relatives may do: leave rights out",
            );
        }
        (r.errors().0.len() == before).then_some(Self {
            legacy_contact,
            rights,
            delete_everything,
        })
    }

    /// The arrangement as stored, or `None` when it cannot be read.
    pub fn from_stored(value: &Value) -> Option<Self> {
        serde_json::from_value(value.clone()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::ValidationErrors;
    use NextOfKinRight::*;

    fn arrangement(rights: &[(&str, Allowance)]) -> Arrangement {
        Arrangement {
            legacy_contact: Some(LegacyContact {
                name: "李梅".to_owned(),
                email: Some(Email::parse("li.mei@example.com").unwrap()),
                phone: None,
            }),
            rights: rights.iter().map(|(k, a)| ((*k).to_owned(), *a)).collect(),
            delete_everything: false,
        }
    }

    #[test]
    fn no_arrangement_allows_every_right() {
        let v = check(None, &[Access, Deletion], None, None);
        assert_eq!(v.outcome, Outcome::Allow);
        assert_eq!(v.granted, [Access, Deletion]);
    }

    #[test]
    fn an_arrangement_allows_limits_or_denies() {
        let a = arrangement(&[("copy", Allowance::Deny), ("access", Allowance::Allow)]);
        assert_eq!(
            check(Some(&a), &[Access, Deletion], None, None).outcome,
            Outcome::Allow
        );
        let v = check(Some(&a), &[Access, Copy], Some("x@example.com"), None);
        assert_eq!(v.outcome, Outcome::Limit);
        assert_eq!(v.granted, [Access]);
        assert_eq!(v.refused[0].why, "denied");
        assert_eq!(check(Some(&a), &[Copy], None, None).outcome, Outcome::Deny);
    }

    #[test]
    fn a_right_left_to_the_legacy_contact_is_theirs_only() {
        let a = arrangement(&[("access", Allowance::LegacyContact)]);
        let v = check(Some(&a), &[Access], Some("someone@example.com"), None);
        assert_eq!(v.refused[0].why, "legacy_contact_only");
        let v = check(Some(&a), &[Access], Some("Li.Mei@example.com"), None);
        assert_eq!(v.outcome, Outcome::Allow);
    }

    #[test]
    fn delete_everything_leaves_only_deletion() {
        let a = Arrangement {
            delete_everything: true,
            ..Arrangement::default()
        };
        let v = check(Some(&a), &[Copy, Deletion], None, None);
        assert_eq!(v.outcome, Outcome::Limit);
        assert_eq!(v.granted, [Deletion]);
        assert_eq!(v.refused[0].why, "delete_everything");
    }

    #[test]
    fn bodies_are_read_and_checked() {
        let read = |body: Value| {
            let mut errors = ValidationErrors::default();
            let mut r = ObjectReader::new(Some(&body), "", false, &mut errors).unwrap();
            let a = Arrangement::read(&mut r);
            r.deny_unknown();
            (
                a,
                errors.0.iter().map(|f| f.field.clone()).collect::<Vec<_>>(),
            )
        };
        let (a, errors) = read(serde_json::json!({
            "legacy_contact": {"name": "李梅", "email": "li.mei@example.com"},
            "rights": {"access": "legacy_contact", "deletion": "allow", "copy": "deny"}
        }));
        assert!(errors.is_empty(), "{errors:?}");
        let a = a.unwrap();
        assert_eq!(a.rights["copy"], Allowance::Deny);
        assert_eq!(
            Arrangement::from_stored(&serde_json::to_value(&a).unwrap()),
            Some(a)
        );
        for (body, field) in [
            (
                serde_json::json!({"rights": {"access": "legacy_contact"}}),
                "legacy_contact",
            ),
            (
                serde_json::json!({"rights": {"gossip": "allow"}}),
                "rights.gossip",
            ),
            (
                serde_json::json!({"rights": {"copy": "maybe"}}),
                "rights.copy",
            ),
            (
                serde_json::json!({"legacy_contact": {"name": "x"}}),
                "legacy_contact.email",
            ),
            (
                serde_json::json!({"delete_everything": true, "rights": {"copy": "deny"}}),
                "rights",
            ),
        ] {
            let (a, errors) = read(body.clone());
            assert!(a.is_none(), "{body}");
            assert!(errors.contains(&field.to_owned()), "{body}: {errors:?}");
        }
    }
}
