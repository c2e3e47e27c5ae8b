//! Commands that need no server: `rightsdesk sources check` connects to every source of
//! the sources file and says what it can see (exit 1 when one cannot be used), and
//! `rightsdesk bundle verify` checks a bundle against its manifest (exit 1 when a file
//! was changed), encrypted ones with the password from a file, and `rightsdesk
//! certificate` prints the signing key and refuses a certificate that does not verify.

use std::process::Output;

use rightsdesk_export::{
    BundleMeta, BundleWriter, CategoryInfo, Identifier, IdentifierKind, Lang, Password, SourceInfo,
    SourceStatus,
};
use rightsdesk_tests::TempDir;
use rightsdesk_tests::serde_json::{Value, json};
use sea_orm::{ConnectionTrait, Database};
use tokio::process::Command;

async fn rightsdesk(dir: &TempDir, args: &[&str], env: &[(&str, String)]) -> (Output, Value) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rightsdesk"));
    command
        .args(args)
        .current_dir(&dir.0)
        .env("RIGHTSDESK__LOG__LEVEL", "error")
        .env_remove("RIGHTSDESK_CONFIG")
        .env_remove("RIGHTSDESK_BUNDLE_PASSWORD");
    for (k, v) in env {
        command.env(k, v);
    }
    let out = command.output().await.expect("run rightsdesk");
    let json = rightsdesk_tests::serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out, json)
}

