//! Bundles written, read back, tampered with and verified.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use chrono::{TimeZone, Utc};
use rightsdesk_export::{
    BundleMeta, BundleWriter, CategoryInfo, ExportError, Identifier, IdentifierKind, Lang,
    Manifest, MismatchProblem, Password, SourceInfo, SourceStatus, generate_password, verify,
};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use zip::ZipArchive;
use zip::write::SimpleFileOptions;

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("rd-export-test-{}", uuid::Uuid::new_v4()));
        fs::create_dir(&dir).expect("create a temporary directory");
        Self(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn meta() -> BundleMeta {
    BundleMeta {
        reference: "PR-2026-000123".into(),
        request_kind: "copy".into(),
        subject_identifiers: vec![
            Identifier::new(IdentifierKind::Email, "li.lei@example.cn"),
            Identifier::new(IdentifierKind::Mobile, "+8613800138000"),
        ],
        created_at: Utc
            .with_ymd_and_hms(2026, 3, 1, 2, 0, 0)
            .single()
            .expect("a valid date"),
        language: Lang::ZhCn,
    }
}

fn category(key: &str, title_zh: &str, title_en: &str, purpose_zh: &str) -> CategoryInfo {
    CategoryInfo {
        key: key.into(),
        title_zh: title_zh.into(),
        title_en: title_en.into(),
        purpose_zh: purpose_zh.into(),
        purpose_en: format!("Purpose of {title_en}"),
        columns: vec![],
    }
}

fn source(
    name: &str,
    zh: &str,
    en: &str,
    status: SourceStatus,
    cats: Vec<CategoryInfo>,
) -> SourceInfo {
    SourceInfo {
        name: name.into(),
        display_name_zh: zh.into(),
        display_name_en: en.into(),
        owner: "市场部 / Marketing".into(),
        status,
        categories: cats,
    }
}

/// Sources and categories of the privacy policy's §一.
fn policy_sources() -> Vec<SourceInfo> {
    vec![
        source(
            "website",
            "官网账户",
            "Website account",
            SourceStatus::Answered,
            vec![
                category(
                    "account",
                    "账户信息",
                    "Account",
                    "验证您的身份是否有效，提供登录服务",
                ),
                category(
                    "downloads",
                    "产品/文档下载申请",
                    "Download requests",
                    "联系到您及处理您的申请，并将下载链接通过邮件形式发送至您的邮箱",
                ),
            ],
        ),
        source(
            "callcenter",
            "客服电话",
            "Customer service line",
            SourceStatus::Answered,
            vec![category(
                "calls",
                "通话记录",
                "Call records",
                "便于尽快帮助您解决问题或记录相关问题的处理方案及结果",
            )],
        ),
        source(
            "forum",
            "技术论坛",
            "Technical forum",
            SourceStatus::NoData,
            vec![category(
                "forum_account",
                "论坛账户",
                "Forum account",
                "注册使用技术论坛",
            )],
        ),
        source(
            "marketing",
            "营销推送",
            "Marketing messages",
            SourceStatus::Failed {
                reason: "营销系统暂时无法访问 / the marketing system could not be reached".into(),
            },
            vec![category(
                "marketing",
                "营销信息",
                "Marketing",
                "向您推荐产品或服务、发送消息通知、提供营销活动信息",
            )],
        ),
    ]
}

fn obj(value: Value) -> Map<String, Value> {
    value.as_object().expect("a JSON object").clone()
}

fn account_records() -> Vec<Map<String, Value>> {
    vec![
        obj(json!({
            "customer_type": "个人客户",
            "name": "李雷",
            "email": "li.lei@example.cn",
            "mobile": "+8613800138000",
            "company": {"name": "韩梅梅科技有限公司", "position": "架构师"},
            "registered_at": "2025-11-02T08:15:00Z",
            "verified": true,
        })),
        obj(json!({
            "customer_type": "企业客户",
            "name": "李雷",
            "email": "li.lei@example.cn",
            "logins": [1, 2, 3],
            "note": null,
        })),
    ]
}

fn download_records() -> Vec<Map<String, Value>> {
    vec![
        obj(json!({"document": "ZStack 产品手册, v4", "requested_at": "2026-01-05"})),
        obj(json!({"document": "白皮书 \"云原生\"", "requested_at": "2026-01-06"})),
        obj(json!({"document": "第一行\r\n第二行\n第三行", "requested_at": "2026-01-07"})),
    ]
}

const RECORDING: &[u8] = b"RIFF....WAVEfmt a recording of a call";

/// Writes the policy bundle to `out`.
fn write_policy_bundle(dir: &Path, out: &Path, password: Option<&Password>) -> Manifest {
    let mut w = BundleWriter::create(dir, meta()).expect("create the writer");
    for s in policy_sources() {
        w.add_source(s).expect("add a source");
    }
    for r in account_records() {
        w.add_record("website", "account", &r)
            .expect("add a record");
    }
    for r in download_records() {
        w.add_record("website", "downloads", &r)
            .expect("add a record");
    }
    w.add_record(
        "callcenter",
        "calls",
        &obj(json!({"called_at": "2026-02-01T09:00:00+08:00", "duration_s": 312, "topic": "工单咨询"})),
    )
    .expect("add a record");
    let path = w
        .add_file("callcenter", "2026-02-01 通话录音.wav", &mut &RECORDING[..])
        .expect("add the recording");
    assert_eq!(path, "files/callcenter/2026-02-01 通话录音.wav");
    w.finish(out, password).expect("finish the bundle")
}

fn read_entry(zip: &mut ZipArchive<File>, name: &str, password: Option<&str>) -> Vec<u8> {
    let mut out = Vec::new();
    match password {
        Some(p) => zip.by_name_decrypt(name, p.as_bytes()),
        None => zip.by_name(name),
    }
    .expect("read the entry")
    .read_to_end(&mut out)
    .expect("read the entry");
    out
}

fn open(path: &Path) -> ZipArchive<File> {
    ZipArchive::new(File::open(path).expect("open the bundle")).expect("read the zip")
}

fn entry_names(path: &Path) -> Vec<String> {
    let zip = open(path);
    (0..zip.len())
        .map(|i| {
            zip.name_for_index(i)
                .expect("an entry")
                .expect("a UTF-8 name")
                .into_owned()
        })
        .collect()
}

#[test]
fn round_trip_json_csv_and_chinese_text() {
    let dir = TempDir::new();
    let out = dir.path().join("PR-2026-000123.zip");
    let manifest = write_policy_bundle(dir.path(), &out, None);

    // The spool is gone; only the bundle is left.
    let left: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(left.len(), 1, "{left:?}");

    let report = verify(&out, None).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems());
    assert!(report.manifest_complete);
    assert!(!report.encrypted);
    assert_eq!(report.entries_ok, manifest.files.len());
    assert_eq!(report.manifest, manifest);

    // A fixed order: index, data (sources and categories sorted, JSON before CSV), files, manifest.
    assert_eq!(
        entry_names(&out),
        [
            "index.html",
            "data/callcenter/calls.json",
            "data/callcenter/calls.csv",
            "data/website/account.json",
            "data/website/account.csv",
            "data/website/downloads.json",
            "data/website/downloads.csv",
            "files/callcenter/2026-02-01 通话录音.wav",
            "manifest.json",
        ]
    );

    let mut zip = open(&out);
    // JSON: the records as they went in.
    let json: Value =
        serde_json::from_slice(&read_entry(&mut zip, "data/website/account.json", None)).unwrap();
    assert_eq!(
        json,
        Value::Array(account_records().into_iter().map(Value::Object).collect())
    );
    let text = String::from_utf8(read_entry(&mut zip, "data/website/account.json", None)).unwrap();
    assert!(text.contains("\"name\": \"李雷\""), "{text}");
    assert!(text.starts_with("[\n  {\n"), "{text}");

    // CSV: BOM, header the union of keys in first-seen order, nested values as JSON text.
    let csv_bytes = read_entry(&mut zip, "data/website/account.csv", None);
    assert!(csv_bytes.starts_with(b"\xEF\xBB\xBF"));
    let csv_text = std::str::from_utf8(&csv_bytes[3..]).unwrap();
    assert!(csv_text.contains("\r\n"));
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        header,
        [
            "company",
            "customer_type",
            "email",
            "mobile",
            "name",
            "registered_at",
            "verified",
            "logins",
            "note"
        ]
    );
    let rows: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        rows[0][0],
        r#"{"name":"韩梅梅科技有限公司","position":"架构师"}"#
    );
    assert_eq!(rows[0][1], "个人客户");
    assert_eq!(rows[0][4], "李雷");
    assert_eq!(rows[0][6], "true");
    assert_eq!(rows[0][7], "");
    assert_eq!(rows[1][7], "[1,2,3]");
    assert_eq!(rows[1][8], "", "null is an empty cell");
    assert_eq!(rows[1][3], "", "a missing key is an empty cell");

    // The attachment, byte for byte.
    assert_eq!(
        read_entry(&mut zip, "files/callcenter/2026-02-01 通话录音.wav", None),
        RECORDING
    );

    // The manifest: what the request was, every source's status, every entry's hash.
    let on_disk: Manifest =
        serde_json::from_slice(&read_entry(&mut zip, "manifest.json", None)).unwrap();
    assert_eq!(on_disk, manifest);
    let raw: Value = serde_json::from_slice(&read_entry(&mut zip, "manifest.json", None)).unwrap();
    assert_eq!(raw["format"], "rightsdesk-bundle/1");
    assert_eq!(raw["reference"], "PR-2026-000123");
    assert_eq!(raw["request_kind"], "copy");
    assert_eq!(raw["created_at"], "2026-03-01T02:00:00Z");
    assert_eq!(
        raw["subject_identifiers"],
        json!([{"kind": "email", "value": "li.lei@example.cn"}, {"kind": "mobile", "value": "+8613800138000"}])
    );
    let statuses: Vec<(&str, &str)> = raw["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        statuses,
        [
            ("callcenter", "answered"),
            ("forum", "no_data"),
            ("marketing", "failed"),
            ("website", "answered")
        ]
    );
    assert_eq!(
        raw["sources"][2]["reason"],
        "营销系统暂时无法访问 / the marketing system could not be reached"
    );
    assert_eq!(raw["sources"][3]["categories"][1]["rows"], 3);
    for file in &manifest.files {
        let content = read_entry(&mut zip, &file.path, None);
        assert_eq!(content.len() as u64, file.size, "{}", file.path);
        assert_eq!(
            hex::encode(Sha256::digest(&content)),
            file.sha256,
            "{}",
            file.path
        );
    }
    assert!(!manifest.files.iter().any(|f| f.path == "manifest.json"));

    // index.html: both languages, Chinese first, the purposes, counts and links.
    let index = String::from_utf8(read_entry(&mut zip, "index.html", None)).unwrap();
    assert!(index.find("id=\"zh-CN\"").unwrap() < index.find("id=\"en\"").unwrap());
    for needle in [
        "PR-2026-000123",
        "li.lei@example.cn",
        "+8613800138000",
        "复制",
        "2026-03-01 10:00:00（北京时间）",
        "2026-03-01 02:00:00 UTC",
        "联系到您及处理您的申请，并将下载链接通过邮件形式发送至您的邮箱",
        "Purpose of Download requests",
        "href=\"data/website/downloads.json\"",
        "href=\"data/website/downloads.csv\"",
        "href=\"files/callcenter/2026-02-01%20%E9%80%9A%E8%AF%9D%E5%BD%95%E9%9F%B3.wav\"",
        "已查询，未发现关于您的个人信息。",
        "Searched: no personal data about you was found.",
        "查询未能完成：营销系统暂时无法访问",
        "已查询，共 5 条记录。",
        "Searched: 1 record and 1 attachment.",
    ] {
        assert!(index.contains(needle), "index.html lacks {needle:?}");
    }
    assert!(!index.contains("<script"));
    assert!(!index.contains("http://") && !index.contains("https://"));
    assert!(
        !index.contains("我们在这些系统中没有找到"),
        "the bundle is not empty"
    );
}

