//! The rights a request can exercise (SPEC §1) and the details each kind carries.

use std::str::FromStr;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::contact::{Email, Phone};
use crate::reference::Reference;
use crate::validation::{ObjectReader, ValidationErrors, limits};

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ::serde::Serialize, ::serde::Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(format!(
                        "must be one of {}",
                        [$($text),+].join(", ")
                    )),
                }
            }
        }
    };
}
pub(crate) use string_enum;

string_enum! {
    /// A right under PIPL articles 44–50.
    RequestKind {
        Access = "access",
        Copy = "copy",
        Portability = "portability",
        Correction = "correction",
        ConsentWithdrawal = "consent_withdrawal",
        Deletion = "deletion",
        AccountClosure = "account_closure",
        NextOfKin = "next_of_kin",
        Explanation = "explanation",
        Complaint = "complaint",
    }
}

string_enum! {
    /// How a request reached the company.
    Channel {
        Api = "api",
        Email = "email",
        Phone = "phone",
        Post = "post",
        InPerson = "in_person",
    }
}

string_enum! {
    /// A close relative under PIPL 49 (近亲属).
    Relationship {
        Spouse = "spouse",
        Parent = "parent",
        Child = "child",
        Sibling = "sibling",
        Grandparent = "grandparent",
        Grandchild = "grandchild",
    }
}

string_enum! {
    /// The rights a relative may exercise over a deceased person's data.
    NextOfKinRight {
        Access = "access",
        Copy = "copy",
        Correction = "correction",
        Deletion = "deletion",
    }
}

