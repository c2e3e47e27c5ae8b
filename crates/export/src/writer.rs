//! [`BundleWriter`]: records and files go to a spool on disk as they arrive; `finish` streams the
//! spool into the zip.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use chrono::{Datelike, FixedOffset, Timelike};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use zip::ZipWriter;
use zip::write::{FileOptions, SimpleFileOptions};

use crate::ExportError;
use crate::html::render_index;
use crate::manifest::{FORMAT, Manifest, ManifestCategory, ManifestFile, ManifestSource};
use crate::model::{BundleMeta, CategoryInfo, Password, SourceInfo, SourceStatus};
use crate::names::{check_key, sanitize_file_name, unique_name};

/// The UTF-8 byte-order mark every CSV starts with: without it, Excel reads a CSV in the
/// system's ANSI code page (GBK on Chinese Windows) and garbles Chinese text.
pub(crate) const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// The buffer of each open spool file. Memory is this per category, whatever the number of rows.
const SPOOL_BUFFER: usize = 32 * 1024;

/// Entries whose source (spool file or attachment) passes this size are written with ZIP64 sizes
/// (readers need ZIP64 support, which every current one has); smaller ones stay plain zip, for old
/// readers. The margin is wide because pretty-printed JSON and CSV can be several times the size
/// of their compact spool, and a plain entry can't pass 4 GiB.
const LARGE_ENTRY: u64 = 512 << 20;

/// Writes one bundle.
///
/// Records and attachments are appended to spool files in a private directory under the work
/// directory as they arrive; nothing of them stays in memory but a row count, the column names
/// seen, and a file's name and size. [`finish`](Self::finish) then streams the spool into the zip.
/// Dropping the writer without finishing removes the spool.
///
/// The API is synchronous: run it on a blocking thread.
pub struct BundleWriter {
    meta: BundleMeta,
    spool_dir: PathBuf,
    sources: BTreeMap<String, SourceState>,
    /// Source names in lower case: two names that differ only in case would share a directory
    /// on a case-insensitive file system.
    source_names: HashSet<String>,
    next_spool: u64,
    broken: bool,
}

struct SourceState {
    info: SourceInfo,
    categories: BTreeMap<String, CategoryState>,
    attachments: Vec<Attachment>,
    /// Attachment names taken, in lower case.
    taken: HashSet<String>,
}

struct CategoryState {
    info: CategoryInfo,
    rows: u64,
    spool: Option<Spool>,
    /// The keys seen, in the order first seen: the CSV header, before the declared order is
    /// applied.
    columns: Vec<String>,
    seen: HashSet<String>,
}

struct Spool {
    path: PathBuf,
    out: BufWriter<File>,
    bytes: u64,
}

struct Attachment {
    name: String,
    spool: PathBuf,
    size: u64,
}