#[test]
fn the_same_input_gives_the_same_bytes() {
    let dir = TempDir::new();
    let a = dir.path().join("a.zip");
    let b = dir.path().join("b.zip");
    write_policy_bundle(dir.path(), &a, None);
    write_policy_bundle(dir.path(), &b, None);
    assert_eq!(fs::read(&a).unwrap(), fs::read(&b).unwrap());
}

#[test]
fn english_first_when_asked() {
    let dir = TempDir::new();
    let out = dir.path().join("b.zip");
    let mut m = meta();
    m.language = Lang::En;
    let w = BundleWriter::create(dir.path(), m).unwrap();
    w.finish(&out, None).unwrap();
    let index = String::from_utf8(read_entry(&mut open(&out), "index.html", None)).unwrap();
    assert!(index.contains("<html lang=\"en\">"));
    assert!(index.find("id=\"en\"").unwrap() < index.find("id=\"zh-CN\"").unwrap());
}

/// Rewrites a bundle through `change`, which gets each entry's name and content and returns
/// what to write instead (`None` drops it); `extra` entries are appended.
fn rewrite(
    path: &Path,
    out: &Path,
    mut change: impl FnMut(&str, Vec<u8>) -> Option<Vec<u8>>,
    extra: &[(&str, &[u8])],
) {
    let mut zip = open(path);
    let mut w = zip::ZipWriter::new(File::create(out).expect("rewrite the bundle"));
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).expect("rewrite the bundle");
        let name = entry.name().expect("rewrite the bundle").into_owned();
        let mut content = Vec::new();
        entry.read_to_end(&mut content).expect("rewrite the bundle");
        if let Some(content) = change(&name, content) {
            w.start_file(name, SimpleFileOptions::default())
                .expect("rewrite the bundle");
            w.write_all(&content).expect("rewrite the bundle");
        }
    }
    for (name, content) in extra {
        w.start_file(*name, SimpleFileOptions::default())
            .expect("rewrite the bundle");
        w.write_all(content).expect("rewrite the bundle");
    }
    w.finish().expect("rewrite the bundle");
}

