//! `rightsdesk demo`: writes a demo source (a SQLite database shaped like the company's
//! systems, its sources file and a configuration naming them by absolute path) that
//! `sources check` accepts from any directory; refuses to overwrite it without `--force`,
//! changing nothing; and gives the documented demo people what the README promises:
//! 李雷 has records in all 15 categories, every one of them his, and 韩梅梅 has none.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;

use rightsdesk::demo::{NO_DATA, WELL_KNOWN};
use rightsdesk_connectors::{Identifiers, Record, Sources};
use rightsdesk_domain::categories::Catalogue;
use rightsdesk_tests::TempDir;
use rightsdesk_tests::serde_json::{self, Value};
use tokio::process::Command;

async fn rightsdesk(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rightsdesk"))
        .args(args)
        .current_dir(cwd)
        .env("RIGHTSDESK__LOG__LEVEL", "error")
        .env_remove("RIGHTSDESK_CONFIG")
        .env_remove("RIGHTSDESK__SOURCES__FILE")
        .env_remove("RIGHTSDESK__DATABASE__URL")
        .output()
        .await
        .expect("run rightsdesk")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `rightsdesk demo --dir demo --people 50` run in a new temporary directory: the
/// temporary directory and the demo folder (absolute).
async fn demo() -> (TempDir, PathBuf, Output) {
    let tmp = TempDir::new();
    let out = rightsdesk(&tmp.0, &["demo", "--dir", "demo", "--people", "50"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let dir = tmp.0.join("demo").canonicalize().expect("the demo folder");
    (tmp, dir, out)
}

/// Every file of `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .expect("read the demo folder")
        .map(|e| {
            let e = e.expect("an entry");
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).expect("read a file"),
            )
        })
        .collect()
}

