//! rightsdesk's export bundles (SPEC §7): the zip a subject receives for an access, copy or
//! portability request, and its verifier.
//!
//! This crate knows nothing of databases, HTTP or the request workflow. The caller declares the
//! sources it searched ([`BundleWriter::add_source`]), feeds their records
//! ([`BundleWriter::add_record`]) and attachments ([`BundleWriter::add_file`]) as they arrive, and
//! [`finish`](BundleWriter::finish)es. The API is synchronous: run it on a blocking thread and feed
//! it through a channel. Records and files are spooled to disk under a caller-given work directory
//! as they arrive and streamed into the zip at the end, so memory stays flat whatever the number of
//! rows. [`verify`] checks a bundle against its manifest.
//!
//! # The layout of a bundle
//!
//! ```text
//! index.html                         for a person: Chinese and English, no script, no external resource
//! data/<source>/<category>.json      the category's records: a JSON array of objects
//! data/<source>/<category>.csv       the same records as CSV (UTF-8 with BOM, CRLF, RFC 4180)
//! files/<source>/<file name>         attachments: recordings, certificates, …
//! manifest.json                      last: what the bundle answers, and every other entry's SHA-256
//! ```
//!
//! Entries come in a fixed order: `index.html`, then the data files (sources by name, categories by
//! key, JSON before CSV), then the attachments (sources by name, files by name), then
//! `manifest.json`. A category without records has no data files (the index says "none"); a
//! source without any data is listed in the index as such, and a bundle without any data says
//! "we found no personal data about you in these systems".
//!
//! - **JSON** files hold the records as given, one object per record, indented.
//! - **CSV** files have a header row that is the union of the records' keys: the category's
//!   declared [`columns`](CategoryInfo::columns) that occur, then the other keys in the order first
//!   seen (within a record, `serde_json::Map`'s order, which in this workspace is sorted). A
//!   missing key and `null` are empty cells; strings are written as they are; numbers and booleans
//!   as JSON writes them; arrays and objects as JSON text. The file starts with a UTF-8 byte-order
//!   mark, which Excel needs to read UTF-8 (without it, Chinese Windows reads GBK and garbles the
//!   text); other CSV readers ignore or strip it. Values are not altered in any way, including
//!   those that begin with `=`, `+`, `-` or `@`: the CSV is the subject's own data, exact.
//! - **Attachment names** are made safe: only the last path component is kept, control and
//!   bidirectional-override characters are dropped, `<>:"|?*` become `_`, leading and trailing
//!   dots and spaces go, Windows device names get a `_` prefix, long names are cut to 120 bytes,
//!   an empty name becomes `file`, and a name already taken in the source (ignoring case) gets
//!   ` (2)`, ` (3)`, … before its extension.
//! - **`manifest.json`** ([`Manifest`]): `format` (`rightsdesk-bundle/1`), `reference`,
//!   `request_kind`, `subject_identifiers`, `created_at`, `language`, `sources` (each with its
//!   status, categories, row counts and paths) and `files`: `{path, size, sha256}` for every other
//!   entry, hashes over the uncompressed content, so `unzip` + `sha256sum` can check them.
//!
//! Entries are deflate-compressed. With a [`Password`], every entry, the manifest included, is
//! encrypted with WinZip AES-256 (AE-2), which 7-Zip, WinRAR, Keka, The Unarchiver and `bsdtar`
//! read (Windows Explorer, macOS's Archive Utility and Info-ZIP `unzip` do not). [`generate_password`] makes one that
//! can go by SMS. See `docs/bundles.md` for the user-facing reference.

#![warn(missing_docs)]

mod error;
mod html;
mod manifest;
mod model;
mod names;
mod verify;
mod writer;

pub use error::ExportError;
pub use manifest::{FORMAT, Manifest, ManifestCategory, ManifestFile, ManifestSource};
pub use model::{
    BundleMeta, CategoryInfo, Identifier, IdentifierKind, Lang, Password, SourceInfo, SourceStatus,
    generate_password,
};
pub use verify::{Mismatch, MismatchProblem, VerifyReport, verify};
pub use writer::BundleWriter;