#[test]
fn tampering_is_reported() {
    let dir = TempDir::new();
    let good = dir.path().join("good.zip");
    write_policy_bundle(dir.path(), &good, None);

    // One byte of one entry changed (same size, so only the hash can tell).
    let changed = dir.path().join("changed.zip");
    rewrite(
        &good,
        &changed,
        |name, mut content| {
            if name == "data/website/account.csv" {
                let i = content.iter().position(|b| *b == b'@').unwrap();
                content[i] = b'#';
            }
            Some(content)
        },
        &[],
    );
    let report = verify(&changed, None).unwrap();
    assert!(!report.is_ok());
    assert_eq!(report.mismatched.len(), 1, "{:?}", report.problems());
    assert_eq!(report.mismatched[0].path, "data/website/account.csv");
    assert!(matches!(
        report.mismatched[0].problem,
        MismatchProblem::Sha256 { .. }
    ));
    assert!(report.missing.is_empty() && report.extra.is_empty());

    // A record removed from a JSON file: size and hash differ.
    let shorter = dir.path().join("shorter.zip");
    rewrite(
        &good,
        &shorter,
        |name, content| {
            if name == "data/website/downloads.json" {
                let mut v: Vec<Value> = serde_json::from_slice(&content).unwrap();
                v.pop();
                return Some(serde_json::to_vec_pretty(&v).unwrap());
            }
            Some(content)
        },
        &[],
    );
    let report = verify(&shorter, None).unwrap();
    assert!(matches!(
        report.mismatched[0].problem,
        MismatchProblem::Size { .. }
    ));

    // An entry removed.
    let removed = dir.path().join("removed.zip");
    rewrite(
        &good,
        &removed,
        |name, content| (name != "files/callcenter/2026-02-01 通话录音.wav").then_some(content),
        &[],
    );
    let report = verify(&removed, None).unwrap();
    assert!(!report.is_ok());
    assert_eq!(report.missing, ["files/callcenter/2026-02-01 通话录音.wav"]);
    assert!(report.mismatched.is_empty() && report.extra.is_empty());

    // An entry added.
    let added = dir.path().join("added.zip");
    rewrite(
        &good,
        &added,
        |_, content| Some(content),
        &[("files/website/invoice.pdf", b"%PDF-1.7 not ours")],
    );
    let report = verify(&added, None).unwrap();
    assert!(!report.is_ok());
    assert_eq!(report.extra, ["files/website/invoice.pdf"]);
    assert!(report.missing.is_empty() && report.mismatched.is_empty());

    // A byte flipped in the file itself: the entry no longer decompresses or fails its CRC.
    let flipped = dir.path().join("flipped.zip");
    let mut bytes = fs::read(&good).unwrap();
    bytes[200] ^= 0x55;
    fs::write(&flipped, &bytes).unwrap();
    let report = verify(&flipped, None).unwrap();
    assert!(!report.is_ok());
    assert_eq!(report.mismatched.len(), 1, "{:?}", report.problems());
    assert_eq!(report.mismatched[0].path, "index.html");

    // The manifest rewritten to match a changed file, but not its row count.
    let forged = dir.path().join("forged.zip");
    let mut new_downloads = Vec::new();
    rewrite(
        &good,
        &forged,
        |name, content| {
            if name == "data/website/downloads.json" {
                let mut v: Vec<Value> = serde_json::from_slice(&content).unwrap();
                v.pop();
                new_downloads = serde_json::to_vec_pretty(&v).unwrap();
                return Some(new_downloads.clone());
            }
            if name == "manifest.json" {
                let mut m: Manifest = serde_json::from_slice(&content).unwrap();
                for f in &mut m.files {
                    if f.path == "data/website/downloads.json" {
                        f.size = new_downloads.len() as u64;
                        f.sha256 = hex::encode(Sha256::digest(&new_downloads));
                    }
                }
                return Some(serde_json::to_vec(&m).unwrap());
            }
            Some(content)
        },
        &[],
    );
    let report = verify(&forged, None).unwrap();
    assert!(report.mismatched.is_empty(), "{:?}", report.problems());
    assert!(!report.manifest_complete);
    assert_eq!(
        report.manifest_problems,
        ["data/website/downloads.json holds 2 rows, the manifest says 3"]
    );

    // A manifest that drops an entry from its list but keeps the entry in the archive.
    let incomplete = dir.path().join("incomplete.zip");
    rewrite(
        &good,
        &incomplete,
        |name, content| {
            if name == "manifest.json" {
                let mut m: Manifest = serde_json::from_slice(&content).unwrap();
                m.files.retain(|f| f.path != "data/callcenter/calls.csv");
                return Some(serde_json::to_vec(&m).unwrap());
            }
            Some(content)
        },
        &[],
    );
    let report = verify(&incomplete, None).unwrap();
    assert_eq!(report.extra, ["data/callcenter/calls.csv"]);
    assert!(!report.manifest_complete);
    assert_eq!(
        report.manifest_problems,
        ["data/callcenter/calls.csv is named by the manifest but not listed in its files"]
    );
}

