//! The purposes the company processes personal data for on the person's consent (SPEC
//! §7, PIPL 15 and 44): what a consent is given for and a `consent_withdrawal` request
//! withdraws or narrows. The bundled catalogue (`data/purposes.toml`) holds the three
//! the policy names (§一.15, §六.4: marketing by text message, phone and email); a sources
//! file may add purposes or restate one.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::categories::is_key;

/// One purpose of processing based on consent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Purpose {
    /// `[a-z][a-z0-9_]*`, at most 40 bytes.
    pub key: String,
    pub title_zh: String,
    pub title_en: String,
    /// What the company does with the data for it.
    pub description_zh: String,
    pub description_en: String,
    /// Where the policy says so (e.g. `一.15`), when it does.
    #[serde(default)]
    pub policy: Option<String>,
}

/// The purposes known, by key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Purposes(BTreeMap<String, Purpose>);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PurposesFile {
    #[serde(default)]
    purpose: Vec<Purpose>,
}

impl Purposes {
    /// The seed company's purposes (`crates/domain/data/purposes.toml`).
    pub fn bundled() -> Self {
        let file: PurposesFile = toml::from_str(include_str!("../data/purposes.toml"))
            .expect("the bundled purposes are valid TOML");
        let mut purposes = Self::default();
        purposes
            .extend(file.purpose)
            .expect("the bundled purposes are valid");
        purposes
    }

    /// Adds purposes, replacing those with the same key; every problem is reported.
    pub fn extend(&mut self, purposes: Vec<Purpose>) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        for p in purposes {
            if !is_key(&p.key) {
                problems.push(format!(
                    "purpose {:?}: the key must be lower-case letters, digits and _, starting with a letter, at most 40 bytes",
                    p.key
                ));
                continue;
            }
            for (field, value) in [
                ("title_zh", &p.title_zh),
                ("title_en", &p.title_en),
                ("description_zh", &p.description_zh),
                ("description_en", &p.description_en),
            ] {
                if value.trim().is_empty() {
                    problems.push(format!("purpose {}: {field} is empty", p.key));
                }
            }
            self.0.insert(p.key.clone(), p);
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    pub fn get(&self, key: &str) -> Option<&Purpose> {
        self.0.get(key)
    }

    pub fn contains(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Purpose> {
        self.0.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_purposes_are_the_policys_marketing_channels() {
        let p = Purposes::bundled();
        let keys: Vec<&str> = p.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            ["marketing_email", "marketing_phone", "marketing_sms"]
        );
        assert_eq!(
            p.get("marketing_sms").unwrap().policy.as_deref(),
            Some("一.15")
        );
    }

    #[test]
    fn a_purpose_is_restated_or_refused() {
        let mut p = Purposes::bundled();
        let mut sms = p.get("marketing_sms").unwrap().clone();
        sms.title_en = "Text messages".to_owned();
        p.extend(vec![sms]).unwrap();
        assert_eq!(p.get("marketing_sms").unwrap().title_en, "Text messages");
        let bad = Purpose {
            key: "Bad Key".to_owned(),
            title_zh: String::new(),
            ..p.get("marketing_sms").unwrap().clone()
        };
        let problems = p.extend(vec![bad]).unwrap_err();
        assert!(problems[0].contains("the key must be"), "{problems:?}");
    }
}