impl BundleWriter {
    /// Starts a bundle. The spool goes into a new private directory (mode 0700 on Unix) under
    /// `work_dir`, which must exist.
    pub fn create(work_dir: &Path, meta: BundleMeta) -> Result<Self, ExportError> {
        let spool_dir = work_dir.join(format!("rightsdesk-export-{}", uuid::Uuid::new_v4()));
        let mut builder = fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&spool_dir)?;
        Ok(Self {
            meta,
            spool_dir,
            sources: BTreeMap::new(),
            source_names: HashSet::new(),
            next_spool: 0,
            broken: false,
        })
    }

    /// Declares a source that was searched, with its categories and status. Every source searched
    /// should be added, including those that hold no data or failed: the index says so.
    pub fn add_source(&mut self, info: SourceInfo) -> Result<(), ExportError> {
        check_key("source name", &info.name)?;
        if !self.source_names.insert(info.name.to_ascii_lowercase()) {
            return Err(ExportError::DuplicateSource(info.name));
        }
        let mut categories = BTreeMap::new();
        for category in &info.categories {
            if let Err(err) = check_key("category key", &category.key) {
                self.source_names.remove(&info.name.to_ascii_lowercase());
                return Err(err);
            }
            let state = CategoryState {
                info: category.clone(),
                rows: 0,
                spool: None,
                columns: Vec::new(),
                seen: HashSet::new(),
            };
            if categories.insert(category.key.clone(), state).is_some() {
                self.source_names.remove(&info.name.to_ascii_lowercase());
                return Err(ExportError::DuplicateCategory {
                    source_name: info.name.clone(),
                    category: category.key.clone(),
                });
            }
        }
        self.sources.insert(
            info.name.clone(),
            SourceState {
                info,
                categories,
                attachments: Vec::new(),
                taken: HashSet::new(),
            },
        );
        Ok(())
    }

    /// Changes a source's status, e.g. to `Failed` when its look-up broke off after some records
    /// were added. A source with records or files can't be set to `NoData`.
    pub fn set_source_status(
        &mut self,
        source: &str,
        status: SourceStatus,
    ) -> Result<(), ExportError> {
        let state = self
            .sources
            .get_mut(source)
            .ok_or_else(|| ExportError::UnknownSource(source.to_owned()))?;
        if status == SourceStatus::NoData && state.has_data() {
            return Err(ExportError::NoDataSourceHasData(source.to_owned()));
        }
        state.info.status = status;
        Ok(())
    }

    /// Appends one record (one row of one table) of a source's category. It is written to the
    /// category's spool file (JSON lines) at once and not kept in memory.
    pub fn add_record(
        &mut self,
        source: &str,
        category: &str,
        record: &Map<String, Value>,
    ) -> Result<(), ExportError> {
        if self.broken {
            return Err(ExportError::SpoolBroken);
        }
        let state = self
            .sources
            .get_mut(source)
            .ok_or_else(|| ExportError::UnknownSource(source.to_owned()))?;
        if state.info.status == SourceStatus::NoData {
            return Err(ExportError::NoDataSourceHasData(source.to_owned()));
        }
        let cat =
            state
                .categories
                .get_mut(category)
                .ok_or_else(|| ExportError::UnknownCategory {
                    source_name: source.to_owned(),
                    category: category.to_owned(),
                })?;
        let spool = match &mut cat.spool {
            Some(spool) => spool,
            None => {
                let path = self.spool_dir.join(format!("r{}.jsonl", self.next_spool));
                self.next_spool += 1;
                let file = create_private(&path)?;
                cat.spool.insert(Spool {
                    path,
                    out: BufWriter::with_capacity(SPOOL_BUFFER, file),
                    bytes: 0,
                })
            }
        };
        let mut counted = Counter {
            inner: &mut spool.out,
            count: 0,
        };
        let written = serde_json::to_writer(&mut counted, record)
            .map_err(ExportError::from)
            .and_then(|()| counted.write_all(b"\n").map_err(ExportError::from));
        let count = counted.count;
        if let Err(err) = written {
            // The spool may now end in half a record.
            self.broken = true;
            return Err(err);
        }
        spool.bytes += count;
        cat.rows += 1;
        for key in record.keys() {
            if !cat.seen.contains(key) {
                cat.seen.insert(key.clone());
                cat.columns.push(key.clone());
            }
        }
        Ok(())
    }

    /// Adds an attachment of a source (a recording, a certificate PDF, …), streamed from `reader`
    /// into the spool. The name is made safe (see the crate documentation) and unique within the
    /// source; the entry's path in the bundle (`files/<source>/<name>`) is returned.
    ///
    /// If `reader` fails, nothing is added and the writer can go on.
    pub fn add_file(
        &mut self,
        source: &str,
        file_name: &str,
        reader: &mut dyn Read,
    ) -> Result<String, ExportError> {
        if self.broken {
            return Err(ExportError::SpoolBroken);
        }
        let state = self
            .sources
            .get_mut(source)
            .ok_or_else(|| ExportError::UnknownSource(source.to_owned()))?;
        if state.info.status == SourceStatus::NoData {
            return Err(ExportError::NoDataSourceHasData(source.to_owned()));
        }
        let path = self.spool_dir.join(format!("f{}.bin", self.next_spool));
        self.next_spool += 1;
        let copied = (|| -> io::Result<u64> {
            let mut out = BufWriter::with_capacity(SPOOL_BUFFER, create_private(&path)?);
            let size = io::copy(reader, &mut out)?;
            out.flush()?;
            Ok(size)
        })();
        let size = match copied {
            Ok(size) => size,
            Err(err) => {
                let _ = fs::remove_file(&path);
                return Err(err.into());
            }
        };
        let name = unique_name(sanitize_file_name(file_name), &mut state.taken);
        let entry = format!("files/{source}/{name}");
        state.attachments.push(Attachment {
            name,
            spool: path,
            size,
        });
        Ok(entry)
    }

    /// Writes the bundle to `out` and returns its manifest; the spool is removed.
    ///
    /// The zip is written to a temporary file beside `out` (mode 0600 on Unix), synced, and
    /// renamed to `out` only when complete, so `out` never holds half a bundle. An existing `out`
    /// is not overwritten. With `encryption`, every entry, the manifest included, is encrypted
    /// with WinZip AES-256.
    ///
    /// The writer is consumed: on error too the spool is removed, and the bundle must be made
    /// again.
    pub fn finish(
        mut self,
        out: &Path,
        encryption: Option<&Password>,
    ) -> Result<Manifest, ExportError> {
        if self.broken {
            return Err(ExportError::SpoolBroken);
        }
        if out.exists() {
            return Err(ExportError::OutputExists(out.to_owned()));
        }
        for cat in self
            .sources
            .values_mut()
            .flat_map(|s| s.categories.values_mut())
        {
            if let Some(spool) = &mut cat.spool {
                spool.out.flush()?;
            }
        }
        let dir = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        let base = out
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "bundle.zip".to_owned());
        let partial = dir.join(format!(".{base}.{}.partial", uuid::Uuid::new_v4()));
        let result = self.write_zip(&partial, encryption.map(Password::expose));
        let result = result.and_then(|manifest| {
            if out.exists() {
                return Err(ExportError::OutputExists(out.to_owned()));
            }
            fs::rename(&partial, out)?;
            Ok(manifest)
        });
        if result.is_err() {
            let _ = fs::remove_file(&partial);
        }
        result
    }

    fn write_zip(&self, path: &Path, password: Option<&str>) -> Result<Manifest, ExportError> {
        let file = create_private(path)?;
        let mut zip = Entries {
            zip: ZipWriter::new(BufWriter::with_capacity(64 * 1024, file)),
            password,
            mtime: zip_time(&self.meta),
            files: Vec::new(),
        };

        // The plan: every path and count is known before the first byte is written.
        let mut sources = Vec::with_capacity(self.sources.len());
        let mut sizes = HashMap::new();
        for (name, state) in &self.sources {
            let categories = state
                .categories
                .values()
                .map(|c| {
                    let has_rows = c.rows > 0;
                    ManifestCategory {
                        key: c.info.key.clone(),
                        title_zh: c.info.title_zh.clone(),
                        title_en: c.info.title_en.clone(),
                        purpose_zh: c.info.purpose_zh.clone(),
                        purpose_en: c.info.purpose_en.clone(),
                        rows: c.rows,
                        json: has_rows.then(|| format!("data/{name}/{}.json", c.info.key)),
                        csv: has_rows.then(|| format!("data/{name}/{}.csv", c.info.key)),
                    }
                })
                .collect();
            let mut attachments: Vec<&Attachment> = state.attachments.iter().collect();
            attachments.sort_by(|a, b| a.name.cmp(&b.name));
            let attachments = attachments
                .into_iter()
                .map(|a| {
                    let path = format!("files/{name}/{}", a.name);
                    sizes.insert(path.clone(), a.size);
                    path
                })
                .collect();
            sources.push(ManifestSource {
                name: name.clone(),
                display_name_zh: state.info.display_name_zh.clone(),
                display_name_en: state.info.display_name_en.clone(),
                owner: state.info.owner.clone(),
                status: state.info.status.clone(),
                categories,
                attachments,
            });
        }

        let index = render_index(&self.meta, &sources, &sizes);
        zip.entry("index.html", false, |w| Ok(w.write_all(index.as_bytes())?))?;
        drop(index);

        for (name, state) in &self.sources {
            for cat in state.categories.values() {
                let Some(spool) = &cat.spool else { continue };
                let large = spool.bytes >= LARGE_ENTRY;
                let json_path = format!("data/{name}/{}.json", cat.info.key);
                zip.entry(&json_path, large, |w| {
                    let rows = write_json(&spool.path, w)?;
                    check_rows(rows, cat.rows)
                })?;
                let csv_path = format!("data/{name}/{}.csv", cat.info.key);
                let header = csv_header(cat);
                zip.entry(&csv_path, large, |w| {
                    let rows = write_csv(&spool.path, &header, w)?;
                    check_rows(rows, cat.rows)
                })?;
            }
        }
        for (name, state) in &self.sources {
            let mut attachments: Vec<&Attachment> = state.attachments.iter().collect();
            attachments.sort_by(|a, b| a.name.cmp(&b.name));
            for a in attachments {
                let path = format!("files/{name}/{}", a.name);
                zip.entry(&path, a.size >= LARGE_ENTRY, |w| {
                    let mut input = BufReader::with_capacity(64 * 1024, File::open(&a.spool)?);
                    let copied = io::copy(&mut input, w)?;
                    check_rows(copied, a.size)
                })?;
            }
        }

        let manifest = Manifest {
            format: FORMAT.to_owned(),
            reference: self.meta.reference.clone(),
            request_kind: self.meta.request_kind.clone(),
            subject_identifiers: self.meta.subject_identifiers.clone(),
            created_at: self.meta.created_at,
            language: self.meta.language,
            sources,
            files: std::mem::take(&mut zip.files),
        };
        let mut text = serde_json::to_vec_pretty(&manifest)?;
        text.push(b'\n');
        zip.zip.start_file("manifest.json", zip.options(false))?;
        zip.zip.write_all(&text)?;
        let buffered = zip.zip.finish()?;
        let file = buffered.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(manifest)
    }
}

