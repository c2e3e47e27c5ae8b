//! [`verify`]: reads every entry of a bundle and checks it against `manifest.json`.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek};
use std::path::Path;

use serde::de::{Deserializer as _, IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zip::ZipArchive;
use zip::result::ZipError;

use crate::ExportError;
use crate::manifest::{FORMAT, Manifest};

/// The largest `manifest.json` read (a manifest lists paths and hashes: a few hundred bytes per
/// entry).
const MAX_MANIFEST_BYTES: u64 = 64 * 1024 * 1024;

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    /// The bundle's manifest, as read.
    pub manifest: Manifest,
    /// Whether every entry, the manifest included, is encrypted.
    pub encrypted: bool,
    /// How many entries listed in the manifest were read and matched.
    pub entries_ok: usize,
    /// Entries the manifest lists that the archive lacks.
    pub missing: Vec<String>,
    /// Entries the archive holds that the manifest doesn't list.
    pub extra: Vec<String>,
    /// Entries whose content does not match the manifest, or that could not be read.
    pub mismatched: Vec<Mismatch>,
    /// Whether the manifest itself is complete and consistent: it lists `index.html` and every
    /// data file and attachment its sources name (and nothing else), each path once, with the
    /// row counts the data files really have.
    pub manifest_complete: bool,
    /// What is wrong with the manifest itself, when `manifest_complete` is false.
    pub manifest_problems: Vec<String>,
    /// Problems of the archive as a whole (e.g. two entries with one name).
    pub archive_problems: Vec<String>,
}

/// An entry that does not match the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mismatch {
    /// The entry's path.
    pub path: String,
    /// What is wrong with it.
    pub problem: MismatchProblem,
}

/// What is wrong with an entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum MismatchProblem {
    /// Its size differs from the manifest's.
    Size {
        /// The manifest's size.
        expected: u64,
        /// The entry's size.
        actual: u64,
    },
    /// Its SHA-256 differs from the manifest's.
    Sha256 {
        /// The manifest's hash.
        expected: String,
        /// The entry's hash.
        actual: String,
    },
    /// It could not be read to the end: a broken checksum, a failed AES authentication, a
    /// corrupt compressed stream.
    Unreadable {
        /// The reader's error.
        error: String,
    },
    /// The bundle is encrypted (a password was given) but this entry is not: it was put there
    /// afterwards.
    NotEncrypted,
}

impl VerifyReport {
    /// True when nothing is missing, extra, mismatched or inconsistent.
    pub fn is_ok(&self) -> bool {
        self.missing.is_empty()
            && self.extra.is_empty()
            && self.mismatched.is_empty()
            && self.manifest_problems.is_empty()
            && self.archive_problems.is_empty()
    }

    /// Every problem, one line each, for a person.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        out.extend(self.missing.iter().map(|p| format!("{p}: missing")));
        out.extend(
            self.extra
                .iter()
                .map(|p| format!("{p}: not in the manifest")),
        );
        out.extend(self.mismatched.iter().map(Mismatch::to_string));
        out.extend(
            self.manifest_problems
                .iter()
                .map(|p| format!("manifest: {p}")),
        );
        out.extend(
            self.archive_problems
                .iter()
                .map(|p| format!("archive: {p}")),
        );
        out
    }
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.problem {
            MismatchProblem::Size { expected, actual } => write!(
                f,
                "{}: {actual} bytes, the manifest says {expected}",
                self.path
            ),
            MismatchProblem::Sha256 { expected, actual } => write!(
                f,
                "{}: SHA-256 {actual}, the manifest says {expected}",
                self.path
            ),
            MismatchProblem::Unreadable { error } => {
                write!(f, "{}: unreadable ({error})", self.path)
            }
            MismatchProblem::NotEncrypted => {
                write!(f, "{}: not encrypted in an encrypted bundle", self.path)
            }
        }
    }
}

