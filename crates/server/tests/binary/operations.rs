//! What operators run besides the service: `rightsdesk config check` (the effective
//! configuration, secrets masked), `rightsdesk export-evidence` (one request's history as
//! a signed archive, and its check), and the worker's own health and metrics listener
//! (`worker.bind`) with the installation's gauges.

use std::process::{Output, Stdio};
use std::time::Duration;

use rightsdesk_tests::reqwest::{self, Method};
use rightsdesk_tests::serde_json::{Value, json};
use rightsdesk_tests::{TempDir, TestApp, free_port};
use tokio::process::Command;

async fn rightsdesk(dir: &TempDir, args: &[&str], env: &[(&str, &str)]) -> (Output, Value) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rightsdesk"));
    command
        .args(args)
        .current_dir(&dir.0)
        .env("RIGHTSDESK__LOG__LEVEL", "error")
        .env_remove("RIGHTSDESK_CONFIG");
    for (k, v) in env {
        command.env(k, v);
    }
    let out = command.output().await.expect("run rightsdesk");
    let json = rightsdesk_tests::serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out, json)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn config_check_prints_the_effective_configuration_with_every_secret_masked() {
    let dir = TempDir::new();
    let token_secret = "a-token-secret-of-at-least-thirty-two-bytes";
    let db_password = "s3cret-db-password";
    let url = format!("postgres://rightsdesk:{db_password}@db.internal:5432/rightsdesk");
    let env = [
        ("RIGHTSDESK__DATABASE__URL", url.as_str()),
        ("RIGHTSDESK__SECURITY__TOKEN_SECRET", token_secret),
        ("RIGHTSDESK__MAIL__SMTP__PASSWORD", "smtp-password"),
        ("RIGHTSDESK__HTTP__BIND", "0.0.0.0:8080"),
        ("RIGHTSDESK__WORKER__BIND", "0.0.0.0:9090"),
    ];
    let (out, shown) = rightsdesk(&dir, &["config", "check", "--json"], &env).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    for secret in [token_secret, db_password, "smtp-password"] {
        assert!(!text.contains(secret), "{secret} shown: {text}");
    }
    assert_eq!(shown["http"]["bind"], "0.0.0.0:8080");
    assert_eq!(shown["worker"]["bind"], "0.0.0.0:9090");
    assert_eq!(
        shown["database"]["url"],
        "postgres://rightsdesk:********@db.internal:5432/rightsdesk"
    );
    assert_eq!(shown["security"]["token_secret"], "********");
    assert_eq!(shown["mail"]["smtp"]["password"], "********");
    // A default stays as it is; an unset secret stays unset.
    assert_eq!(shown["worker"]["in_process"], true);
    assert!(shown["security"]["requester_token_key"].is_null());

    // TOML by default, every section present.
    let (out, _) = rightsdesk(&dir, &["config", "check"], &env).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let toml = String::from_utf8_lossy(&out.stdout);
    assert!(
        toml.contains("[http]") && toml.contains("[worker]"),
        "{toml}"
    );
    assert!(!toml.contains(token_secret));

    // Invalid: every problem listed, exit 2, nothing printed on standard output.
    let (out, _) = rightsdesk(
        &dir,
        &["config", "check"],
        &[
            ("RIGHTSDESK__WORKER__BIND", "nowhere"),
            ("RIGHTSDESK__HTTP__BNID", "0.0.0.0:8080"),
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    assert!(stderr(&out).contains("bnid"), "{}", stderr(&out));
}

#[tokio::test]
async fn an_evidence_export_holds_the_whole_history_and_fails_to_verify_after_any_byte_is_changed()
{
    let app = TestApp::spawn().await;
    let filed = app.file_verified("deletion").await;
    let (id, reference) = (
        filed["id"].as_str().expect("an id"),
        filed["reference"].as_str().expect("a reference"),
    );
    let (_, token) = app.officer("wang.fang", &["officer"]).await;
    let noted = app
        .request(
            Method::POST,
            &format!("/api/v1/officer/requests/{id}/comments"),
            Some(&token),
            Some(&json!({"body": "Called the requester back."})),
        )
        .await;
    assert!(noted.status.is_success(), "{noted:?}");
    app.deliver().await;

    let dir = TempDir::new();
    let env = [("RIGHTSDESK__DATABASE__URL", app.db.url.as_str())];
    let (out, written) = rightsdesk(
        &dir,
        &[
            "export-evidence",
            reference,
            "--out",
            "export.zip",
            "--reason",
            "regulator inquiry",
        ],
        &env,
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(written["reference"], reference);
    // Never overwritten: a second export to the same file is refused.
    let (out, _) = rightsdesk(
        &dir,
        &["export-evidence", reference, "-o", "export.zip"],
        &env,
    )
    .await;
    assert!(!out.status.success());
    assert!(stderr(&out).contains("exists"), "{}", stderr(&out));

    let (out, report) = rightsdesk(&dir, &["export-evidence", "verify", "export.zip"], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert_eq!(report["ok"], true);
    assert_eq!(report["export"]["reference"], reference);
    // The service's certificate key signed it.
    let (_, key) = rightsdesk(&dir, &["certificate", "public-key"], &env).await;
    let public_key = key["public_key"].as_str().expect("a key");
    let (out, report) = rightsdesk(
        &dir,
        &[
            "export-evidence",
            "verify",
            "export.zip",
            "--public-key",
            public_key,
        ],
        &[],
    )
    .await;
    assert!(out.status.success(), "{report}");
    let other = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    let (out, report) = rightsdesk(
        &dir,
        &[
            "export-evidence",
            "verify",
            "export.zip",
            "--public-key",
            other,
        ],
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{report}");

    // What it holds: the chain to its head, ending with the export itself; the records.
    let bytes = std::fs::read(dir.0.join("export.zip")).expect("the export");
    let mut zip = zip_entries(&bytes);
    let events: Vec<Value> =
        rightsdesk_tests::serde_json::from_slice(&zip.remove("events.json").expect("events.json"))
            .expect("events");
    let types: Vec<&str> = events
        .iter()
        .filter_map(|e| e["event_type"].as_str())
        .collect();
    assert_eq!(types.first(), Some(&"filed"), "{types:?}");
    assert!(types.contains(&"verified"), "{types:?}");
    assert!(
        types.contains(&"comment_added") || types.iter().any(|t| t.contains("comment")),
        "{types:?}"
    );
    let last = events.last().expect("events");
    assert_eq!(last["event_type"], "evidence_exported");
    assert_eq!(last["data"]["reason"], "regulator inquiry");
    let notifications: Vec<Value> = rightsdesk_tests::serde_json::from_slice(
        &zip.remove("records/notifications.json")
            .expect("notifications"),
    )
    .expect("rows");
    assert!(notifications.len() >= 2, "{notifications:?}");
    assert!(notifications.iter().all(|n| n.get("sealed").is_none()));
    let comments =
        String::from_utf8(zip.remove("records/comments.json").expect("comments")).expect("text");
    assert!(comments.contains("Called the requester back."));
    // The request's own log records the export too, for whoever reads it next.
    let detail = app.detail(&token, id).await;
    assert!(
        detail["timeline"]
            .as_array()
            .expect("a timeline")
            .iter()
            .any(|e| e["event"] == "evidence_exported"),
        "{detail}"
    );

    // Any byte changed anywhere in the file fails the check.
    assert!(rightsdesk_core::evidence_export::verify_export(&bytes, None).is_ok());
    for at in 0..bytes.len() {
        let mut changed = bytes.clone();
        changed[at] ^= 0x01;
        assert!(
            rightsdesk_core::evidence_export::verify_export(&changed, None).is_err(),
            "byte {at} of {} changed and the export still verified",
            bytes.len()
        );
    }
    // Cut short or lengthened: refused too.
    assert!(
        rightsdesk_core::evidence_export::verify_export(&bytes[..bytes.len() - 1], None).is_err()
    );
    let mut longer = bytes.clone();
    longer.push(b' ');
    assert!(rightsdesk_core::evidence_export::verify_export(&longer, None).is_err());
    // And through the command, one changed byte in the middle.
    let mut changed = bytes.clone();
    changed[bytes.len() / 2] ^= 0x20;
    std::fs::write(dir.0.join("changed.zip"), &changed).expect("write");
    let (out, report) = rightsdesk(&dir, &["export-evidence", "verify", "changed.zip"], &[]).await;
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert_eq!(report["ok"], false);

    // An unknown reference: an error, and no file.
    let (out, _) = rightsdesk(
        &dir,
        &["export-evidence", "PR-2000-000000", "-o", "none.zip"],
        &env,
    )
    .await;
    assert!(!out.status.success());
    assert!(!dir.0.join("none.zip").exists());
}

/// The archive's files by name.
fn zip_entries(bytes: &[u8]) -> std::collections::BTreeMap<String, Vec<u8>> {
    use std::io::Read;
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip");
    (0..zip.len())
        .map(|i| {
            let mut entry = zip.by_index(i).expect("an entry");
            let mut out = Vec::new();
            entry.read_to_end(&mut out).expect("read");
            (entry.name().expect("a name").into_owned(), out)
        })
        .collect()
}

#[tokio::test]
async fn a_worker_serves_health_and_the_installations_gauges_on_its_bind_address() {
    let app = TestApp::spawn().await;
    // Verified: the worker runs on the wall clock, and would expire an unverified
    // request filed on the test's clock.
    app.file_verified("access").await;
    let dir = TempDir::new();
    let port = free_port();
    let log = std::fs::File::create(dir.0.join("worker.log")).expect("a log file");
    let worker = Command::new(env!("CARGO_BIN_EXE_rightsdesk"))
        .arg("worker")
        .current_dir(&dir.0)
        .env("RIGHTSDESK__DATABASE__URL", &app.db.url)
        .env("RIGHTSDESK__WORKER__BIND", format!("127.0.0.1:{port}"))
        .env("RIGHTSDESK__MAIL__FOLDER", dir.0.join("outbox"))
        .env("RIGHTSDESK__LOG__LEVEL", "warn")
        .env_remove("RIGHTSDESK_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("start rightsdesk worker");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut ready = None;
    for _ in 0..150 {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await {
            ready = Some(r.status());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        ready.map(|s| s.as_u16()),
        Some(200),
        "{}",
        std::fs::read_to_string(dir.0.join("worker.log")).unwrap_or_default()
    );
    let health = client
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status().as_u16(), 200);
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(metrics.contains("rightsdesk_requests_open 1"), "{metrics}");
    // Filed on the test's clock in March, read on the wall clock: long overdue.
    assert!(
        metrics.contains("rightsdesk_requests_overdue 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("rightsdesk_calendar_uncovered_years "),
        "{metrics}"
    );
    assert!(
        metrics.contains("rightsdesk_jobs_waiting_seconds"),
        "{metrics}"
    );
    // Only the operations routes: the API is not served by a worker.
    let api = client
        .get(format!("{base}/api/v1/openapi.json"))
        .send()
        .await
        .expect("an answer");
    assert_eq!(api.status().as_u16(), 404);
    crate::stop(worker).await;
}

#[tokio::test]
async fn keys_rotate_adds_versions_and_leaves_configured_keys_to_the_configuration() {
    let dir = TempDir::new();
    let (out, _) = rightsdesk(&dir, &["migrate"], &[]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let (out, keys) = rightsdesk(&dir, &["keys", "list"], &[]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let names: Vec<&str> = keys
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|k| k["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "officer_token_secret",
            "download_key",
            "certificate_key",
            "outbox_key",
            "evidence_key"
        ]
    );
    for key in keys.as_array().expect("a list") {
        assert_eq!(key["source"], "database", "{key}");
        assert_eq!(key["versions"].as_array().map(Vec::len), Some(1), "{key}");
        assert_eq!(key["versions"][0]["current"], true);
        // Never the key itself.
        assert!(key["versions"][0].get("value").is_none());
    }
    let (_, before) = rightsdesk(&dir, &["certificate", "public-key"], &[]).await;

    let (out, rotated) = rightsdesk(
        &dir,
        &["keys", "rotate", "--key", "certificate_key", "--now"],
        &[],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(rotated[0]["name"], "certificate_key");
    assert_eq!(rotated[0]["version"], 2);
    let (_, after) = rightsdesk(&dir, &["certificate", "public-key"], &[]).await;
    assert_ne!(after["key_id"], before["key_id"]);
    assert_eq!(after["key_id"], rotated[0]["key_id"]);
    assert_eq!(after["previous"][0]["key_id"], before["key_id"]);

    // Unknown names are refused, changing nothing.
    let (out, _) = rightsdesk(&dir, &["keys", "rotate", "--key", "reference_key"], &[]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("not a key that rotates"),
        "{}",
        stderr(&out)
    );

    // Every key, by default in two minutes; a configured key is left to the configuration.
    let secret = [(
        "RIGHTSDESK__SECURITY__TOKEN_SECRET",
        "a-token-secret-of-at-least-thirty-two-bytes",
    )];
    let (out, rotated) = rightsdesk(&dir, &["keys", "rotate"], &secret).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let rotated = rotated.as_array().expect("a list");
    assert_eq!(rotated.len(), 5);
    assert_eq!(rotated[0]["name"], "officer_token_secret");
    assert!(rotated[0]["version"].is_null());
    assert!(
        rotated[0]["skipped"]
            .as_str()
            .is_some_and(|s| s.contains("security.token_secret")),
        "{}",
        rotated[0]
    );
    assert_eq!(rotated[2]["name"], "certificate_key");
    assert_eq!(rotated[2]["version"], 3);
    let (_, keys) = rightsdesk(&dir, &["keys", "list"], &secret).await;
    assert_eq!(keys[0]["source"], "configuration");
    assert_eq!(keys[0]["configured_by"], "security.token_secret");
    let certificate = &keys[2]["versions"];
    assert_eq!(certificate.as_array().map(Vec::len), Some(3));
    // Version 3 waits for its activation; version 2 signs until then.
    assert_eq!(certificate[1]["current"], true, "{certificate}");
    assert_eq!(certificate[2]["current"], false, "{certificate}");
}