impl SourceState {
    fn has_data(&self) -> bool {
        !self.attachments.is_empty() || self.categories.values().any(|c| c.rows > 0)
    }
}

impl Drop for BundleWriter {
    fn drop(&mut self) {
        // Close the spool files first (Windows can't delete open files).
        self.sources.clear();
        let _ = fs::remove_dir_all(&self.spool_dir);
    }
}

/// Creates a new file readable by its owner only.
fn create_private(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// The time every entry carries: the bundle's creation time in Beijing time (zip times have no
/// zone; UTC+8 has no daylight saving), or 1980-01-01 if out of the zip range.
fn zip_time(meta: &BundleMeta) -> zip::DateTime {
    let Some(tz) = FixedOffset::east_opt(8 * 3600) else {
        return zip::DateTime::default();
    };
    let t = meta.created_at.with_timezone(&tz);
    let (Ok(year), Ok(month), Ok(day), Ok(hour), Ok(minute), Ok(second)) = (
        u16::try_from(t.year()),
        u8::try_from(t.month()),
        u8::try_from(t.day()),
        u8::try_from(t.hour()),
        u8::try_from(t.minute()),
        u8::try_from(t.second()),
    ) else {
        return zip::DateTime::default();
    };
    zip::DateTime::from_date_and_time(year, month, day, hour, minute, second).unwrap_or_default()
}

fn check_rows(written: u64, expected: u64) -> Result<(), ExportError> {
    if written == expected {
        Ok(())
    } else {
        // The spool changed under us (another process, a full disk that lost a write).
        Err(ExportError::SpoolBroken)
    }
}

/// The zip being written, and the manifest's list of what went into it.
struct Entries<'p> {
    zip: ZipWriter<BufWriter<File>>,
    password: Option<&'p str>,
    mtime: zip::DateTime,
    files: Vec<ManifestFile>,
}