#[test]
fn a_file_that_is_not_a_bundle_is_refused() {
    let dir = TempDir::new();
    let junk = dir.path().join("junk.zip");
    fs::write(&junk, b"not a zip at all").unwrap();
    assert!(matches!(
        verify(&junk, None),
        Err(ExportError::NotABundle(_))
    ));
    let no_manifest = dir.path().join("nomanifest.zip");
    let mut w = zip::ZipWriter::new(File::create(&no_manifest).unwrap());
    w.start_file("index.html", SimpleFileOptions::default())
        .unwrap();
    w.finish().unwrap();
    let err = verify(&no_manifest, None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "not a rightsdesk bundle: it has no manifest.json"
    );
}

#[test]
fn encrypted_bundles_need_the_password() {
    let dir = TempDir::new();
    let out = dir.path().join("secret.zip");
    let password = generate_password();
    write_policy_bundle(dir.path(), &out, Some(&password));

    let report = verify(&out, Some(password.expose())).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems());
    assert!(report.encrypted);
    assert_eq!(report.manifest.reference, "PR-2026-000123");

    let err = verify(&out, None).unwrap_err();
    assert!(matches!(err, ExportError::PasswordRequired));
    assert_eq!(
        err.to_string(),
        "the bundle is encrypted: a password is required"
    );
    let err = verify(&out, Some("WRONG-PASS-WORD-XXXX-YYYY-ZZZZ")).unwrap_err();
    assert!(matches!(err, ExportError::WrongPassword));
    assert_eq!(
        err.to_string(),
        "the password is wrong, or the encrypted manifest was altered"
    );

    // Every entry is encrypted, the manifest included, and reads back with the password.
    let mut zip = open(&out);
    for i in 0..zip.len() {
        assert!(zip.by_index_data(i).unwrap().encrypted());
    }
    assert!(zip.by_name("manifest.json").is_err());
    let json = read_entry(
        &mut zip,
        "data/website/account.json",
        Some(password.expose()),
    );
    let back: Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(back[0]["name"], "李雷");
    assert_eq!(
        read_entry(
            &mut zip,
            "files/callcenter/2026-02-01 通话录音.wav",
            Some(password.expose())
        ),
        RECORDING
    );

    // A byte changed inside an encrypted entry fails its authentication.
    let flipped = dir.path().join("flipped-secret.zip");
    let mut bytes = fs::read(&out).unwrap();
    bytes[300] ^= 0x01;
    fs::write(&flipped, &bytes).unwrap();
    let report = verify(&flipped, Some(password.expose())).unwrap();
    assert_eq!(report.mismatched.len(), 1, "{:?}", report.problems());
    assert_eq!(report.mismatched[0].path, "index.html");
    assert!(matches!(
        report.mismatched[0].problem,
        MismatchProblem::Unreadable { .. } | MismatchProblem::Sha256 { .. }
    ));

    // An unencrypted entry slipped into an encrypted bundle is named.
    let mixed = dir.path().join("mixed.zip");
    {
        let mut src = open(&out);
        let mut w = zip::ZipWriter::new(File::create(&mixed).unwrap());
        for i in 0..src.len() {
            w.raw_copy_file(src.by_index_raw(i).unwrap()).unwrap();
        }
        w.start_file("files/website/extra.txt", SimpleFileOptions::default())
            .unwrap();
        w.write_all(b"x").unwrap();
        w.finish().unwrap();
    }
    let report = verify(&mixed, Some(password.expose())).unwrap();
    assert!(!report.encrypted);
    assert_eq!(report.extra, ["files/website/extra.txt"]);

    // A password for a bundle that isn't encrypted: the bundle verifies, and says so.
    let plain = dir.path().join("plain.zip");
    write_policy_bundle(dir.path(), &plain, None);
    let report = verify(&plain, Some(password.expose())).unwrap();
    assert!(!report.encrypted);
    assert!(
        report
            .mismatched
            .iter()
            .all(|m| m.problem == MismatchProblem::NotEncrypted)
    );
}