#[tokio::test]
async fn sources_check_reports_what_each_source_can_see() {
    let dir = TempDir::new();
    let db_file = dir.0.join("website.db");
    let db = Database::connect(format!("sqlite://{}?mode=rwc", db_file.display()))
        .await
        .expect("a source database");
    db.execute_unprepared(
        "CREATE TABLE users (id TEXT PRIMARY KEY, email TEXT, name TEXT); \
         CREATE TABLE downloads (user_id TEXT, product TEXT)",
    )
    .await
    .expect("tables");
    db.close().await.ok();
    let good = r#"
[[source]]
name = "website"
title_zh = "官网"
title_en = "Website"
owner = "web@example.com"
[source.sql]
url_env = "WEBSITE_DB"
[[source.sql.table]]
name = "users"
category = "account"
key = "id"
match = { email = "email", account_id = "id" }
columns = ["id", "email", "name"]
erase = "delete"
[[source.sql.table]]
name = "downloads"
category = "downloads"
parent = { table = "users", column = "user_id" }
columns = ["product"]
erase = "delete"
"#
    .to_owned();
    std::fs::write(dir.0.join("sources.toml"), &good).expect("a sources file");
    let env = [
        ("RIGHTSDESK__SOURCES__FILE", "sources.toml".to_owned()),
        ("WEBSITE_DB", format!("sqlite://{}", db_file.display())),
    ];
    let (out, report) = rightsdesk(&dir, &["sources", "check"], &env).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(report[0]["source"], "website");
    assert_eq!(report[0]["connector"], "sql");
    assert_eq!(report[0]["ok"], true, "{report}");
    assert_eq!(report[0]["items"].as_array().map(Vec::len), Some(4));
    // Every table says how it is erased, and the write connection opens.
    assert_eq!(report[0]["items"][1]["name"], "erasure");
    assert_eq!(report[0]["items"][1]["ok"], true, "{report}");

    // A column that is not there, and a service nobody answers for.
    let port = rightsdesk_tests::free_port();
    let broken = good.replace(
        r#"columns = ["product"]"#,
        r#"columns = ["product", "version"]"#,
    ) + format!(
        r#"
[[source]]
name = "crm"
title_zh = "客服"
title_en = "CRM"
owner = "crm@example.com"
categories = ["tickets"]
timeout_secs = 2
[source.http]
url = "http://127.0.0.1:{port}/lookup"
secret = "a-shared-secret-of-at-least-32-bytes!"
"#
    )
    .as_str();
    std::fs::write(dir.0.join("sources.toml"), broken).expect("a sources file");
    let (out, report) = rightsdesk(&dir, &["sources", "check"], &env).await;
    assert_eq!(out.status.code(), Some(1), "{report}");
    let downloads = report[0]["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["name"] == "downloads"))
        .expect("the downloads table");
    assert_eq!(downloads["ok"], false);
    assert!(
        downloads["detail"]
            .as_str()
            .is_some_and(|d| d.contains("version")),
        "{downloads}"
    );
    assert_eq!(report[1]["ok"], false);

    // A sources file with a name that is not a plain identifier: refused at start.
    std::fs::write(
        dir.0.join("sources.toml"),
        good.replace(
            r#"name = "downloads""#,
            r#"name = "downloads; DROP TABLE users""#,
        ),
    )
    .expect("a sources file");
    let (out, _) = rightsdesk(&dir, &["sources", "check"], &env).await;
    assert_eq!(out.status.code(), Some(2), "an invalid configuration");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a plain table name"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn write_bundle(dir: &TempDir, name: &str, password: Option<&Password>) -> std::path::PathBuf {
    let work = dir.0.join(format!("work-{name}"));
    std::fs::create_dir_all(&work).expect("a work directory");
    let mut writer = BundleWriter::create(
        &work,
        BundleMeta {
            reference: "PR-2026-000007".to_owned(),
            request_kind: "copy".to_owned(),
            subject_identifiers: vec![Identifier::new(IdentifierKind::Email, "li.lei@example.com")],
            created_at: chrono::Utc::now(),
            language: Lang::ZhCn,
        },
    )
    .expect("a writer");
    writer
        .add_source(SourceInfo {
            name: "website".to_owned(),
            display_name_zh: "官网".to_owned(),
            display_name_en: "Website".to_owned(),
            owner: "web@example.com".to_owned(),
            status: SourceStatus::Answered,
            categories: vec![CategoryInfo {
                key: "account".to_owned(),
                title_zh: "账户信息".to_owned(),
                title_en: "Account".to_owned(),
                purpose_zh: "注册并登录".to_owned(),
                purpose_en: "Signing in".to_owned(),
                columns: vec![],
            }],
        })
        .expect("a source");
    let record = json!({"name": "李雷", "email": "li.lei@example.com"});
    writer
        .add_record("website", "account", record.as_object().expect("an object"))
        .expect("a record");
    let out = dir.0.join(name);
    writer.finish(&out, password).expect("a bundle");
    out
}

#[tokio::test]
async fn bundle_verify_checks_a_bundle_against_its_manifest() {
    let dir = TempDir::new();
    let bundle = write_bundle(&dir, "bundle.zip", None);
    let path = bundle.display().to_string();
    let (out, report) = rightsdesk(&dir, &["bundle", "verify", &path], &[]).await;
    assert!(out.status.success(), "{report}");
    assert_eq!(report["ok"], true);
    assert_eq!(report["reference"], "PR-2026-000007");

    // One bit of a stored file changed: the manifest no longer matches.
    let mut bytes = std::fs::read(&bundle).expect("the bundle");
    // Inside the first stored file's compressed data (after its 30-byte local header
    // and name).
    bytes[80] ^= 0x01;
    std::fs::write(dir.0.join("tampered.zip"), &bytes).expect("write");
    let tampered = dir.0.join("tampered.zip").display().to_string();
    let (out, report) = rightsdesk(&dir, &["bundle", "verify", &tampered], &[]).await;
    assert_ne!(out.status.code(), Some(0), "{report}");

    // Encrypted: the password from a file, or from the environment.
    let password = Password::new("ABCD-EFGH-JKLM-NPQR-STUV-WXYZ").expect("a password");
    let encrypted = write_bundle(&dir, "encrypted.zip", Some(&password));
    let encrypted = encrypted.display().to_string();
    std::fs::write(dir.0.join("password"), format!("{}\n", password.expose())).expect("write");
    let (out, report) = rightsdesk(
        &dir,
        &[
            "bundle",
            "verify",
            &encrypted,
            "--password-file",
            "password",
        ],
        &[],
    )
    .await;
    assert!(out.status.success(), "{report}");
    assert_eq!(report["encrypted"], true);
    let (out, _) = rightsdesk(&dir, &["bundle", "verify", &encrypted], &[]).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("password"));
    let (out, _) = rightsdesk(
        &dir,
        &["bundle", "verify", &encrypted],
        &[("RIGHTSDESK_BUNDLE_PASSWORD", password.expose().to_owned())],
    )
    .await;
    assert!(out.status.success());
}

#[tokio::test]
async fn certificate_commands_print_the_key_and_refuse_a_changed_certificate() {
    let dir = TempDir::new();
    let (out, _) = rightsdesk(&dir, &["migrate"], &[]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (out, key) = rightsdesk(&dir, &["certificate", "public-key"], &[]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(key["algorithm"], "Ed25519");
    assert_eq!(key["public_key"].as_str().map(str::len), Some(44));
    assert_eq!(key["key_id"].as_str().map(str::len), Some(16));
    // Kept: the same key next time.
    let (_, again) = rightsdesk(&dir, &["certificate", "public-key"], &[]).await;
    assert_eq!(again, key);

    let file = dir.0.join("certificate.json");
    std::fs::write(
        &file,
        json!({
            "certificate": {"type": "rightsdesk.deletion_certificate.v1", "reference": "PR-2026-000001"},
            "signature": "AAAA",
            "public_key": key["public_key"],
        })
        .to_string(),
    )
    .expect("a file");
    let (out, report) = rightsdesk(&dir, &["certificate", "verify", "certificate.json"], &[]).await;
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert_eq!(report["ok"], false);
    assert!(report["problem"].is_string());
}