/// Verifies a bundle: reads every entry (decrypting with `password` when the bundle is
/// encrypted), recomputes its size and SHA-256, compares them with `manifest.json`, counts the
/// rows of every data file, and checks that the manifest is complete.
///
/// Returns an error only when the bundle can't be checked at all: not a zip, no readable
/// manifest, encrypted without a password ([`ExportError::PasswordRequired`]), or a wrong password
/// ([`ExportError::WrongPassword`]). Everything else is reported. Memory stays flat: entries are
/// streamed through the hash.
pub fn verify(path: &Path, password: Option<&str>) -> Result<VerifyReport, ExportError> {
    let file = File::open(path)?;
    let mut zip = ZipArchive::new(BufReader::new(file))
        .map_err(|e| ExportError::NotABundle(format!("not a readable zip archive ({e})")))?;

    let manifest_index = zip
        .index_for_name("manifest.json")
        .ok_or_else(|| ExportError::NotABundle("it has no manifest.json".to_owned()))?;
    let manifest_encrypted = zip.by_index_data(manifest_index)?.encrypted();
    if manifest_encrypted && password.is_none() {
        return Err(ExportError::PasswordRequired);
    }
    let mut text = Vec::new();
    {
        let entry =
            open(&mut zip, manifest_index, manifest_encrypted, password).map_err(|e| match e {
                ZipError::InvalidPassword => ExportError::WrongPassword,
                e => ExportError::NotABundle(format!("manifest.json is unreadable ({e})")),
            })?;
        // AES-256 in zip checks a password on 2 bytes only: about 1 wrong password in
        // 65,536 passes that check and fails the entry's authentication instead.
        // Authenticated encryption cannot tell that from an altered manifest.
        entry
            .take(MAX_MANIFEST_BYTES)
            .read_to_end(&mut text)
            .map_err(|e| {
                if manifest_encrypted {
                    ExportError::WrongPassword
                } else {
                    ExportError::NotABundle(format!("manifest.json is unreadable ({e})"))
                }
            })?;
    }
    let manifest: Manifest = serde_json::from_slice(&text).map_err(|e| {
        ExportError::NotABundle(format!("manifest.json is not a bundle manifest ({e})"))
    })?;
    if manifest.format != FORMAT {
        return Err(ExportError::NotABundle(format!(
            "unknown manifest format {:?} (expected {FORMAT})",
            manifest.format
        )));
    }

    let mut report = VerifyReport {
        encrypted: manifest_encrypted,
        entries_ok: 0,
        missing: Vec::new(),
        extra: Vec::new(),
        mismatched: Vec::new(),
        manifest_complete: true,
        manifest_problems: Vec::new(),
        archive_problems: Vec::new(),
        manifest: manifest.clone(),
    };
    if password.is_some() && !manifest_encrypted {
        report.mismatched.push(Mismatch {
            path: "manifest.json".to_owned(),
            problem: MismatchProblem::NotEncrypted,
        });
    }
    if zip.has_duplicate_names() {
        report
            .archive_problems
            .push("it holds more than one entry with the same name".to_owned());
    }

    let mut expected = HashMap::new();
    for file in &manifest.files {
        if file.path == "manifest.json" || expected.insert(file.path.as_str(), file).is_some() {
            report
                .manifest_problems
                .push(format!("{} is listed more than once", file.path));
        }
    }
    let mut expected_rows: HashMap<&str, u64> = HashMap::new();
    for c in manifest.sources.iter().flat_map(|s| &s.categories) {
        for path in [&c.json, &c.csv].into_iter().flatten() {
            expected_rows.insert(path.as_str(), c.rows);
        }
    }

    let mut seen = HashSet::new();
    let mut actual_rows: Vec<(String, Result<u64, String>)> = Vec::new();
    for i in 0..zip.len() {
        let (name, encrypted, is_dir) = {
            let entry = zip.by_index_data(i)?;
            (
                entry.name()?.into_owned(),
                entry.encrypted(),
                entry.is_dir(),
            )
        };
        if is_dir || i == manifest_index {
            continue;
        }
        if !encrypted {
            report.encrypted = false;
        }
        seen.insert(name.clone());
        let Some(want) = expected.get(name.as_str()) else {
            report.extra.push(name);
            continue;
        };
        if password.is_some() && !encrypted {
            report.mismatched.push(Mismatch {
                path: name.clone(),
                problem: MismatchProblem::NotEncrypted,
            });
        }
        if encrypted && password.is_none() {
            report.mismatched.push(Mismatch {
                path: name,
                problem: MismatchProblem::Unreadable {
                    error: "encrypted, and no password was given".to_owned(),
                },
            });
            continue;
        }
        let rows = expected_rows.get(name.as_str()).map(|_| RowKind::of(&name));
        match read_entry(&mut zip, i, encrypted, password, rows.flatten()) {
            Err(error) => report.mismatched.push(Mismatch {
                path: name,
                problem: MismatchProblem::Unreadable { error },
            }),
            Ok(got) if got.size != want.size => report.mismatched.push(Mismatch {
                path: name,
                problem: MismatchProblem::Size {
                    expected: want.size,
                    actual: got.size,
                },
            }),
            Ok(got) if !got.sha256.eq_ignore_ascii_case(&want.sha256) => {
                report.mismatched.push(Mismatch {
                    path: name,
                    problem: MismatchProblem::Sha256 {
                        expected: want.sha256.clone(),
                        actual: got.sha256,
                    },
                })
            }
            Ok(got) => {
                report.entries_ok += 1;
                if let Some(rows) = got.rows {
                    actual_rows.push((name, rows));
                }
            }
        }
    }
    for file in &manifest.files {
        if file.path != "manifest.json" && !seen.contains(&file.path) {
            report.missing.push(file.path.clone());
        }
    }

    check_manifest(
        &manifest,
        &expected,
        &actual_rows,
        &mut report.manifest_problems,
    );
    report.manifest_complete = report.manifest_problems.is_empty();
    Ok(report)
}