#[test]
fn an_empty_bundle_says_no_data_was_found() {
    let dir = TempDir::new();
    let out = dir.path().join("empty.zip");
    let mut w = BundleWriter::create(dir.path(), meta()).unwrap();
    let mut sources = policy_sources();
    for s in &mut sources {
        s.status = SourceStatus::NoData;
    }
    // An answered source that returned nothing is the same as one with no data.
    sources[0].status = SourceStatus::Answered;
    for s in sources {
        w.add_source(s).unwrap();
    }
    let manifest = w.finish(&out, None).unwrap();
    assert_eq!(entry_names(&out), ["index.html", "manifest.json"]);
    assert_eq!(manifest.files.len(), 1);
    assert!(manifest.sources.iter().all(|s| {
        s.categories
            .iter()
            .all(|c| c.rows == 0 && c.json.is_none() && c.csv.is_none())
    }));
    let report = verify(&out, None).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems());

    let index = String::from_utf8(read_entry(&mut open(&out), "index.html", None)).unwrap();
    assert!(index.contains("我们在这些系统中没有找到关于您的个人信息。"));
    assert!(index.contains("We found no personal data about you in these systems."));
    assert!(
        index.contains("技术论坛"),
        "each source searched is still listed"
    );
    assert!(
        index.contains("注册使用技术论坛"),
        "with its categories and purposes"
    );

    // With one source failed, the page does not claim it was searched.
    let out = dir.path().join("empty-failed.zip");
    let mut w = BundleWriter::create(dir.path(), meta()).unwrap();
    for mut s in policy_sources() {
        if s.status == SourceStatus::Answered {
            s.status = SourceStatus::NoData;
        }
        w.add_source(s).unwrap();
    }
    w.finish(&out, None).unwrap();
    let index = String::from_utf8(read_entry(&mut open(&out), "index.html", None)).unwrap();
    assert!(
        index.contains(
            "在完成查询的系统中，我们没有找到关于您的个人信息；另有 1 个系统未能完成查询"
        )
    );
    assert!(index.contains("1 system could not be searched"));

    // No source at all.
    let out = dir.path().join("nothing.zip");
    BundleWriter::create(dir.path(), meta())
        .unwrap()
        .finish(&out, None)
        .unwrap();
    assert!(verify(&out, None).unwrap().is_ok());
}

