//! The crate's one error type.

use std::path::PathBuf;

/// What can go wrong while writing or verifying a bundle.
///
/// Messages are stable and never contain personal data: they name source and category keys (which
/// come from configuration) but never a record value, an identifier or an attachment's name.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// Reading or writing the spool, an attachment's reader, or the output failed.
    #[error("export I/O failed: {0}")]
    Io(#[from] std::io::Error),
    /// The zip library refused to write or read an entry.
    #[error("zip archive error: {0}")]
    Zip(#[from] zip::result::ZipError),
    /// A record or the manifest could not be (de)serialised.
    #[error("JSON error: {0}")]
    Json(#[from] serde_json::Error),
    /// A CSV file could not be written.
    #[error("CSV error: {0}")]
    Csv(#[from] csv::Error),
    /// A source name or category key is not a safe path segment.
    #[error(
        "invalid {what} {key:?}: use 1 to 64 ASCII letters, digits, '_' or '-', starting with a letter or digit"
    )]
    InvalidKey {
        /// `"source name"` or `"category key"`.
        what: &'static str,
        /// The offending key.
        key: String,
    },
    /// `add_source` was called twice for one name (compared without regard to case, since a bundle
    /// may be unpacked on a case-insensitive file system).
    #[error("source {0:?} was added twice")]
    DuplicateSource(String),
    /// A source declares the same category twice.
    #[error("source {source_name:?} declares category {category:?} twice")]
    DuplicateCategory {
        /// The source.
        source_name: String,
        /// The repeated category key.
        category: String,
    },
    /// A record, file or status names a source that was never added.
    #[error("unknown source {0:?}: add it with add_source first")]
    UnknownSource(String),
    /// A record names a category its source does not declare.
    #[error("source {source_name:?} declares no category {category:?}")]
    UnknownCategory {
        /// The source.
        source_name: String,
        /// The undeclared category key.
        category: String,
    },
    /// Records or files were added to a source whose status says it holds no data, or the status
    /// was set to `no_data` after records or files were added.
    #[error("source {0:?} is marked no_data but has records or files")]
    NoDataSourceHasData(String),
    /// An earlier spool write failed, so the spool may hold a partial record; the bundle can't
    /// be finished.
    #[error("an earlier write to the spool failed; this bundle can't be finished")]
    SpoolBroken,
    /// `finish` would overwrite an existing file.
    #[error("the output file already exists: {0}")]
    OutputExists(PathBuf),
    /// An empty password was given.
    #[error("the bundle password is empty")]
    EmptyPassword,
    /// The bundle is encrypted and no password was given.
    #[error("the bundle is encrypted: a password is required")]
    PasswordRequired,
    /// The password does not open the bundle (or, what AES cannot tell apart, the encrypted
    /// manifest was altered).
    #[error("the password is wrong, or the encrypted manifest was altered")]
    WrongPassword,
    /// The file is not a readable zip, has no `manifest.json`, or its manifest is not a rightsdesk
    /// bundle manifest.
    #[error("not a rightsdesk bundle: {0}")]
    NotABundle(String),
}