#[tokio::test]
async fn demo_writes_a_source_that_sources_check_accepts_and_overwrites_it_only_with_force() {
    let (tmp, dir, out) = demo().await;
    let files = snapshot(&dir);
    assert_eq!(
        files.keys().map(String::as_str).collect::<Vec<_>>(),
        ["rightsdesk.toml", "sources.db", "sources.toml"],
        "the three files and nothing left over"
    );
    let config = dir.join("rightsdesk.toml");
    let config_arg = config.to_str().expect("a UTF-8 path");
    let stdout = String::from_utf8_lossy(&out.stdout);
    for expected in [
        format!("rightsdesk serve --config {config_arg}"),
        format!("rightsdesk sources check --config {config_arg}"),
        "curl -s -X POST http://127.0.0.1:8080/api/v1/requests".to_owned(),
        WELL_KNOWN.email.to_owned(),
        NO_DATA.email.to_owned(),
        format!("{}/outbox/", dir.display()),
    ] {
        assert!(stdout.contains(&expected), "{expected:?} in:\n{stdout}");
    }
    let settings = String::from_utf8_lossy(&files["rightsdesk.toml"]).into_owned();
    assert!(
        settings.contains(&format!("file = \"{}/sources.toml\"", dir.display())),
        "{settings}"
    );

    // The files name absolute paths: the check works from anywhere, and needs no
    // database (none is created).
    let elsewhere = TempDir::new();
    let out = rightsdesk(&elsewhere.0, &["sources", "check", "--config", config_arg]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
    let reports = report.as_array().expect("one report per source");
    let names: BTreeSet<&str> = reports
        .iter()
        .filter_map(|r| r["source"].as_str())
        .collect();
    assert_eq!(
        names,
        BTreeSet::from([
            "crm",
            "events",
            "forum",
            "marketing",
            "paper_archive",
            "partner_portal",
            "website"
        ])
    );
    for r in reports {
        assert_eq!(r["ok"], true, "{r}");
        let expected = if r["source"] == "paper_archive" {
            "manual"
        } else {
            "sql"
        };
        assert_eq!(r["connector"], expected, "{r}");
    }
    assert_eq!(snapshot(&dir).len(), 3, "the check changed nothing");
    assert_eq!(
        std::fs::read_dir(&elsewhere.0).map(Iterator::count).ok(),
        Some(0)
    );

    // Again without --force: refused as a usage error, and nothing changed.
    let out = rightsdesk(&tmp.0, &["demo", "--dir", "demo", "--people", "10"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--force"), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    assert_eq!(snapshot(&dir), files);

    // A file in the way is enough to refuse.
    let other = tmp.0.join("other");
    std::fs::create_dir_all(&other).expect("a folder");
    std::fs::write(other.join("sources.toml"), "# mine\n").expect("a file");
    let out = rightsdesk(&tmp.0, &["demo", "--dir", "other"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(other.join("sources.toml")).ok(),
        Some("# mine\n".to_owned())
    );
    assert!(!other.join("sources.db").exists());

    // With --force the demo files are replaced (fewer people: a smaller database), and
    // the service's own data beside them is kept.
    std::fs::write(dir.join("rightsdesk.db"), b"the service's data").expect("a file");
    let out = rightsdesk(
        &tmp.0,
        &["demo", "--dir", "demo", "--people", "10", "--force"],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let after = snapshot(&dir);
    assert!(after["sources.db"].len() < files["sources.db"].len());
    assert_eq!(after["rightsdesk.db"], b"the service's data");
    assert_eq!(after.len(), 4);

    // Usage errors exit 2.
    let out = rightsdesk(&tmp.0, &["demo", "--dir", "big", "--people", "1000000"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(!tmp.0.join("big").exists());
}

/// The child tables of the demo source: (table, the column holding its parent's key,
/// the parent table). Every other table is found by its own identity columns.
const CHILDREN: &[(&str, &str, &str)] = &[
    ("access_logs", "user_id", "users"),
    ("trial_licenses", "trial_id", "trials"),
    ("survey_answers", "response_id", "survey_responses"),
    ("ticket_messages", "ticket_id", "tickets"),
    (
        "opportunity_followups",
        "opportunity_id",
        "business_opportunities",
    ),
    ("certificates", "enrolment_id", "training_enrolments"),
    ("marketing_messages", "contact_id", "marketing_contacts"),
    ("forum_downloads", "user_id", "forum_users"),
];

/// Every record each `sql` source holds about `ids`.
async fn look_up(sources: &Sources, ids: &Identifiers) -> Vec<Record> {
    let mut records = Vec::new();
    for s in &sources.sources {
        if s.connector.kind() == "manual" {
            continue;
        }
        let mut found: Vec<Record> = Vec::new();
        s.connector
            .lookup("PR-2026-000001", ids, &mut found)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", s.name));
        records.extend(found);
    }
    records
}

fn text(r: &Record, column: &str) -> Option<String> {
    r.data
        .get(column)
        .and_then(Value::as_str)
        .map(str::to_owned)
}

#[tokio::test]
async fn the_demo_people_have_the_data_the_readme_promises() {
    let (_tmp, dir, _) = demo().await;
    let sources = Sources::load(&dir.join("sources.toml")).expect("the demo sources file");
    let catalogue: BTreeSet<String> = Catalogue::bundled().iter().map(|c| c.key.clone()).collect();
    assert_eq!(catalogue.len(), 15);

    // 李雷, by every identifier: every category, every table.
    let mobile = format!("+86{}", WELL_KNOWN.mobile);
    let everything = Identifiers {
        email: Some(WELL_KNOWN.email.to_owned()),
        mobile: Some(mobile.clone()),
        account_id: WELL_KNOWN.account_id.map(str::to_owned),
    };
    let records = look_up(&sources, &everything).await;
    let categories: BTreeSet<String> = records.iter().map(|r| r.category.clone()).collect();
    assert_eq!(categories, catalogue);
    let tables: BTreeSet<&str> = records.iter().map(|r| r.table.as_str()).collect();
    assert_eq!(tables.len(), 25, "{tables:?}");
    for (child, _, parent) in CHILDREN {
        assert!(tables.contains(child) && tables.contains(parent), "{child}");
    }

    // Every record is his: his identifiers in its identity columns, or a parent row that
    // is one of his.
    let mut keys: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for r in &records {
        if let Some(id) = text(r, "id") {
            keys.entry(r.table.as_str()).or_default().insert(id);
        }
    }
    for r in &records {
        let at = format!("{} ({})", r.table, r.category);
        if let Some((_, column, parent)) = CHILDREN.iter().find(|(t, ..)| *t == r.table) {
            let key = text(r, column).unwrap_or_else(|| panic!("{at}: no {column}"));
            assert!(
                keys.get(parent).is_some_and(|k| k.contains(&key)),
                "{at}: {column} {key} is not one of his {parent}"
            );
            continue;
        }
        let email = text(r, "email");
        let mobile = text(r, "mobile");
        if email.is_none() && mobile.is_none() {
            // The columns of the users row that are access logs (the last login).
            assert_eq!(
                (r.table.as_str(), r.category.as_str()),
                ("users", "access_logs")
            );
            continue;
        }
        if let Some(e) = &email {
            assert_eq!(e, WELL_KNOWN.email, "{at}");
        }
        if let Some(m) = &mobile {
            assert_eq!(m, WELL_KNOWN.mobile, "{at}: stored in national form");
        }
        for account in ["user_id"]
            .iter()
            .chain((r.table == "users").then_some(&"id"))
        {
            if let Some(id) = text(r, account) {
                assert_eq!(Some(id.as_str()), WELL_KNOWN.account_id, "{at}");
            }
        }
    }

    // By the email address alone (what a code sent by email proves): still every
    // category; the hotline's call records, kept by number, are not among them.
    let by_email = look_up(
        &sources,
        &Identifiers {
            email: Some(WELL_KNOWN.email.to_owned()),
            ..Identifiers::default()
        },
    )
    .await;
    let categories: BTreeSet<String> = by_email.iter().map(|r| r.category.clone()).collect();
    assert_eq!(categories, catalogue);
    assert!(by_email.iter().all(|r| r.table != "call_records"));
    assert!(records.iter().any(|r| r.table == "call_records"));
    assert!(by_email.len() < records.len());

    // 韩梅梅: nothing anywhere.
    let nobody = look_up(
        &sources,
        &Identifiers {
            email: Some(NO_DATA.email.to_owned()),
            mobile: Some(format!("+86{}", NO_DATA.mobile)),
            account_id: None,
        },
    )
    .await;
    assert!(nobody.is_empty(), "{nobody:?}");
}