#[test]
fn attachment_names_are_sanitised_and_unique() {
    let dir = TempDir::new();
    let out = dir.path().join("files.zip");
    let mut w = BundleWriter::create(dir.path(), meta()).unwrap();
    w.add_source(source(
        "tickets",
        "工单",
        "Tickets",
        SourceStatus::Answered,
        vec![],
    ))
    .unwrap();
    let mut paths = Vec::new();
    for name in [
        "../../../etc/passwd",
        "/etc/passwd",
        "C:\\Users\\li\\日志.log",
        "..",
        "截图\u{0007}\n.png",
        "PASSWD",
        "a\u{202E}gnp.exe",
    ] {
        paths.push(w.add_file("tickets", name, &mut &b"data"[..]).unwrap());
    }
    assert_eq!(
        paths,
        [
            "files/tickets/passwd",
            "files/tickets/passwd (2)",
            "files/tickets/日志.log",
            "files/tickets/file",
            "files/tickets/截图.png",
            "files/tickets/PASSWD (3)",
            "files/tickets/agnp.exe",
        ]
    );
    w.finish(&out, None).unwrap();
    assert!(verify(&out, None).unwrap().is_ok());
    let mut zip = open(&out);
    for i in 0..zip.len() {
        let entry = zip.by_index(i).unwrap();
        let name = entry.name().unwrap().into_owned();
        let enclosed = entry.enclosed_name().expect("no entry escapes the folder");
        assert!(enclosed.is_relative(), "{name}");
        assert!(!name.chars().any(char::is_control), "{name:?}");
    }
}