impl<'p> Entries<'p> {
    fn options(&self, large: bool) -> FileOptions<'p, 'static, ()> {
        let options = SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .last_modified_time(self.mtime)
            .unix_permissions(0o644)
            .large_file(large);
        match self.password {
            Some(password) => options.with_aes_encryption(zip::AesMode::Aes256, password),
            None => options,
        }
    }

    /// Writes one entry through `body`, recording its size and SHA-256 for the manifest.
    fn entry(
        &mut self,
        path: &str,
        large: bool,
        body: impl FnOnce(&mut dyn Write) -> Result<(), ExportError>,
    ) -> Result<(), ExportError> {
        let options = self.options(large);
        self.zip.start_file(path, options)?;
        let mut tally = Tally {
            inner: &mut self.zip,
            hasher: Sha256::new(),
            size: 0,
        };
        {
            let mut buffered = BufWriter::with_capacity(64 * 1024, &mut tally);
            body(&mut buffered)?;
            buffered.flush()?;
        }
        let Tally { hasher, size, .. } = tally;
        self.files.push(ManifestFile {
            path: path.to_owned(),
            size,
            sha256: hex::encode(hasher.finalize()),
        });
        Ok(())
    }
}

/// Passes bytes through, hashing and counting them.
pub(crate) struct Tally<W> {
    pub(crate) inner: W,
    pub(crate) hasher: Sha256,
    pub(crate) size: u64,
}

