//! The categories of personal data the company holds (SPEC §7, policy §一): a key that
//! sources declare and bundles use as a file name, a title and the purpose the policy
//! states, in Chinese and English. The bundled catalogue (`data/categories.toml`) is the
//! seed company's; a sources file may add or restate categories.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One category of personal data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Category {
    /// `[a-z][a-z0-9_]*`, at most 40 bytes: a file name in bundles.
    pub key: String,
    pub title_zh: String,
    pub title_en: String,
    /// Why the company processes it, as the privacy policy says.
    pub purpose_zh: String,
    pub purpose_en: String,
    /// Where the policy says so (e.g. `一.3`), when it does.
    #[serde(default)]
    pub policy: Option<String>,
}

/// The categories known, by key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalogue(BTreeMap<String, Category>);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogueFile {
    #[serde(default)]
    category: Vec<Category>,
}

impl Catalogue {
    /// The seed company's catalogue (`crates/domain/data/categories.toml`).
    pub fn bundled() -> Self {
        Self::from_toml(include_str!("../data/categories.toml"))
            .expect("the bundled category catalogue is valid")
    }

    /// Reads `[[category]]` entries; every problem is reported.
    pub fn from_toml(text: &str) -> Result<Self, Vec<String>> {
        let file: CatalogueFile = toml::from_str(text).map_err(|e| vec![e.to_string()])?;
        let mut catalogue = Self::default();
        catalogue.extend(file.category)?;
        Ok(catalogue)
    }

    /// Adds categories, replacing those with the same key.
    pub fn extend(&mut self, categories: Vec<Category>) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        for c in categories {
            if !is_key(&c.key) {
                problems.push(format!(
                    "category {:?}: the key must be lower-case letters, digits and _, starting with a letter, at most 40 bytes",
                    c.key
                ));
                continue;
            }
            for (field, value) in [
                ("title_zh", &c.title_zh),
                ("title_en", &c.title_en),
                ("purpose_zh", &c.purpose_zh),
                ("purpose_en", &c.purpose_en),
            ] {
                if value.trim().is_empty() {
                    problems.push(format!("category {}: {field} is empty", c.key));
                }
            }
            self.0.insert(c.key.clone(), c);
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    pub fn get(&self, key: &str) -> Option<&Category> {
        self.0.get(key)
    }

    pub fn contains(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Category> {
        self.0.values()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A category key or a source name: `[a-z][a-z0-9_]*`, at most 40 bytes (a folder or
/// file name in bundles, safe everywhere).
pub fn is_key(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z'))
        && s.len() <= 40
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_catalogue_covers_the_policy() {
        let c = Catalogue::bundled();
        for key in [
            "account",
            "partner_portal",
            "downloads",
            "consultations",
            "surveys",
            "events",
            "training",
            "compatibility_certification",
            "trials",
            "tickets",
            "business_opportunities",
            "feedback",
            "marketing",
            "forum",
            "access_logs",
        ] {
            assert!(c.contains(key), "{key}");
        }
        assert_eq!(c.len(), 15);
    }

    #[test]
    fn keys_are_safe_names() {
        assert!(is_key("access_logs"));
        assert!(!is_key("Access"));
        assert!(!is_key("../x"));
        assert!(!is_key("1st"));
        assert!(!is_key(""));
        assert!(!is_key(&"a".repeat(41)));
    }

    #[test]
    fn a_bad_category_is_reported() {
        let e = Catalogue::from_toml(
            "[[category]]\nkey = \"Bad Key\"\ntitle_zh = \"x\"\ntitle_en = \"x\"\npurpose_zh = \"x\"\npurpose_en = \"\"\n",
        )
        .expect_err("refused");
        assert_eq!(e.len(), 1, "{e:?}");
        let e = Catalogue::from_toml(
            "[[category]]\nkey = \"ok\"\ntitle_zh = \"x\"\ntitle_en = \"x\"\npurpose_zh = \"x\"\npurpose_en = \" \"\n",
        )
        .expect_err("refused");
        assert!(e[0].contains("purpose_en"), "{e:?}");
    }
}