/// The manifest's own consistency: every path a source names is listed, everything listed is
/// named by a source (or is `index.html`), and data files hold the rows the manifest says.
fn check_manifest(
    manifest: &Manifest,
    listed: &HashMap<&str, &crate::manifest::ManifestFile>,
    actual_rows: &[(String, Result<u64, String>)],
    problems: &mut Vec<String>,
) {
    let mut named: HashMap<&str, u64> = HashMap::new();
    let mut named_paths = HashSet::new();
    named_paths.insert("index.html");
    for source in &manifest.sources {
        for c in &source.categories {
            for path in [&c.json, &c.csv].into_iter().flatten() {
                named.insert(path.as_str(), c.rows);
                named_paths.insert(path.as_str());
            }
            if c.rows > 0 && (c.json.is_none() || c.csv.is_none()) {
                problems.push(format!(
                    "{}/{} has {} rows but no data file",
                    source.name, c.key, c.rows
                ));
            }
        }
        for path in &source.attachments {
            named_paths.insert(path.as_str());
        }
    }
    for path in &named_paths {
        if !listed.contains_key(path) {
            problems.push(format!(
                "{path} is named by the manifest but not listed in its files"
            ));
        }
    }
    let mut unnamed: Vec<&str> = listed
        .keys()
        .copied()
        .filter(|p| !named_paths.contains(p))
        .collect();
    unnamed.sort_unstable();
    for path in unnamed {
        problems.push(format!("{path} is listed but belongs to no source"));
    }
    for (path, rows) in actual_rows {
        let Some(&want) = named.get(path.as_str()) else {
            continue;
        };
        match rows {
            Ok(rows) if *rows != want => problems.push(format!(
                "{path} holds {rows} rows, the manifest says {want}"
            )),
            Ok(_) => {}
            Err(error) => problems.push(format!("{path} can't be read as a data file ({error})")),
        }
    }
}

#[derive(Clone, Copy)]
enum RowKind {
    Json,
    Csv,
}

impl RowKind {
    fn of(path: &str) -> Option<Self> {
        if path.ends_with(".json") {
            Some(Self::Json)
        } else if path.ends_with(".csv") {
            Some(Self::Csv)
        } else {
            None
        }
    }
}

struct EntryDigest {
    size: u64,
    sha256: String,
    /// For a data file: its rows, or why they could not be counted.
    rows: Option<Result<u64, String>>,
}

fn open<'a, R: Read + Seek>(
    zip: &'a mut ZipArchive<R>,
    index: usize,
    encrypted: bool,
    password: Option<&str>,
) -> Result<zip::read::ZipFile<'a, R>, ZipError> {
    match (encrypted, password) {
        (true, Some(password)) => zip.by_index_decrypt(index, password.as_bytes()),
        _ => zip.by_index(index),
    }
}

/// Streams one entry through SHA-256, counting its rows on the way when it is a data file.
fn read_entry<R: Read + Seek>(
    zip: &mut ZipArchive<R>,
    index: usize,
    encrypted: bool,
    password: Option<&str>,
    rows: Option<RowKind>,
) -> Result<EntryDigest, String> {
    let entry = open(zip, index, encrypted, password).map_err(|e| match e {
        ZipError::InvalidPassword => "the password does not open this entry".to_owned(),
        e => e.to_string(),
    })?;
    let mut hashing = Hashing {
        inner: entry,
        hasher: Sha256::new(),
        size: 0,
    };
    let counted = {
        let mut buffered = BufReader::with_capacity(64 * 1024, &mut hashing);
        let counted = match rows {
            Some(RowKind::Json) => Some(count_json_rows(&mut buffered)),
            Some(RowKind::Csv) => Some(count_csv_rows(&mut buffered)),
            None => None,
        };
        // Read what the counting left (and everything, for attachments): the hash needs it all,
        // and AES authentication happens at the end.
        io::copy(&mut buffered, &mut io::sink()).map_err(|e| e.to_string())?;
        counted
    };
    Ok(EntryDigest {
        size: hashing.size,
        sha256: hex::encode(hashing.hasher.finalize()),
        rows: counted,
    })
}

fn count_json_rows(reader: &mut impl Read) -> Result<u64, String> {
    struct Count;
    impl<'de> Visitor<'de> for Count {
        type Value = u64;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON array")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<u64, A::Error> {
            let mut n = 0;
            while seq.next_element::<IgnoredAny>()?.is_some() {
                n += 1;
            }
            Ok(n)
        }
    }
    let mut de = serde_json::Deserializer::from_reader(reader);
    let n = (&mut de)
        .deserialize_seq(Count)
        .map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    Ok(n)
}

fn count_csv_rows(reader: &mut impl Read) -> Result<u64, String> {
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(reader);
    let mut record = csv::ByteRecord::new();
    let mut n = 0;
    while csv
        .read_byte_record(&mut record)
        .map_err(|e| e.to_string())?
    {
        n += 1;
    }
    Ok(n)
}

/// Passes bytes through, hashing and counting them.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    size: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
}