impl<W: Write> Write for Tally<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Counts the bytes written through it.
struct Counter<W> {
    inner: W,
    count: u64,
}

impl<W: Write> Write for Counter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Indents every line after the first by two spaces (JSON strings never hold a raw newline, so
/// this only touches the pretty printer's line breaks).
struct Indent<W> {
    inner: W,
}

impl<W: Write> Write for Indent<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        while let Some(i) = rest.iter().position(|b| *b == b'\n') {
            self.inner.write_all(&rest[..=i])?;
            self.inner.write_all(b"  ")?;
            rest = &rest[i + 1..];
        }
        self.inner.write_all(rest)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Reads a spool file one record at a time.
fn for_each_record(
    spool: &Path,
    mut each: impl FnMut(Map<String, Value>) -> Result<(), ExportError>,
) -> Result<u64, ExportError> {
    let mut reader = BufReader::with_capacity(64 * 1024, File::open(spool)?);
    let mut line = String::new();
    let mut rows = 0;
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(rows);
        }
        each(serde_json::from_str(&line)?)?;
        rows += 1;
    }
}

/// `[`, the records pretty-printed and indented, `]`.
fn write_json(spool: &Path, out: &mut dyn Write) -> Result<u64, ExportError> {
    out.write_all(b"[")?;
    let mut first = true;
    let rows = for_each_record(spool, |record| {
        out.write_all(if first { b"\n  " } else { b",\n  " })?;
        first = false;
        serde_json::to_writer_pretty(Indent { inner: &mut *out }, &record)?;
        Ok(())
    })?;
    out.write_all(if rows == 0 { b"]\n" } else { b"\n]\n" })?;
    Ok(rows)
}

/// The CSV header: the declared columns that some record has, then the other keys in the order
/// first seen.
fn csv_header(cat: &CategoryState) -> Vec<String> {
    let mut header: Vec<String> = Vec::with_capacity(cat.columns.len());
    let mut placed = HashSet::new();
    for column in &cat.info.columns {
        if cat.seen.contains(column) && placed.insert(column.as_str()) {
            header.push(column.clone());
        }
    }
    for column in &cat.columns {
        if placed.insert(column.as_str()) {
            header.push(column.clone());
        }
    }
    header
}