#[test]
fn csv_quotes_commas_quotes_and_newlines() {
    let dir = TempDir::new();
    let out = dir.path().join("csv.zip");
    let mut w = BundleWriter::create(dir.path(), meta()).unwrap();
    w.add_source(source(
        "website",
        "官网",
        "Website",
        SourceStatus::Answered,
        vec![category(
            "feedback",
            "意见反馈",
            "Feedback",
            "处理您的问题或需求",
        )],
    ))
    .unwrap();
    let values = [
        "plain",
        "a,b",
        "say \"hi\"",
        "line one\nline two",
        "crlf\r\nend",
        " leading space",
        "=SUM(A1:A2)",
        "逗号，中文",
        "",
    ];
    for v in values {
        w.add_record("website", "feedback", &obj(json!({"text": v, "n": 1})))
            .unwrap();
    }
    w.finish(&out, None).unwrap();
    let bytes = read_entry(&mut open(&out), "data/website/feedback.csv", None);
    let text = std::str::from_utf8(&bytes[3..]).unwrap();
    assert!(text.starts_with("n,text\r\n1,plain\r\n"), "{text}");
    assert!(text.contains("1,\"a,b\"\r\n"), "{text}");
    assert!(text.contains("1,\"say \"\"hi\"\"\"\r\n"), "{text}");
    assert!(text.contains("1,\"line one\nline two\"\r\n"), "{text}");
    assert!(
        text.contains("1,=SUM(A1:A2)\r\n"),
        "values are not altered: {text}"
    );
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let back: Vec<String> = reader.records().map(|r| r.unwrap()[1].to_owned()).collect();
    assert_eq!(back, values);
}

#[test]
fn index_html_escapes_everything_it_shows() {
    let dir = TempDir::new();
    let out = dir.path().join("xss.zip");
    let evil = "<script>alert('x')</script>";
    let mut m = meta();
    m.reference = format!("PR-2026-000123{evil}");
    m.request_kind = evil.into();
    m.subject_identifiers = vec![Identifier::new(IdentifierKind::AccountId, evil)];
    let mut w = BundleWriter::create(dir.path(), m).unwrap();
    let mut info = source(
        "crm",
        evil,
        evil,
        SourceStatus::Answered,
        vec![CategoryInfo {
            key: "notes".into(),
            title_zh: evil.into(),
            title_en: evil.into(),
            purpose_zh: evil.into(),
            purpose_en: evil.into(),
            columns: vec![],
        }],
    );
    info.owner = evil.into();
    w.add_source(info).unwrap();
    w.add_source(source(
        "erp",
        "ERP",
        "ERP",
        SourceStatus::Failed {
            reason: evil.into(),
        },
        vec![],
    ))
    .unwrap();
    w.add_record("crm", "notes", &obj(json!({"note": evil})))
        .unwrap();
    w.add_file(
        "crm",
        "<img src=x onerror=alert(1)>\"&'.pdf",
        &mut &b"x"[..],
    )
    .unwrap();
    w.finish(&out, None).unwrap();
    let index = String::from_utf8(read_entry(&mut open(&out), "index.html", None)).unwrap();
    assert!(!index.contains("<script"), "{index}");
    assert!(!index.contains("<img"), "{index}");
    assert!(index.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
    assert!(index.contains("Content-Security-Policy"));
    // The file link is percent-encoded, its text escaped.
    assert!(
        index.contains("href=\"files/crm/_img%20src%3Dx%20onerror%3Dalert%281%29__%26%27.pdf\""),
        "{index}"
    );
    assert!(
        index.contains(">_img src=x onerror=alert(1)__&amp;&#39;.pdf</a>"),
        "{index}"
    );
}

#[test]
fn mistakes_are_refused_with_stable_messages() {
    let dir = TempDir::new();
    let mut w = BundleWriter::create(dir.path(), meta()).unwrap();
    for s in policy_sources() {
        w.add_source(s).unwrap();
    }
    let record = obj(json!({"a": 1}));
    let err = w.add_record("nowhere", "account", &record).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown source \"nowhere\": add it with add_source first"
    );
    let err = w.add_record("website", "nothing", &record).unwrap_err();
    assert_eq!(
        err.to_string(),
        "source \"website\" declares no category \"nothing\""
    );
    let err = w.add_record("forum", "forum_account", &record).unwrap_err();
    assert_eq!(
        err.to_string(),
        "source \"forum\" is marked no_data but has records or files"
    );
    assert!(matches!(
        w.add_file("forum", "a.txt", &mut &b"x"[..]),
        Err(ExportError::NoDataSourceHasData(_))
    ));
    let err = w
        .add_source(source("WEBSITE", "x", "x", SourceStatus::Answered, vec![]))
        .unwrap_err();
    assert_eq!(err.to_string(), "source \"WEBSITE\" was added twice");
    let err = w
        .add_source(source("../up", "x", "x", SourceStatus::Answered, vec![]))
        .unwrap_err();
    assert!(matches!(
        err,
        ExportError::InvalidKey {
            what: "source name",
            ..
        }
    ));
    let err = w
        .add_source(source(
            "dup",
            "x",
            "x",
            SourceStatus::Answered,
            vec![category("a", "", "", ""), category("a", "", "", "")],
        ))
        .unwrap_err();
    assert!(matches!(err, ExportError::DuplicateCategory { .. }));
    // A failed add_source leaves the name free.
    w.add_source(source("dup", "x", "x", SourceStatus::Answered, vec![]))
        .unwrap();

    // A status can change, but not to no_data once there are records.
    w.add_record("website", "account", &record).unwrap();
    assert!(matches!(
        w.set_source_status("website", SourceStatus::NoData),
        Err(ExportError::NoDataSourceHasData(_))
    ));
    w.set_source_status(
        "website",
        SourceStatus::Failed {
            reason: "timeout".into(),
        },
    )
    .unwrap();

    // An existing output is not overwritten.
    let out = dir.path().join("taken.zip");
    fs::write(&out, b"someone else's").unwrap();
    let err = w.finish(&out, None).unwrap_err();
    assert!(matches!(err, ExportError::OutputExists(_)));
    assert_eq!(fs::read(&out).unwrap(), b"someone else's");
    // Nothing is left behind but that file.
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
}

