//! `manifest.json`: what a bundle holds, and the SHA-256 of every other entry.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{Identifier, Lang, SourceStatus};

/// The `format` of the manifests this crate writes.
pub const FORMAT: &str = "rightsdesk-bundle/1";

/// The contents of `manifest.json`, the last entry of a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT`] (`rightsdesk-bundle/1`) for this version.
    pub format: String,
    /// The request's reference.
    pub reference: String,
    /// The request kind.
    pub request_kind: String,
    /// The identifiers the data was looked up with.
    pub subject_identifiers: Vec<Identifier>,
    /// When the bundle was made.
    pub created_at: DateTime<Utc>,
    /// The language `index.html` shows first.
    pub language: Lang,
    /// Every source searched, sorted by name.
    pub sources: Vec<ManifestSource>,
    /// Every entry of the bundle but `manifest.json` itself, in the archive's order.
    pub files: Vec<ManifestFile>,
}

/// A source as recorded in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestSource {
    /// The source's key.
    pub name: String,
    /// Its name in Chinese.
    pub display_name_zh: String,
    /// Its name in English.
    pub display_name_en: String,
    /// Who is responsible for it.
    pub owner: String,
    /// How it answered: `{"status": "answered"}`, `{"status": "no_data"}` or
    /// `{"status": "failed", "reason": "…"}`, flattened into this object.
    #[serde(flatten)]
    pub status: SourceStatus,
    /// Its categories, sorted by key.
    pub categories: Vec<ManifestCategory>,
    /// The paths of its attachments (`files/<source>/<name>`), sorted.
    pub attachments: Vec<String>,
}

/// A category as recorded in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestCategory {
    /// The category's key.
    pub key: String,
    /// Its title in Chinese.
    pub title_zh: String,
    /// Its title in English.
    pub title_en: String,
    /// Its purpose in Chinese, as the policy states it.
    pub purpose_zh: String,
    /// Its purpose in English.
    pub purpose_en: String,
    /// How many records it has (rows of its CSV, elements of its JSON array).
    pub rows: u64,
    /// The path of its JSON file, when it has records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<String>,
    /// The path of its CSV file, when it has records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csv: Option<String>,
}

/// One entry of the bundle: its path, its size in bytes (uncompressed) and the SHA-256 of its
/// content, in lower-case hex (what `sha256sum` prints).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// The entry's path in the zip.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// The SHA-256 of its content.
    pub sha256: String,
}