/// A JSON value as a CSV cell: strings as they are, `null` as an empty cell, numbers and booleans
/// as JSON writes them, arrays and objects as JSON text.
pub(crate) fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(_) | Value::Object(_) => value.to_string(),
    }
}

/// The BOM, the header, one row per record (RFC 4180: CRLF line ends, fields quoted when they
/// hold a comma, a quote, CR or LF, quotes doubled).
fn write_csv(spool: &Path, header: &[String], out: &mut dyn Write) -> Result<u64, ExportError> {
    out.write_all(UTF8_BOM)?;
    let mut csv = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(out);
    csv.write_record(header)?;
    let index: HashMap<&str, usize> = header
        .iter()
        .enumerate()
        .map(|(i, k)| (k.as_str(), i))
        .collect();
    let mut cells = vec![String::new(); header.len()];
    let rows = for_each_record(spool, |record| {
        cells.iter_mut().for_each(String::clear);
        for (key, value) in &record {
            if let Some(&i) = index.get(key.as_str()) {
                cells[i] = cell(value);
            }
        }
        csv.write_record(&cells)?;
        Ok(())
    })?;
    csv.flush()?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Identifier, IdentifierKind, Lang};
    use chrono::TimeZone;
    use serde_json::json;

    fn meta() -> BundleMeta {
        BundleMeta {
            reference: "PR-2026-000123".into(),
            request_kind: "copy".into(),
            subject_identifiers: vec![Identifier::new(IdentifierKind::Mobile, "+8613800138000")],
            created_at: chrono::Utc
                .with_ymd_and_hms(2026, 3, 1, 2, 0, 0)
                .single()
                .unwrap(),
            language: Lang::ZhCn,
        }
    }

    fn source() -> SourceInfo {
        SourceInfo {
            name: "logs".into(),
            display_name_zh: "访问日志".into(),
            display_name_en: "Access logs".into(),
            owner: "运维部".into(),
            status: SourceStatus::Answered,
            categories: vec![CategoryInfo {
                key: "access_log".into(),
                title_zh: "访问日志及设备与网络信息".into(),
                title_en: "Access logs, device and network information".into(),
                purpose_zh: "保障网页安全稳定运行、排查故障、统计和优化服务体验".into(),
                purpose_en: "Keep the site secure and stable, troubleshoot, measure and improve"
                    .into(),
                columns: vec![],
            }],
        }
    }

    /// The bytes the writer holds for a category, beyond its spool file: the open buffer and the
    /// column names. Nothing here grows with the number of rows.
    fn held_in_memory(w: &BundleWriter) -> usize {
        w.sources
            .values()
            .flat_map(|s| s.categories.values())
            .map(|c| {
                c.spool.as_ref().map_or(0, |s| s.out.capacity())
                    + c.columns.iter().map(String::capacity).sum::<usize>() * 2
            })
            .sum()
    }

    #[test]
    fn two_hundred_thousand_rows_go_to_the_spool_not_to_memory() {
        let dir = tempdir();
        let mut w = BundleWriter::create(&dir, meta()).unwrap();
        w.add_source(source()).unwrap();
        let mut record = Map::new();
        let mut after_first = 0;
        for i in 0..200_000u32 {
            record.insert("seq".into(), json!(i));
            record.insert(
                "ip".into(),
                json!(format!("10.0.{}.{}", i / 256 % 256, i % 256)),
            );
            record.insert("page".into(), json!("/下载/产品手册"));
            w.add_record("logs", "access_log", &record).unwrap();
            if i == 0 {
                after_first = held_in_memory(&w);
            }
        }
        // What the writer holds did not grow with the rows: an open buffer and three column names.
        assert_eq!(held_in_memory(&w), after_first);
        assert!(after_first <= SPOOL_BUFFER + 64, "{after_first}");
        let cat = &w.sources["logs"].categories["access_log"];
        assert_eq!(cat.rows, 200_000);
        assert_eq!(cat.columns, ["ip", "page", "seq"]);
        let spool = cat.spool.as_ref().unwrap();
        let on_disk = fs::metadata(&spool.path).unwrap().len() + spool.out.buffer().len() as u64;
        assert_eq!(on_disk, spool.bytes);
        assert!(spool.bytes > 200_000 * 40, "{}", spool.bytes);

        let out = dir.join("big.zip");
        let spool_dir = w.spool_dir.clone();
        let manifest = w.finish(&out, None).unwrap();
        assert!(!spool_dir.exists(), "the spool is removed");
        assert_eq!(manifest.sources[0].categories[0].rows, 200_000);
        let report = crate::verify(&out, None).unwrap();
        assert!(report.is_ok(), "{:?}", report.problems());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn dropping_an_unfinished_writer_removes_its_spool() {
        let dir = tempdir();
        let mut w = BundleWriter::create(&dir, meta()).unwrap();
        w.add_source(source()).unwrap();
        w.add_record("logs", "access_log", &Map::new()).unwrap();
        w.add_file("logs", "a.txt", &mut &b"hello"[..]).unwrap();
        let spool_dir = w.spool_dir.clone();
        assert_eq!(fs::read_dir(&spool_dir).unwrap().count(), 2);
        drop(w);
        assert!(!spool_dir.exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failing_reader_adds_nothing_and_the_writer_goes_on() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("connection reset"))
            }
        }
        let dir = tempdir();
        let mut w = BundleWriter::create(&dir, meta()).unwrap();
        w.add_source(source()).unwrap();
        assert!(matches!(
            w.add_file("logs", "a.txt", &mut Broken),
            Err(ExportError::Io(_))
        ));
        assert_eq!(fs::read_dir(&w.spool_dir).unwrap().count(), 0);
        assert_eq!(
            w.add_file("logs", "a.txt", &mut &b"x"[..]).unwrap(),
            "files/logs/a.txt"
        );
        drop(w);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn declared_columns_come_first_then_the_rest_as_first_seen() {
        let dir = tempdir();
        let mut w = BundleWriter::create(&dir, meta()).unwrap();
        let mut info = source();
        info.categories[0].columns = vec!["time".into(), "absent".into(), "ip".into()];
        w.add_source(info).unwrap();
        let a = json!({"ip": "1.1.1.1", "agent": "x", "time": "t"});
        let b = json!({"referer": "r", "ip": "2.2.2.2"});
        w.add_record("logs", "access_log", a.as_object().unwrap())
            .unwrap();
        w.add_record("logs", "access_log", b.as_object().unwrap())
            .unwrap();
        let cat = &w.sources["logs"].categories["access_log"];
        assert_eq!(csv_header(cat), ["time", "ip", "agent", "referer"]);
        drop(w);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn cells_are_json_text_for_nested_values() {
        assert_eq!(cell(&json!(null)), "");
        assert_eq!(cell(&json!("李雷")), "李雷");
        assert_eq!(cell(&json!(1.5)), "1.5");
        assert_eq!(cell(&json!(true)), "true");
        assert_eq!(cell(&json!({"a": [1, "二"]})), r#"{"a":[1,"二"]}"#);
    }

    #[test]
    fn json_output_is_an_indented_array() {
        let dir = tempdir();
        let spool = dir.join("s.jsonl");
        fs::write(&spool, "{\"a\":1,\"b\":{\"c\":\"x\\ny\"}}\n{\"a\":2}\n").unwrap();
        let mut out = Vec::new();
        assert_eq!(write_json(&spool, &mut out).unwrap(), 2);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "[\n  {\n    \"a\": 1,\n    \"b\": {\n      \"c\": \"x\\ny\"\n    }\n  },\n  {\n    \"a\": 2\n  }\n]\n"
        );
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, json!([{"a": 1, "b": {"c": "x\ny"}}, {"a": 2}]));
        fs::remove_dir_all(&dir).unwrap();
    }

    fn tempdir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rd-export-unit-{}", uuid::Uuid::new_v4()));
        fs::create_dir(&dir).unwrap();
        dir
    }
}