/// The process's peak resident set size, in KiB (Linux).
fn peak_rss_kib() -> u64 {
    let status = fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("a VmHWM line");
    line.split_whitespace()
        .nth(1)
        .expect("a VmHWM line")
        .parse()
        .expect("a VmHWM line")
}

fn write_rows(dir: &Path, rows: u32, password: Option<&Password>) -> u64 {
    // Resets the peak RSS to the current RSS (Linux 4.0+).
    fs::write("/proc/self/clear_refs", "5").expect("reset the peak RSS");
    let out = dir.join(format!("rows-{rows}.zip"));
    let mut w = BundleWriter::create(dir, meta()).expect("write the rows");
    w.add_source(policy_sources().remove(0))
        .expect("write the rows");
    let mut record = Map::new();
    for i in 0..rows {
        record.insert("seq".into(), json!(i));
        record.insert("name".into(), json!("李雷"));
        record.insert("email".into(), json!(format!("user{i}@example.cn")));
        record.insert("page".into(), json!(format!("/下载/产品手册/{}", i % 977)));
        record.insert(
            "agent".into(),
            json!("Mozilla/5.0 (Windows NT 10.0; Win64; x64)"),
        );
        w.add_record("website", "account", &record)
            .expect("write the rows");
    }
    w.finish(&out, password).expect("write the rows");
    let report = verify(&out, password.map(Password::expose)).expect("verify");
    assert!(report.is_ok());
    let peak = peak_rss_kib();
    fs::remove_file(&out).expect("write the rows");
    peak
}

/// Writes and verifies 20,000 rows, then 400,000 (about 80 MB of JSON), and compares the peak
/// resident memory of the two: a writer that kept records would grow by hundreds of MB.
#[test]
#[ignore = "measures this process's peak RSS; run alone: cargo test -p rightsdesk-export --test bundle -- --ignored --exact memory_stays_flat_whatever_the_number_of_rows"]
fn memory_stays_flat_whatever_the_number_of_rows() {
    let dir = TempDir::new();
    let password = Password::new("memory-test-password").unwrap();
    let small = write_rows(dir.path(), 20_000, Some(&password));
    let large = write_rows(dir.path(), 400_000, Some(&password));
    eprintln!("peak RSS: 20,000 rows {small} KiB, 400,000 rows {large} KiB");
    assert!(
        large < small + 16 * 1024,
        "peak RSS grew from {small} KiB to {large} KiB"
    );
}

#[test]
fn records_without_fields_still_count() {
    let dir = TempDir::new();
    let out = dir.path().join("empty-records.zip");
    let mut w = BundleWriter::create(dir.path(), meta()).unwrap();
    w.add_source(source(
        "website",
        "官网",
        "Website",
        SourceStatus::Answered,
        vec![category("visits", "访问", "Visits", "统计")],
    ))
    .unwrap();
    for _ in 0..3 {
        w.add_record("website", "visits", &Map::new()).unwrap();
    }
    w.finish(&out, None).unwrap();
    let report = verify(&out, None).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems());
    let json: Value = serde_json::from_slice(&read_entry(
        &mut open(&out),
        "data/website/visits.json",
        None,
    ))
    .unwrap();
    assert_eq!(json, json!([{}, {}, {}]));
}