string_enum! {
    /// Whether a consent withdrawal removes a purpose or narrows it.
    ConsentChange {
        Withdraw = "withdraw",
        Narrow = "narrow",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<Email>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    pub new_value: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deceased {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<Email>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<Phone>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date_of_death: Option<NaiveDate>,
}

/// The kind-specific part of a request, validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Details {
    Access {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        categories: Vec<String>,
        /// The requester asks for the zip to be encrypted, its password sent separately
        /// (`bundles.password = "on_request"`).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        bundle_password: bool,
    },
    Copy {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        categories: Vec<String>,
        /// The requester asks for the zip to be encrypted, its password sent separately
        /// (`bundles.password = "on_request"`).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        bundle_password: bool,
    },
    Portability {
        recipient: Recipient,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        categories: Vec<String>,
        /// The requester asks for the zip to be encrypted, its password sent separately
        /// (`bundles.password = "on_request"`).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        bundle_password: bool,
    },
    Correction {
        changes: Vec<FieldChange>,
    },
    ConsentWithdrawal {
        purposes: Vec<String>,
        change: ConsentChange,
        #[serde(skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    Deletion {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        categories: Vec<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    AccountClosure {
        #[serde(skip_serializing_if = "Option::is_none")]
        account_id: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    NextOfKin {
        relationship: Relationship,
        deceased: Deceased,
        rights: Vec<NextOfKinRight>,
        lawful_interest: String,
        /// With the `correction` right: the changes to the deceased's data.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        changes: Vec<FieldChange>,
    },
    Explanation {
        #[serde(skip_serializing_if = "Option::is_none")]
        question: Option<String>,
    },
    Complaint {
        about_reference: Reference,
        description: String,
    },
}

/// An identifier such as a data category or a purpose: `marketing_sms`.
fn identifier(s: &str) -> Result<String, (&'static str, String)> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.as_bytes()[0].is_ascii_lowercase()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(s.to_owned())
    } else {
        Err((
            "invalid_identifier",
            "must be a lower-case identifier such as marketing_sms (a-z, 0-9, _; at most 64)"
                .to_owned(),
        ))
    }
}

fn parse_enum<T: FromStr<Err = String>>(s: &str) -> Result<T, (&'static str, String)> {
    s.parse().map_err(|m| ("invalid_value", m))
}

fn read_enum<T: FromStr<Err = String>>(r: &mut ObjectReader<'_>, name: &str) -> Option<T> {
    let path = r.field_path(name);
    let raw = r.string(name, true, limits::SHORT_TEXT)?;
    match raw.parse() {
        Ok(v) => Some(v),
        Err(message) => {
            r.errors().push(path, "invalid_value", message);
            None
        }
    }
}

fn read_parsed<T>(
    r: &mut ObjectReader<'_>,
    name: &str,
    required: bool,
    parse: impl Fn(&str) -> Result<T, (&'static str, String)>,
) -> Result<Option<T>, ()> {
    let path = r.field_path(name);
    let Some(raw) = r.string(name, required, limits::SHORT_TEXT) else {
        return if required { Err(()) } else { Ok(None) };
    };
    match parse(&raw) {
        Ok(v) => Ok(Some(v)),
        Err((code, message)) => {
            r.errors().push(path, code, message);
            Err(())
        }
    }
}

fn categories(r: &mut ObjectReader<'_>) -> Option<Vec<String>> {
    Some(
        r.string_list("categories", false, identifier)
            .unwrap_or_default(),
    )
}

impl Details {
    /// Validates `value` (the `details` member of a filing) for `kind`, recording every
    /// problem under `details.`. Unknown members are refused.
    pub fn read(
        kind: RequestKind,
        value: Option<&Value>,
        errors: &mut ValidationErrors,
    ) -> Option<Self> {
        let optional = matches!(
            kind,
            RequestKind::Access
                | RequestKind::Copy
                | RequestKind::Deletion
                | RequestKind::AccountClosure
                | RequestKind::Explanation
        );
        let mut r = ObjectReader::new(value, "details", optional, errors)?;
        let before = r.errors().0.len();
        let details = match kind {
            RequestKind::Access => {
                let bundle_password = r.flag("bundle_password");
                categories(&mut r).map(|categories| Self::Access {
                    categories,
                    bundle_password,
                })
            }
            RequestKind::Copy => {
                let bundle_password = r.flag("bundle_password");
                categories(&mut r).map(|categories| Self::Copy {
                    categories,
                    bundle_password,
                })
            }
            RequestKind::Portability => {
                let recipient = read_recipient(&mut r);
                let categories = categories(&mut r);
                let bundle_password = r.flag("bundle_password");
                recipient
                    .zip(categories)
                    .map(|(recipient, categories)| Self::Portability {
                        recipient,
                        categories,
                        bundle_password,
                    })
            }
            RequestKind::Correction => {
                read_changes(&mut r).map(|changes| Self::Correction { changes })
            }
            RequestKind::ConsentWithdrawal => {
                let purposes = r.string_list("purposes", true, identifier);
                let change = match read_parsed(&mut r, "change", false, parse_enum::<ConsentChange>)
                {
                    Ok(c) => Some(c.unwrap_or(ConsentChange::Withdraw)),
                    Err(()) => None,
                };
                let note_path = r.field_path("note");
                let note = r.string("note", false, limits::LONG_TEXT);
                if change == Some(ConsentChange::Narrow) && note.is_none() {
                    r.errors().push(
                        note_path,
                        "required",
                        "a narrowing says, in `note`, what the consent still covers",
                    );
                }
                match (purposes, change) {
                    (Some(purposes), Some(change)) => Some(Self::ConsentWithdrawal {
                        purposes,
                        change,
                        note,
                    }),
                    _ => None,
                }
            }
            RequestKind::Deletion => {
                let categories = categories(&mut r);
                let reason = r.string("reason", false, limits::LONG_TEXT);
                categories.map(|categories| Self::Deletion { categories, reason })
            }
            RequestKind::AccountClosure => {
                let account_id = r.string("account_id", false, limits::SHORT_TEXT);
                let reason = r.string("reason", false, limits::LONG_TEXT);
                Some(Self::AccountClosure { account_id, reason })
            }
            RequestKind::NextOfKin => {
                let relationship = read_enum::<Relationship>(&mut r, "relationship");
                let deceased = read_deceased(&mut r);
                let rights = r.string_list("rights", true, parse_enum::<NextOfKinRight>);
                let lawful_interest = r.string("lawful_interest", true, limits::LONG_TEXT);
                // The correction right names the changes, as a correction request does.
                let changes = if rights
                    .as_ref()
                    .is_some_and(|r| r.contains(&NextOfKinRight::Correction))
                {
                    read_changes(&mut r)
                } else {
                    Some(Vec::new())
                };
                match (relationship, deceased, rights, lawful_interest, changes) {
                    (
                        Some(relationship),
                        Some(deceased),
                        Some(mut rights),
                        Some(lawful_interest),
                        Some(changes),
                    ) => {
                        rights.sort_by_key(|r| r.as_str());
                        rights.dedup();
                        Some(Self::NextOfKin {
                            relationship,
                            deceased,
                            rights,
                            lawful_interest,
                            changes,
                        })
                    }
                    _ => None,
                }
            }
            RequestKind::Explanation => {
                let question = r.string("question", false, limits::LONG_TEXT);
                Some(Self::Explanation { question })
            }
            RequestKind::Complaint => {
                let about = read_parsed(&mut r, "about_reference", true, |s| {
                    s.parse::<Reference>()
                        .map_err(|e| ("invalid_reference", e.to_string()))
                });
                let description = r.string("description", true, limits::LONG_TEXT);
                match (about, description) {
                    (Ok(Some(about_reference)), Some(description)) => Some(Self::Complaint {
                        about_reference,
                        description,
                    }),
                    _ => None,
                }
            }
        };
        let clean = r.errors().0.len() == before;
        r.deny_unknown();
        details.filter(|_| clean)
    }

    /// The stored JSON form (without the kind, which is stored beside it).
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Reads details that were validated before they were stored.
    pub fn from_stored(kind: RequestKind, value: &Value) -> Option<Self> {
        let mut errors = ValidationErrors::default();
        Self::read(kind, Some(value), &mut errors)
    }
}

fn read_recipient(r: &mut ObjectReader<'_>) -> Option<Recipient> {
    let value = r.take("recipient");
    let path = r.field_path("recipient");
    let mut n = ObjectReader::new(value.as_ref(), &path, false, r.errors())?;
    let name = n.string("name", true, limits::NAME);
    let email = read_parsed(&mut n, "email", false, Email::parse);
    let endpoint = read_parsed(&mut n, "endpoint", false, |s| {
        let lower = s.to_ascii_lowercase();
        if (lower.starts_with("https://") || lower.starts_with("http://"))
            && s.len() <= 2_000
            && !s.chars().any(char::is_whitespace)
            && s.split("://").nth(1).is_some_and(|rest| !rest.is_empty())
        {
            Ok(s.to_owned())
        } else {
            Err(("invalid_url", "must be an http(s) URL".to_owned()))
        }
    });
    if matches!((&email, &endpoint), (Ok(None), Ok(None))) {
        let p = n.field_path("email");
        n.errors().push(
            p,
            "contact_required",
            "the recipient needs an email or an endpoint",
        );
    }
    n.deny_unknown();
    Some(Recipient {
        name: name?,
        email: email.ok()?,
        endpoint: endpoint.ok()?,
    })
}

fn read_changes(r: &mut ObjectReader<'_>) -> Option<Vec<FieldChange>> {
    let path = r.field_path("changes");
    let items = r.array("changes", true)?;
    let mut out = Vec::with_capacity(items.len());
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let item_path = format!("{path}[{i}]");
        let Some(mut c) = ObjectReader::new(Some(item), &item_path, false, r.errors()) else {
            ok = false;
            continue;
        };
        let field = c.string("field", true, 100);
        let new_value = c.string("new_value", true, 2_000);
        let reason = c.string("reason", false, limits::LONG_TEXT);
        c.deny_unknown();
        match (field, new_value) {
            (Some(field), Some(new_value)) => out.push(FieldChange {
                field,
                new_value,
                reason,
            }),
            _ => ok = false,
        }
    }
    ok.then_some(out)
}

fn read_deceased(r: &mut ObjectReader<'_>) -> Option<Deceased> {
    let value = r.take("deceased");
    let path = r.field_path("deceased");
    let mut d = ObjectReader::new(value.as_ref(), &path, false, r.errors())?;
    let name = d.string("name", true, limits::NAME);
    let email = read_parsed(&mut d, "email", false, Email::parse);
    let phone = read_parsed(&mut d, "phone", false, Phone::parse);
    let account_id = d.string("account_id", false, limits::SHORT_TEXT);
    let date_of_death = read_parsed(&mut d, "date_of_death", false, |s| {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
            (
                "invalid_date",
                "must be a date such as 2026-03-01".to_owned(),
            )
        })
    });
    if matches!((&email, &phone), (Ok(None), Ok(None))) && account_id.is_none() {
        let p = d.field_path("email");
        d.errors().push(
            p,
            "identifier_required",
            "name at least one identifier of the deceased: email, phone or account_id",
        );
    }
    d.deny_unknown();
    Some(Deceased {
        name: name?,
        email: email.ok()?,
        phone: phone.ok()?,
        account_id,
        date_of_death: date_of_death.ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(kind: RequestKind, value: Value) -> Result<Details, Vec<(String, &'static str)>> {
        let mut errors = ValidationErrors::default();
        let d = Details::read(kind, Some(&value), &mut errors);
        match d {
            Some(d) if errors.is_empty() => Ok(d),
            _ => Err(errors.0.into_iter().map(|e| (e.field, e.code)).collect()),
        }
    }

    #[test]
    fn simple_kinds_need_no_details() {
        for kind in [
            RequestKind::Access,
            RequestKind::Copy,
            RequestKind::Deletion,
            RequestKind::AccountClosure,
            RequestKind::Explanation,
        ] {
            let mut errors = ValidationErrors::default();
            assert!(Details::read(kind, None, &mut errors).is_some(), "{kind}");
        }
    }

    #[test]
    fn correction_names_fields_and_values() {
        let ok = read(
            RequestKind::Correction,
            json!({"changes": [{"field": "address", "new_value": "上海市"}]}),
        );
        assert!(ok.is_ok());
        let err = read(
            RequestKind::Correction,
            json!({"changes": [{"field": "address"}, 3]}),
        )
        .unwrap_err();
        assert_eq!(
            err,
            vec![
                ("details.changes[0].new_value".to_owned(), "required"),
                ("details.changes[1]".to_owned(), "invalid_type"),
            ]
        );
        assert_eq!(
            read(RequestKind::Correction, json!({"changes": []})).unwrap_err()[0].1,
            "required"
        );
    }

    #[test]
    fn consent_withdrawal_names_purposes() {
        let d = read(
            RequestKind::ConsentWithdrawal,
            json!({"purposes": ["marketing_sms"]}),
        )
        .unwrap();
        assert!(matches!(
            d,
            Details::ConsentWithdrawal {
                change: ConsentChange::Withdraw,
                ..
            }
        ));
        assert_eq!(
            read(
                RequestKind::ConsentWithdrawal,
                json!({"purposes": ["Marketing SMS"]})
            )
            .unwrap_err(),
            vec![("details.purposes[0]".to_owned(), "invalid_identifier")]
        );
        assert_eq!(
            read(RequestKind::ConsentWithdrawal, json!({})).unwrap_err()[0].0,
            "details.purposes"
        );
    }

    #[test]
    fn portability_names_the_recipient() {
        assert!(
            read(
                RequestKind::Portability,
                json!({"recipient": {"name": "B Corp", "email": "dpo@b.example.com"}})
            )
            .is_ok()
        );
        let err = read(
            RequestKind::Portability,
            json!({"recipient": {"name": "B Corp"}}),
        )
        .unwrap_err();
        assert_eq!(
            err,
            vec![("details.recipient.email".to_owned(), "contact_required")]
        );
        let err = read(RequestKind::Portability, json!({})).unwrap_err();
        assert_eq!(err, vec![("details.recipient".to_owned(), "required")]);
    }

    #[test]
    fn next_of_kin_names_relationship_and_deceased() {
        let good = json!({
            "relationship": "child",
            "deceased": {"name": "王芳", "phone": "13812345678", "date_of_death": "2026-01-02"},
            "rights": ["access", "deletion"],
            "lawful_interest": "整理遗物"
        });
        assert!(read(RequestKind::NextOfKin, good).is_ok());
        let err = read(
            RequestKind::NextOfKin,
            json!({"relationship": "friend", "deceased": {"name": "王芳"}, "rights": ["sell"]}),
        )
        .unwrap_err();
        let fields: Vec<_> = err.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "details.relationship",
                "details.deceased.email",
                "details.rights[0]",
                "details.lawful_interest"
            ]
        );
    }

    #[test]
    fn complaint_names_the_request() {
        assert!(
            read(
                RequestKind::Complaint,
                json!({"about_reference": "PR-2026-000001", "description": "no answer"})
            )
            .is_ok()
        );
        let err = read(
            RequestKind::Complaint,
            json!({"about_reference": "12", "description": "x"}),
        )
        .unwrap_err();
        assert_eq!(
            err,
            vec![("details.about_reference".to_owned(), "invalid_reference")]
        );
    }

    #[test]
    fn unknown_members_are_refused() {
        let err = read(
            RequestKind::Access,
            json!({"categories": ["account"], "sql": "drop"}),
        )
        .unwrap_err();
        assert_eq!(err, vec![("details.sql".to_owned(), "unknown_field")]);
    }

    #[test]
    fn stored_details_read_back() {
        let d = read(
            RequestKind::Correction,
            json!({"changes": [{"field": "name", "new_value": "李雷"}]}),
        )
        .unwrap();
        assert_eq!(
            Details::from_stored(RequestKind::Correction, &d.to_json()),
            Some(d)
        );
    }
}
