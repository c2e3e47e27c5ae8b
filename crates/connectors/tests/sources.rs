//! The connectors against real databases and a real HTTP service on loopback: a SQLite
//! file and a PostgreSQL database (a fresh one on `RIGHTSDESK_TEST_PG_URL`'s server,
//! default `postgres://postgres@127.0.0.1:5432/test`) shaped like the seed company's
//! systems, and a look-up service speaking the `http` protocol. Each look-up returns
//! exactly the person's rows, across parent and grandchild tables, and nobody else's,
//! however hostile the values; names from configuration that are not plain identifiers
//! are refused before anything runs.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use rightsdesk_connectors::http::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, verify};
use std::collections::BTreeMap;

use rightsdesk_connectors::{
    ConnectorError, ConsentOrder, CorrectionOrder, EraseOrder, FieldValue, Identifiers,
    PurposeChange, Record, Sources, TableErasure, TableOutcome,
};
use rightsdesk_domain::kinds::ConsentChange;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, FromQueryResult};
use serde_json::{Value, json};

/// People in the source databases: (account id, email, mobile as the source stores it,
/// name). The second and third are hostile.
const PEOPLE: &[(&str, &str, &str, &str)] = &[
    ("u1", "li.lei@example.com", "13812345678", "李雷"),
    (
        "u2",
        "o'brien\"; DROP TABLE users; --@example.com",
        "13900000000",
        "O'Brien \"Bobby\" 🙂 ' OR '1'='1",
    ),
    ("u3", "han@example.com", "13700000000", "韩梅梅"),
];

const SCHEMA: &[&str] = &[
    "CREATE TABLE users (id VARCHAR(20) PRIMARY KEY, email VARCHAR(200), mobile VARCHAR(20), name VARCHAR(200), company VARCHAR(200), last_login_ip VARCHAR(50), created_at TIMESTAMP, status VARCHAR(20), sms_opt_in BOOLEAN, email_opt_in INTEGER)",
    "CREATE TABLE downloads (id INTEGER PRIMARY KEY, user_id VARCHAR(20), product VARCHAR(100), requested_at TIMESTAMP)",
    "CREATE TABLE tickets (id INTEGER PRIMARY KEY, user_id VARCHAR(20), title VARCHAR(200), amount DECIMAL(10,2))",
    "CREATE TABLE ticket_messages (id INTEGER PRIMARY KEY, ticket_id INTEGER, body TEXT)",
    "CREATE TABLE marketing (id INTEGER PRIMARY KEY, phone VARCHAR(20), channel VARCHAR(20), restricted_until VARCHAR(20))",
];

/// Fills a source database: each person has 1 user row, n downloads, n tickets with
/// two messages each, and a marketing row keyed by mobile only.
async fn fill(db: &DatabaseConnection) {
    for statement in SCHEMA {
        db.execute_unprepared(statement)
            .await
            .expect("create a table");
    }
    let mut next = 1;
    for (n, (id, email, mobile, name)) in PEOPLE.iter().enumerate() {
        let q = |s: &str| s.replace('\'', "''");
        db.execute_unprepared(&format!(
            "INSERT INTO users VALUES ('{id}', '{}', '{mobile}', '{}', '公司 {n}', '10.0.0.{n}', '2026-01-0{} 10:00:00', 'active', TRUE, 1)",
            q(email),
            q(name),
            n + 1
        ))
        .await
        .expect("a user");
        for k in 0..=n {
            db.execute_unprepared(&format!(
                "INSERT INTO downloads VALUES ({next}, '{id}', 'ZStack {k}', '2026-02-01 09:00:00')"
            ))
            .await
            .expect("a download");
            db.execute_unprepared(&format!(
                "INSERT INTO tickets VALUES ({next}, '{id}', 'ticket {k} of {id}', 12.50)"
            ))
            .await
            .expect("a ticket");
            for m in 0..2 {
                db.execute_unprepared(&format!(
                    "INSERT INTO ticket_messages VALUES ({}, {next}, 'message {m} of ticket {next}')",
                    next * 10 + m
                ))
                .await
                .expect("a message");
            }
            next += 1;
        }
        db.execute_unprepared(&format!(
            "INSERT INTO marketing VALUES ({}, '{mobile}', 'sms', NULL)",
            n + 1
        ))
        .await
        .expect("a marketing row");
    }
}

fn sql_source(name: &str, url: &str) -> String {
    format!(
        r#"
[[source]]
name = "{name}"
title_zh = "官网"
title_en = "Website"
owner = "web@example.com"
portable = ["account"]
timeout_secs = 10

[source.sql]
url = "{url}"
mobile_format = "national"

[[source.sql.table]]
name = "users"
category = "account"
key = "id"
match = {{ email = "email", mobile = "mobile", account_id = "id" }}
columns = ["id", "email", "mobile", "name", "company", "last_login_ip", "created_at"]
column_categories = {{ last_login_ip = "access_logs" }}

[[source.sql.table]]
name = "downloads"
category = "downloads"
parent = {{ table = "users", column = "user_id" }}
columns = ["product", "requested_at"]

[[source.sql.table]]
name = "tickets"
category = "tickets"
key = "id"
parent = {{ table = "users", column = "user_id" }}
columns = ["id", "title", "amount"]

[[source.sql.table]]
name = "ticket_messages"
category = "tickets"
parent = {{ table = "tickets", column = "ticket_id" }}
columns = ["body"]

[[source.sql.table]]
name = "marketing"
category = "marketing"
match = {{ mobile = "phone" }}
columns = ["channel"]
"#
    )
}

fn ids(n: usize) -> Identifiers {
    let (id, email, mobile, _) = PEOPLE[n];
    Identifiers {
        email: Some(email.to_owned()),
        mobile: Some(format!("+86{mobile}")),
        account_id: Some(id.to_owned()),
    }
}

/// Checks that `records` are exactly person `n`'s.
fn assert_only_person(n: usize, records: &[Record]) {
    let (id, email, _, name) = PEOPLE[n];
    let by = |category: &str| records.iter().filter(|r| r.category == category).count();
    assert_eq!(by("account"), 1, "{records:?}");
    assert_eq!(by("access_logs"), 1);
    assert_eq!(by("downloads"), n + 1);
    assert_eq!(by("tickets"), (n + 1) * 3, "tickets and their messages");
    assert_eq!(by("marketing"), 1);
    let account = records
        .iter()
        .find(|r| r.category == "account")
        .expect("the account");
    assert_eq!(account.data["id"], json!(id));
    assert_eq!(account.data["email"], json!(email));
    assert_eq!(account.data["name"], json!(name));
    assert!(
        account.data.get("last_login_ip").is_none(),
        "in access_logs"
    );
    for r in records.iter().filter(|r| r.table == "tickets") {
        let title = r.data["title"].as_str().expect("a title");
        assert!(title.ends_with(&format!("of {id}")), "{title}");
        assert_eq!(
            r.data["amount"].as_str().map(|a| a.starts_with("12.5")),
            Some(true)
        );
    }
    for r in records.iter().filter(|r| r.table == "ticket_messages") {
        assert!(
            r.data["body"]
                .as_str()
                .is_some_and(|b| b.starts_with("message"))
        );
    }
}

async fn check_sql_source(url_for_source: &str) {
    let sources = Sources::from_toml(&sql_source("website", url_for_source), |_| None)
        .expect("a valid sources file");
    let source = sources.get("website").expect("the source");
    assert_eq!(
        source.categories,
        [
            "access_logs",
            "account",
            "downloads",
            "marketing",
            "tickets"
        ]
    );
    let report = source.connector.check("website").await;
    assert!(report.ok, "{report:?}");
    for n in 0..PEOPLE.len() {
        let mut records: Vec<Record> = Vec::new();
        let stats = source
            .connector
            .lookup("PR-2026-000001", &ids(n), &mut records)
            .await
            .expect("a look-up");
        assert_only_person(n, &records);
        assert_eq!(stats.total(), records.len() as u64);
        if let rightsdesk_connectors::Connector::Sql(sql) = &source.connector {
            assert_eq!(sql.count(&ids(n)).await.expect("a count"), stats);
        }
    }
    // One identifier is enough; values that look like SQL find nobody.
    let mut records: Vec<Record> = Vec::new();
    source
        .connector
        .lookup(
            "PR-2026-000002",
            &Identifiers {
                email: Some("li.lei@example.com".to_owned()),
                ..Identifiers::default()
            },
            &mut records,
        )
        .await
        .expect("a look-up");
    assert_eq!(
        records.iter().filter(|r| r.category == "downloads").count(),
        1
    );
    assert!(
        records.iter().all(|r| r.category != "marketing"),
        "keyed by mobile only"
    );
    for hostile in [
        "' OR '1'='1",
        "%",
        "*",
        "li.lei@example.com' --",
        "\u{0}",
        "李雷",
    ] {
        let mut records: Vec<Record> = Vec::new();
        source
            .connector
            .lookup(
                "PR-2026-000003",
                &Identifiers {
                    email: Some(hostile.to_owned()),
                    mobile: None,
                    account_id: Some(hostile.to_owned()),
                },
                &mut records,
            )
            .await
            .expect("a look-up");
        assert!(records.is_empty(), "{hostile:?} found {records:?}");
    }
}

/// A filled SQLite source file (removed on drop) and its URL.
struct SqliteSource(std::path::PathBuf);

impl SqliteSource {
    async fn new() -> Self {
        let dir =
            std::env::temp_dir().join(format!("rd-connectors-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("a directory");
        let file = dir.join("website.db");
        let db = Database::connect(format!("sqlite://{}?mode=rwc", file.display()))
            .await
            .expect("create the source database");
        fill(&db).await;
        db.close().await.ok();
        Self(dir)
    }

    fn url(&self) -> String {
        format!("sqlite://{}", self.0.join("website.db").display())
    }
}

impl Drop for SqliteSource {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A filled PostgreSQL source database, and its URL; dropped by [`drop_pg_source`].
async fn pg_source() -> (String, String) {
    let admin_url = std::env::var("RIGHTSDESK_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let name = format!("rdsource_{}", uuid::Uuid::new_v4().simple());
    let admin = Database::connect(&admin_url).await.expect("PostgreSQL");
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create a database");
    admin.close().await.ok();
    let url = format!(
        "{}/{name}",
        &admin_url[..admin_url.rfind('/').expect("a database in the URL")]
    );
    let db = Database::connect(&url).await.expect("the source database");
    fill(&db).await;
    db.close().await.ok();
    (url, name)
}

async fn drop_pg_source(name: &str) {
    let admin_url = std::env::var("RIGHTSDESK_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let admin = Database::connect(&admin_url).await.expect("PostgreSQL");
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .ok();
}

#[tokio::test]
async fn a_sqlite_source_returns_exactly_the_persons_rows() {
    let source = SqliteSource::new().await;
    check_sql_source(&source.url()).await;
}

#[tokio::test]
async fn a_postgresql_source_returns_exactly_the_persons_rows() {
    let (url, name) = pg_source().await;
    check_sql_source(&url).await;
    drop_pg_source(&name).await;
}

// --- erasure ----------------------------------------------------------------------------

const ANONYMISE_KEY: &[u8] = b"a key for the keyed hash of anonymised values";

/// The website source with a strategy per table, and marketing kept for ten years.
fn erasable_source(url: &str) -> String {
    sql_source("website", url)
        .replace(
            r#"column_categories = { last_login_ip = "access_logs" }"#,
            "column_categories = { last_login_ip = \"access_logs\" }\nerase = \"anonymise\"\nerase_columns = [\"email\", \"mobile\", \"name\", \"last_login_ip\"]",
        )
        .replace(
            "mobile_format = \"national\"",
            "mobile_format = \"national\"\ndeactivate = { table = \"users\", set = { status = \"closed\" } }",
        )
        .replace(
            r#"columns = ["product", "requested_at"]"#,
            "columns = [\"product\", \"requested_at\"]\nerase = \"null\"\nerase_columns = [\"user_id\"]",
        )
        .replace(
            r#"columns = ["id", "title", "amount"]"#,
            "columns = [\"id\", \"title\", \"amount\"]\nerase = \"anonymise\"\nerase_columns = [\"title\"]",
        )
        .replace(
            r#"columns = ["body"]"#,
            "columns = [\"body\"]\nerase = \"delete\"",
        )
        .replace(
            r#"columns = ["channel"]"#,
            "columns = [\"channel\"]\nerase = \"delete\"\nrestrict_column = \"restricted_until\"",
        )
        + r#"
[[retention]]
category = "marketing"
basis_zh = "《电子商务法》第三十一条"
basis_en = "E-Commerce Law art. 31"
days = 3650
"#
}

/// Everything the source holds, table by table, as text.
async fn dump(url: &str) -> Vec<(String, Vec<String>)> {
    let db = Database::connect(url).await.expect("the source");
    let mut out = Vec::new();
    for (table, order) in [
        ("users", "id"),
        ("downloads", "id"),
        ("tickets", "id"),
        ("ticket_messages", "id"),
        ("marketing", "id"),
    ] {
        let rows = db
            .query_all_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                format!("SELECT * FROM {table} ORDER BY {order}"),
            ))
            .await
            .expect("read a table");
        let rows = rows
            .iter()
            .map(|r| {
                Value::from_query_result(r, "")
                    .expect("a row as JSON")
                    .to_string()
            })
            .collect();
        out.push((table.to_owned(), rows));
    }
    db.close().await.ok();
    out
}

async fn check_erasure(url: &str) {
    let sources =
        Sources::from_toml(&erasable_source(url), |_| None).expect("a valid sources file");
    assert_eq!(sources.retention["marketing"].days, 3650);
    let source = sources.get("website").expect("the source");
    let rightsdesk_connectors::Connector::Sql(sql) = &source.connector else {
        panic!("an sql source");
    };
    assert!(sql.erasable());
    let before = dump(url).await;
    // The hostile person: their values are bound, never spliced.
    let n = 1;
    let restricted = [("marketing".to_owned(), "2036-12-02".to_owned())].into();
    let order = EraseOrder {
        ids: &ids(n),
        restricted: &restricted,
        anonymise_key: ANONYMISE_KEY,
        deactivate: true,
        only: None,
    };
    let done = sql.erase(&order).await.expect("an erasure");
    // An account closure: the account is deactivated first.
    assert_eq!(
        done[0],
        TableErasure {
            table: "users".to_owned(),
            category: "account".to_owned(),
            outcome: TableOutcome::Deactivated,
            rows: 1
        }
    );
    let outcome = |table: &str| {
        let t = done
            .iter()
            .find(|t| t.table == table && t.outcome != TableOutcome::Deactivated)
            .unwrap_or_else(|| panic!("no {table} in {done:?}"));
        (t.outcome, t.rows)
    };
    assert_eq!(outcome("ticket_messages"), (TableOutcome::Deleted, 4));
    assert_eq!(outcome("tickets"), (TableOutcome::Anonymised, 2));
    assert_eq!(outcome("downloads"), (TableOutcome::Nulled, 2));
    assert_eq!(outcome("users"), (TableOutcome::Anonymised, 1));
    assert_eq!(outcome("marketing"), (TableOutcome::Restricted, 1));
    assert_eq!(
        done.iter().map(|t| t.table.as_str()).collect::<Vec<_>>(),
        [
            "users",
            "ticket_messages",
            "downloads",
            "tickets",
            "users",
            "marketing"
        ],
        "deepest tables first"
    );

    // Nobody else's rows changed.
    let after = dump(url).await;
    let (_, email, mobile, name) = PEOPLE[n];
    let others = |table: &str, rows: &[String]| -> Vec<String> {
        let marks: &[&str] = match table {
            "ticket_messages" => &[
                "of ticket 1\"",
                "of ticket 4\"",
                "of ticket 5\"",
                "of ticket 6\"",
            ],
            "marketing" => &["13812345678", "13700000000"],
            _ => &["\"u1\"", "\"u3\""],
        };
        rows.iter()
            .filter(|r| marks.iter().any(|m| r.contains(m)))
            .cloned()
            .collect()
    };
    for ((table, rows_before), (_, rows_after)) in before.iter().zip(&after) {
        let kept = others(table, rows_before);
        assert!(!kept.is_empty(), "{table}");
        assert_eq!(others(table, rows_after), kept, "{table}");
    }
    let messages = &after[3].1;
    assert_eq!(messages.len(), before[3].1.len() - 4);

    // The person's own rows: anonymised, nulled, or kept and marked.
    let mut records: Vec<Record> = Vec::new();
    source
        .connector
        .lookup("PR-2026-000009", &ids(n), &mut records)
        .await
        .expect("a look-up");
    let account = records
        .iter()
        .find(|r| r.category == "account")
        .expect("the account row stays, found by its key");
    let hashed = |table: &str, column: &str, value: &str| {
        json!(rightsdesk_connectors::sql::anonymised(
            ANONYMISE_KEY,
            "website",
            table,
            column,
            value
        ))
    };
    assert_eq!(account.data["email"], hashed("users", "email", email));
    assert_eq!(account.data["mobile"], hashed("users", "mobile", mobile));
    assert_eq!(account.data["name"], hashed("users", "name", name));
    assert!(!format!("{records:?}").contains("O'Brien"));
    let users = dump(url).await.swap_remove(0).1;
    assert_eq!(
        users.iter().filter(|u| u.contains("\"closed\"")).count(),
        1,
        "{users:?}"
    );
    assert!(
        users
            .iter()
            .any(|u| u.contains("\"u2\"") && u.contains("\"closed\""))
    );
    assert_eq!(
        records.iter().filter(|r| r.category == "downloads").count(),
        0,
        "unlinked"
    );
    let titles: Vec<&Value> = records
        .iter()
        .filter(|r| r.table == "tickets")
        .map(|r| &r.data["title"])
        .collect();
    assert_eq!(titles.len(), 2);
    assert!(
        titles
            .iter()
            .all(|t| t.as_str().is_some_and(|t| t.len() == 16))
    );
    assert_eq!(
        records
            .iter()
            .filter(|r| r.table == "ticket_messages")
            .count(),
        0
    );
    let marketing = dump(url)
        .await
        .into_iter()
        .find(|(t, _)| t == "marketing")
        .expect("marketing")
        .1;
    let kept: Vec<&String> = marketing
        .iter()
        .filter(|r| r.contains("13900000000"))
        .collect();
    assert_eq!(kept.len(), 1);
    assert!(kept[0].contains("2036-12-02"), "{kept:?}");
    assert!(
        marketing
            .iter()
            .filter(|r| r.contains("2036-12-02"))
            .count()
            == 1
    );

    // Once the retention ends, the kept rows go by the table's strategy.
    let order = EraseOrder {
        ids: &ids(n),
        restricted: &BTreeMap::new(),
        anonymise_key: ANONYMISE_KEY,
        deactivate: false,
        only: None,
    };
    let again = sql.erase(&order).await.expect("the purge");
    assert!(again.contains(&TableErasure {
        table: "marketing".to_owned(),
        category: "marketing".to_owned(),
        outcome: TableOutcome::Deleted,
        rows: 1
    }));
    let marketing = dump(url)
        .await
        .into_iter()
        .find(|(t, _)| t == "marketing")
        .expect("marketing")
        .1;
    assert_eq!(marketing.len(), PEOPLE.len() - 1);
}

// --- consent ------------------------------------------------------------------------------

/// The website source recording marketing by text message and by email in the users table.
fn consent_source(url: &str) -> String {
    sql_source("website", url)
        + r#"
[source.sql.consent.marketing_sms]
table = "users"
set = { sms_opt_in = false }

[source.sql.consent.marketing_email]
table = "users"
set = { email_opt_in = 0 }
"#
}

async fn check_consent(url: &str) {
    let sources = Sources::from_toml(&consent_source(url), |_| None).expect("a valid sources file");
    let source = sources.get("website").expect("the source");
    assert_eq!(source.purposes, ["marketing_email", "marketing_sms"]);
    let both = ["marketing_sms".to_owned(), "marketing_email".to_owned()];
    let c = &source.connector;
    assert!(c.applies_consent(ConsentChange::Withdraw, &both));
    assert!(!c.applies_consent(ConsentChange::Narrow, &both));
    assert!(!c.applies_consent(ConsentChange::Withdraw, &["marketing_phone".to_owned()]));
    let before = dump(url).await;
    let n = 1;
    let done = c
        .change_consent(
            "PR-2026-000020",
            &ConsentOrder {
                ids: &ids(n),
                purposes: &both,
                change: ConsentChange::Withdraw,
                scope: None,
            },
        )
        .await
        .expect("the withdrawal");
    assert_eq!(
        done,
        [
            PurposeChange {
                purpose: "marketing_sms".to_owned(),
                table: "users".to_owned(),
                rows: 1
            },
            PurposeChange {
                purpose: "marketing_email".to_owned(),
                table: "users".to_owned(),
                rows: 1
            }
        ]
    );
    let after = dump(url).await;
    for ((table, rows_before), (_, rows_after)) in before.iter().zip(&after) {
        if table != "users" {
            assert_eq!(rows_before, rows_after, "{table} is untouched");
            continue;
        }
        for (i, (b, a)) in rows_before.iter().zip(rows_after).enumerate() {
            if i != n {
                assert_eq!(b, a, "another person's row is untouched");
                continue;
            }
            let b: Value = serde_json::from_str(b).expect("JSON");
            let a: Value = serde_json::from_str(a).expect("JSON");
            // false, or 0 where booleans are numbers (SQLite, MariaDB).
            assert!(
                matches!(&a["sms_opt_in"], Value::Bool(false)) || a["sms_opt_in"] == 0,
                "{a}"
            );
            assert_eq!(a["email_opt_in"], 0, "{a}");
            for key in ["id", "email", "mobile", "name", "status"] {
                assert_eq!(a[key], b[key], "{key} is untouched");
            }
        }
    }
    // Narrowing cannot be said with columns: refused, nothing changed.
    let e = c
        .change_consent(
            "PR-2026-000021",
            &ConsentOrder {
                ids: &ids(0),
                purposes: &both,
                change: ConsentChange::Narrow,
                scope: Some("only product news"),
            },
        )
        .await
        .expect_err("refused");
    assert!(matches!(e, ConnectorError::Refused(_)), "{e:?}");
    assert_eq!(dump(url).await, after);
}

#[tokio::test]
async fn a_sqlite_source_records_a_consent_withdrawal_in_the_persons_rows() {
    let source = SqliteSource::new().await;
    check_consent(&source.url()).await;
}

#[tokio::test]
async fn a_postgresql_source_records_a_consent_withdrawal_in_the_persons_rows() {
    let (url, name) = pg_source().await;
    check_consent(&url).await;
    drop_pg_source(&name).await;
}

// --- correction ---------------------------------------------------------------------------

/// The website source with the name and the company correctable in the users table.
fn correctable_source(url: &str) -> String {
    sql_source("website", url)
        + r#"
[source.sql.correct.name]
table = "users"
column = "name"

[source.sql.correct.company]
table = "users"
column = "company"
"#
}

async fn check_correction(url: &str) {
    let sources =
        Sources::from_toml(&correctable_source(url), |_| None).expect("a valid sources file");
    let source = sources.get("website").expect("the source");
    assert_eq!(source.correctable, ["company", "name"]);
    let c = &source.connector;
    assert!(c.applies_correction());
    let n = 2;
    let fields = ["name".to_owned(), "company".to_owned(), "age".to_owned()];
    let current = c
        .current_values("PR-2026-000040", &ids(n), &fields)
        .await
        .expect("the values held now");
    assert_eq!(
        current,
        BTreeMap::from([
            ("company".to_owned(), vec![format!("公司 {n}")]),
            ("name".to_owned(), vec![PEOPLE[n].3.to_owned()]),
        ]),
        "only the fields the source maps"
    );
    let before = dump(url).await;
    // Hostile new values are bound, never spliced.
    let new_name = "Robert O'Brien\"; DROP TABLE users; --";
    let changes = [
        FieldValue {
            field: "name".to_owned(),
            value: new_name.to_owned(),
        },
        FieldValue {
            field: "age".to_owned(),
            value: "40".to_owned(),
        },
    ];
    let done = c
        .correct(
            "PR-2026-000041",
            &CorrectionOrder {
                ids: &ids(n),
                changes: &changes,
            },
        )
        .await
        .expect("the correction");
    assert_eq!(done.len(), 1, "a field the source does not map is skipped");
    assert_eq!(done[0].field, "name");
    assert_eq!(done[0].table, "users");
    assert_eq!(done[0].rows, 1);
    assert_eq!(done[0].old_values, [PEOPLE[n].3]);
    let after = dump(url).await;
    for ((table, rows_before), (_, rows_after)) in before.iter().zip(&after) {
        if table != "users" {
            assert_eq!(rows_before, rows_after, "{table} is untouched");
            continue;
        }
        for (i, (b, a)) in rows_before.iter().zip(rows_after).enumerate() {
            if i != n {
                assert_eq!(b, a, "another person's row is untouched");
                continue;
            }
            let b: Value = serde_json::from_str(b).expect("JSON");
            let a: Value = serde_json::from_str(a).expect("JSON");
            assert_eq!(a["name"], new_name, "{a}");
            for key in ["id", "email", "mobile", "company", "status"] {
                assert_eq!(a[key], b[key], "{key} is untouched");
            }
        }
    }
    let current = c
        .current_values("PR-2026-000042", &ids(n), &fields[..1])
        .await
        .expect("the values held now");
    assert_eq!(current["name"], [new_name]);
    // Somebody the source does not know: nothing changes.
    let nobody = Identifiers {
        email: Some("nobody@example.com".to_owned()),
        ..Identifiers::default()
    };
    let done = c
        .correct(
            "PR-2026-000043",
            &CorrectionOrder {
                ids: &nobody,
                changes: &changes,
            },
        )
        .await
        .expect("nothing to correct");
    assert_eq!(done[0].rows, 0);
    assert!(done[0].old_values.is_empty());
    assert_eq!(dump(url).await, after);
}

#[tokio::test]
async fn a_sqlite_source_corrects_exactly_the_persons_rows() {
    let source = SqliteSource::new().await;
    check_correction(&source.url()).await;
}

#[tokio::test]
async fn a_postgresql_source_corrects_exactly_the_persons_rows() {
    let (url, name) = pg_source().await;
    check_correction(&url).await;
    drop_pg_source(&name).await;
}

#[test]
fn correction_settings_are_checked_at_start() {
    let url = "sqlite:/tmp/none.db";
    for (extra, expect) in [
        (
            "[source.sql.correct.name]\ntable = \"nowhere\"\ncolumn = \"name\"",
            "correct.name: \"nowhere\" is not a table of this source",
        ),
        (
            "[source.sql.correct.name]\ntable = \"users\"\ncolumn = \"a b\"",
            "correct.name: column \"a b\" is not a plain column name",
        ),
        (
            "[source.sql.correct.Name]\ntable = \"users\"\ncolumn = \"name\"",
            "correctable field \"Name\"",
        ),
    ] {
        let text = format!("{}\n{extra}\n", sql_source("website", url));
        let e = Sources::from_toml(&text, |_| None).expect_err(expect);
        assert!(e.to_string().contains(expect), "{e}");
    }
    let text = sql_source("website", url).replace(
        "portable = [\"account\"]",
        "portable = [\"account\"]\ncorrectable = [\"name\"]",
    );
    let e = Sources::from_toml(&text, |_| None).expect_err("sql fields come from correct");
    assert!(e.to_string().contains("remove `correctable`"), "{e}");
}

#[test]
fn consent_settings_are_checked_at_start() {
    let url = "sqlite:/tmp/none.db";
    for (extra, expect) in [
        (
            "[source.sql.consent.marketing_fax]\ntable = \"users\"\nset = { fax = false }",
            "purpose \"marketing_fax\" is not in the catalogue",
        ),
        (
            "[source.sql.consent.marketing_sms]\ntable = \"nowhere\"\nset = { x = 1 }",
            "consent.marketing_sms: \"nowhere\" is not a table of this source",
        ),
        (
            "[source.sql.consent.marketing_sms]\ntable = \"users\"\nset = { \"a b\" = 1 }",
            "column \"a b\" is not a plain column name",
        ),
        (
            "[source.sql.consent.marketing_sms]\ntable = \"users\"\nset = {}",
            "`set` names no column",
        ),
    ] {
        let text = format!("{}\n{extra}\n", sql_source("website", url));
        let e = Sources::from_toml(&text, |_| None).expect_err(expect);
        assert!(e.to_string().contains(expect), "{e}");
    }
    // A purpose of one's own, declared with [[purpose]].
    let text = format!(
        "[[purpose]]\nkey = \"marketing_fax\"\ntitle_zh = \"传真营销\"\ntitle_en = \"Fax\"\ndescription_zh = \"传真\"\ndescription_en = \"Fax\"\n{}\n[source.sql.consent.marketing_fax]\ntable = \"users\"\nset = {{ status = \"no_fax\" }}\n",
        sql_source("website", url)
    );
    let sources = Sources::from_toml(&text, |_| None).expect("a purpose of one's own");
    assert!(sources.purposes.contains("marketing_fax"));
}

#[tokio::test]
async fn a_sqlite_source_erases_exactly_the_persons_rows() {
    let source = SqliteSource::new().await;
    check_erasure(&source.url()).await;
}

#[tokio::test]
async fn a_postgresql_source_erases_exactly_the_persons_rows() {
    let (url, name) = pg_source().await;
    check_erasure(&url).await;
    drop_pg_source(&name).await;
}

#[test]
fn erase_settings_are_checked_at_start() {
    for (change, expect) in [
        (
            (
                "erase = \"delete\"\nrestrict_column",
                "erase = \"null\"\nrestrict_column",
            ),
            "needs erase_columns",
        ),
        (
            (
                "erase_columns = [\"title\"]",
                "erase_columns = [\"title; --\"]",
            ),
            "not a plain column name",
        ),
        (
            (
                "erase_columns = [\"email\", \"mobile\",",
                "erase_columns = [",
            ),
            "must include the identity column",
        ),
        (
            (
                "erase = \"null\"\nerase_columns = [\"user_id\"]",
                "erase = \"delete\"\nerase_columns = [\"user_id\"]",
            ),
            "erase_columns is for",
        ),
        (("days = 3650", "days = 0"), "days must be"),
        (
            ("url = \"sqlite://x.db\"", "url = \"sqlite://x.db?mode=ro\""),
            "erasures and consent withdrawals write",
        ),
        (
            (
                "category = \"marketing\"\nbasis_zh",
                "category = \"gossip\"\nbasis_zh",
            ),
            "retention \"gossip\"",
        ),
    ] {
        let file = erasable_source("sqlite://x.db");
        assert!(file.contains(change.0), "{}", change.0);
        let e =
            Sources::from_toml(&file.replacen(change.0, change.1, 1), |_| None).expect_err(expect);
        assert!(e.0.iter().any(|p| p.contains(expect)), "{expect}: {e:?}");
    }
    // A kept table found only through a parent that is erased could not be found again.
    let file = erasable_source("sqlite://x.db").replace(
        "category = \"marketing\"\nbasis_zh",
        "category = \"downloads\"\nbasis_zh",
    );
    let e = Sources::from_toml(&file, |_| None).expect_err("refused");
    assert!(
        e.0.iter()
            .any(|p| p.contains("give it its own `match` columns")),
        "{e:?}"
    );
}

#[test]
fn names_that_are_not_plain_identifiers_are_refused_at_start() {
    let file = sql_source("website", "sqlite://x.db")
        .replace(
            r#"name = "downloads""#,
            r#"name = "downloads; DROP TABLE users""#,
        )
        .replace(
            r#"columns = ["channel"]"#,
            r#"columns = ["channel\" FROM users --"]"#,
        )
        .replace(r#"column = "ticket_id""#, r#"column = "ticket id""#);
    let e = Sources::from_toml(&file, |_| None).expect_err("refused");
    let all = e.0.join("\n");
    assert!(all.contains("downloads; DROP TABLE users"), "{all}");
    assert!(all.contains("channel\\\" FROM users --"), "{all}");
    assert!(all.contains("ticket id"), "{all}");

    for (change, expect) in [
        (
            (r#"name = "website""#, r#"name = "Web Site""#),
            "the name must be",
        ),
        (
            (r#"category = "marketing""#, r#"category = "gossip""#),
            "not in the catalogue",
        ),
        (
            (
                r#"url = "sqlite://x.db""#,
                r#"url_env = "NOT_SET_ANYWHERE""#,
            ),
            "NOT_SET_ANYWHERE is not set",
        ),
        (
            (r#"url = "sqlite://x.db""#, r#"url = "oracle://x""#),
            "must start with",
        ),
        (
            (
                r#"table = "users", column = "user_id""#,
                r#"table = "nowhere", column = "user_id""#,
            ),
            "not a table of this source",
        ),
        (
            (r#"portable = ["account"]"#, r#"portable = ["forum"]"#),
            "not one the source holds",
        ),
    ] {
        let file = sql_source("website", "sqlite://x.db").replacen(change.0, change.1, 1);
        let e = Sources::from_toml(&file, |_| None).expect_err(expect);
        assert!(e.0.iter().any(|p| p.contains(expect)), "{expect}: {e:?}");
    }
    // A loop of parents.
    let looping = r#"
[[source]]
name = "crm"
title_zh = "客户"
title_en = "CRM"
owner = "crm@example.com"
[source.sql]
url = "sqlite://x.db"
[[source.sql.table]]
name = "a"
category = "account"
key = "id"
parent = { table = "b", column = "b_id" }
columns = ["x"]
[[source.sql.table]]
name = "b"
category = "account"
key = "id"
parent = { table = "a", column = "a_id" }
columns = ["y"]
"#;
    let e = Sources::from_toml(looping, |_| None).expect_err("a loop");
    assert!(e.0.iter().any(|p| p.contains("loop")), "{e:?}");
    // The environment provides the URL.
    let file =
        sql_source("website", "unused").replace(r#"url = "unused""#, r#"url_env = "WEBSITE_DB""#);
    let ok = Sources::from_toml(&file, |name| {
        (name == "WEBSITE_DB").then(|| "sqlite://x.db".to_owned())
    });
    assert!(ok.is_ok(), "{ok:?}");
}

// --- the http protocol ------------------------------------------------------------------

const SECRET: &str = "a-shared-secret-of-at-least-32-bytes!";

/// A look-up service: two pages of tickets for li.lei@example.com; nothing for anyone
/// else. `mode` bends it: 1 = answers unsigned, 2 = answers a category it does not
/// hold.
struct Service {
    url: String,
    calls: Arc<AtomicUsize>,
    handle: actix_web::dev::ServerHandle,
}

async fn serve(mode: u8) -> Service {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let server = HttpServer::new(move || {
        let counter = counter.clone();
        App::new().route(
            "/lookup",
            web::post().to(move |req: HttpRequest, body: web::Bytes| {
                let counter = counter.clone();
                async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    let header = |n: &str| {
                        req.headers()
                            .get(n)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned()
                    };
                    let ts = header(TIMESTAMP_HEADER);
                    if !verify(SECRET.as_bytes(), &ts, &body, &header(SIGNATURE_HEADER)) {
                        return HttpResponse::Unauthorized().finish();
                    }
                    let call: Value = serde_json::from_slice(&body).expect("JSON");
                    let answer = match call["action"].as_str() {
                        Some("check") => json!({"ok": true, "categories": ["tickets", "feedback"]}),
                        Some("lookup") if call["identifiers"]["email"] == "li.lei@example.com" => {
                            let category = if mode == 2 { "gossip" } else { "tickets" };
                            match call["cursor"].as_str() {
                                None => json!({
                                    "records": [
                                        {"category": category, "table": "tickets", "data": {"title": "无法登录", "n": 1}},
                                        {"category": "feedback", "data": {"text": "thanks"}}
                                    ],
                                    "next_cursor": "page-2"
                                }),
                                Some("page-2") => json!({
                                    "records": [{"category": "tickets", "table": "tickets", "data": {"title": "second", "n": 2}}],
                                    "next_cursor": null
                                }),
                                Some(_) => return HttpResponse::BadRequest().finish(),
                            }
                        }
                        Some("lookup") => json!({"records": [], "next_cursor": null}),
                        // Tickets are deleted, feedback kept when asked to; mode 3 keeps
                        // tickets though it was not asked to.
                        Some("erase") if call["identifiers"]["email"] == "li.lei@example.com" => {
                            let kept = call["restricted"]["feedback"].is_string();
                            json!({"tables": [
                                {"table": "tickets", "category": "tickets",
                                 "outcome": if mode == 3 { "restricted" } else { "deleted" }, "rows": 2},
                                {"category": "feedback",
                                 "outcome": if kept { "restricted" } else { "deleted" }, "rows": 1}
                            ]})
                        }
                        Some("erase") => json!({"tables": []}),
                        // Mode 3 answers for a purpose it was not asked about.
                        Some("consent") => {
                            let mut purposes: Vec<Value> = call["purposes"]
                                .as_array()
                                .expect("purposes")
                                .iter()
                                .map(|p| json!({"purpose": p, "table": "subscriptions", "rows": 1}))
                                .collect();
                            if mode == 3 {
                                purposes.push(json!({"purpose": "marketing_phone", "table": "x", "rows": 1}));
                            }
                            assert!(matches!(call["change"].as_str(), Some("withdraw" | "narrow")));
                            json!({"purposes": purposes})
                        }
                        // Li Lei's address; mode 3 answers a field it was not asked.
                        Some("current") => {
                            let mut values = serde_json::Map::new();
                            for f in call["fields"].as_array().expect("fields") {
                                if f == "address" {
                                    values.insert("address".to_owned(), json!(["北京市海淀区"]));
                                }
                            }
                            if mode == 3 {
                                values.insert("salary".to_owned(), json!(["1"]));
                            }
                            json!({"values": values})
                        }
                        Some("correct") => {
                            let mut fields: Vec<Value> = call["changes"]
                                .as_array()
                                .expect("changes")
                                .iter()
                                .map(|c| json!({"field": c["field"], "table": "profiles", "rows": 1, "old_values": ["北京市海淀区"]}))
                                .collect();
                            if mode == 3 {
                                fields.push(json!({"field": "salary", "table": "x", "rows": 1}));
                            }
                            json!({"fields": fields})
                        }
                        _ => return HttpResponse::BadRequest().finish(),
                    };
                    let bytes = serde_json::to_vec(&answer).expect("JSON");
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .expect("a clock")
                        .as_secs()
                        .to_string();
                    let mut response = HttpResponse::Ok();
                    if mode != 1 {
                        response
                            .insert_header((TIMESTAMP_HEADER, now.clone()))
                            .insert_header((SIGNATURE_HEADER, sign(SECRET.as_bytes(), &now, &bytes)));
                    }
                    response.content_type("application/json").body(bytes)
                }
            }),
        )
    })
    .workers(1)
    .bind(("127.0.0.1", 0))
    .expect("bind a loopback port");
    let port = server.addrs()[0].port();
    let server = server.run();
    let handle = server.handle();
    tokio::spawn(server);
    Service {
        url: format!("http://127.0.0.1:{port}/lookup"),
        calls,
        handle,
    }
}

/// An http source that carries out erasures.
fn erasing_http_source(url: &str) -> Sources {
    Sources::from_toml(
        &format!(
            r#"
[[source]]
name = "crm"
title_zh = "客户服务系统"
title_en = "Customer service"
owner = "support@example.com"
categories = ["tickets", "feedback"]
[source.http]
url = "{url}"
secret = "{SECRET}"
erase = true
"#
        ),
        |_| None,
    )
    .expect("a valid sources file")
}

#[tokio::test]
async fn an_http_source_erases_with_a_signed_call_and_says_what_it_did() {
    let service = serve(0).await;
    let sources = erasing_http_source(&service.url);
    let source = &sources.get("crm").expect("crm").connector;
    assert!(source.erasable());
    let restricted = [("feedback".to_owned(), "2030-01-01".to_owned())].into();
    let li = Identifiers {
        email: Some("li.lei@example.com".to_owned()),
        ..Identifiers::default()
    };
    let done = source
        .erase(
            "PR-2026-000010",
            &EraseOrder {
                ids: &li,
                restricted: &restricted,
                anonymise_key: ANONYMISE_KEY,
                deactivate: false,
                only: None,
            },
        )
        .await
        .expect("an erasure");
    assert_eq!(
        done,
        [
            TableErasure {
                table: "tickets".to_owned(),
                category: "tickets".to_owned(),
                outcome: TableOutcome::Deleted,
                rows: 2
            },
            TableErasure {
                table: "feedback".to_owned(),
                category: "feedback".to_owned(),
                outcome: TableOutcome::Restricted,
                rows: 1
            }
        ]
    );
    // An answer that keeps what was to be erased (or the other way round) is refused.
    let bent = serve(3).await;
    let sources = erasing_http_source(&bent.url);
    let e = sources
        .get("crm")
        .expect("crm")
        .connector
        .erase(
            "PR-2026-000011",
            &EraseOrder {
                ids: &li,
                restricted: &BTreeMap::new(),
                anonymise_key: ANONYMISE_KEY,
                deactivate: false,
                only: None,
            },
        )
        .await
        .expect_err("refused");
    assert!(matches!(e, ConnectorError::Protocol(_)), "{e:?}");
    // A source that does not say it erases is not asked to.
    let plain = http_source(&service.url, SECRET);
    assert!(!plain.get("crm").expect("crm").connector.erasable());
    assert!(
        !plain
            .get("crm")
            .expect("crm")
            .connector
            .applies_consent(ConsentChange::Withdraw, &[])
    );
    service.handle.stop(true).await;
    bent.handle.stop(true).await;
}

#[tokio::test]
async fn an_http_source_applies_a_consent_change_with_a_signed_call() {
    let text = |url: &str| {
        format!(
            "[[source]]\nname = \"sms\"\ntitle_zh = \"短信平台\"\ntitle_en = \"SMS platform\"\nowner = \"sms@example.com\"\ncategories = [\"marketing\"]\npurposes = [\"marketing_sms\", \"marketing_phone\"]\n[source.http]\nurl = \"{url}\"\nsecret = \"{SECRET}\"\nconsent = true\n"
        )
    };
    let service = serve(0).await;
    let sources = Sources::from_toml(&text(&service.url), |_| None).expect("valid");
    let source = sources.get("sms").expect("sms");
    assert_eq!(source.purposes, ["marketing_phone", "marketing_sms"]);
    assert!(source.connector.applies_consent(ConsentChange::Narrow, &[]));
    let li = Identifiers {
        mobile: Some("+8613812345678".to_owned()),
        ..Identifiers::default()
    };
    let sms = ["marketing_sms".to_owned()];
    let order = ConsentOrder {
        ids: &li,
        purposes: &sms,
        change: ConsentChange::Narrow,
        scope: Some("only service notices"),
    };
    let done = source
        .connector
        .change_consent("PR-2026-000030", &order)
        .await
        .expect("applied");
    assert_eq!(
        done,
        [PurposeChange {
            purpose: "marketing_sms".to_owned(),
            table: "subscriptions".to_owned(),
            rows: 1
        }]
    );
    // An answer about a purpose it was not asked about is refused.
    let bent = serve(3).await;
    let sources = Sources::from_toml(&text(&bent.url), |_| None).expect("valid");
    let e = sources
        .get("sms")
        .expect("sms")
        .connector
        .change_consent("PR-2026-000031", &order)
        .await
        .expect_err("refused");
    assert!(matches!(e, ConnectorError::Protocol(_)), "{e:?}");
    // consent = true without purposes is a mistake in the file.
    let e = Sources::from_toml(
        &text(&service.url).replace("purposes = [\"marketing_sms\", \"marketing_phone\"]\n", ""),
        |_| None,
    )
    .expect_err("refused");
    assert!(
        e.to_string().contains("consent = true needs `purposes`"),
        "{e}"
    );
    service.handle.stop(true).await;
    bent.handle.stop(true).await;
}

#[tokio::test]
async fn an_http_source_reads_and_applies_a_correction_with_signed_calls() {
    let text = |url: &str| {
        format!(
            "[[source]]\nname = \"crm\"\ntitle_zh = \"客户关系系统\"\ntitle_en = \"CRM\"\nowner = \"crm@example.com\"\ncategories = [\"account\"]\ncorrectable = [\"address\"]\n[source.http]\nurl = \"{url}\"\nsecret = \"{SECRET}\"\ncorrect = true\n"
        )
    };
    let service = serve(0).await;
    let sources = Sources::from_toml(&text(&service.url), |_| None).expect("valid");
    let source = sources.get("crm").expect("crm");
    assert_eq!(source.correctable, ["address"]);
    assert!(source.connector.applies_correction());
    let li = Identifiers {
        email: Some("li.lei@example.com".to_owned()),
        ..Identifiers::default()
    };
    let current = source
        .connector
        .current_values("PR-2026-000050", &li, &["address".to_owned()])
        .await
        .expect("read");
    assert_eq!(current["address"], ["北京市海淀区"]);
    let changes = [FieldValue {
        field: "address".to_owned(),
        value: "上海市浦东新区".to_owned(),
    }];
    let order = CorrectionOrder {
        ids: &li,
        changes: &changes,
    };
    let done = source
        .connector
        .correct("PR-2026-000051", &order)
        .await
        .expect("applied");
    assert_eq!(done.len(), 1);
    assert_eq!((done[0].table.as_str(), done[0].rows), ("profiles", 1));
    assert_eq!(done[0].old_values, ["北京市海淀区"]);
    // Answers about fields it was not asked about are refused.
    let bent = serve(3).await;
    let sources = Sources::from_toml(&text(&bent.url), |_| None).expect("valid");
    let c = &sources.get("crm").expect("crm").connector;
    let e = c
        .correct("PR-2026-000052", &order)
        .await
        .expect_err("refused");
    assert!(matches!(e, ConnectorError::Protocol(_)), "{e:?}");
    let e = c
        .current_values("PR-2026-000053", &li, &["address".to_owned()])
        .await
        .expect_err("refused");
    assert!(matches!(e, ConnectorError::Protocol(_)), "{e:?}");
    // Without correct = true the owner is asked instead; correct = true needs fields.
    let sources = Sources::from_toml(&text(&service.url).replace("correct = true\n", ""), |_| {
        None
    })
    .expect("valid");
    assert!(
        !sources
            .get("crm")
            .expect("crm")
            .connector
            .applies_correction()
    );
    let e = Sources::from_toml(
        &text(&service.url).replace("correctable = [\"address\"]\n", ""),
        |_| None,
    )
    .expect_err("refused");
    assert!(
        e.to_string().contains("correct = true needs `correctable`"),
        "{e}"
    );
    service.handle.stop(true).await;
    bent.handle.stop(true).await;
}

fn http_source(url: &str, secret: &str) -> Sources {
    Sources::from_toml(
        &format!(
            r#"
[[source]]
name = "crm"
title_zh = "客户服务系统"
title_en = "Customer service"
owner = "support@example.com"
categories = ["tickets", "feedback"]
timeout_secs = 5
[source.http]
url = "{url}"
secret = "{secret}"
page_size = 2
"#
        ),
        |_| None,
    )
    .expect("a valid sources file")
}

#[tokio::test]
async fn an_http_source_is_paged_through_with_signed_calls_and_answers() {
    let service = serve(0).await;
    let sources = http_source(&service.url, SECRET);
    let crm = sources.get("crm").expect("the source");
    assert!(crm.connector.check("crm").await.ok);
    let mut records: Vec<Record> = Vec::new();
    let stats = crm
        .connector
        .lookup("PR-2026-000001", &ids(0), &mut records)
        .await
        .expect("a look-up");
    assert_eq!(records.len(), 3);
    assert_eq!(stats.per_category["tickets"], 2);
    assert_eq!(records[0].data["title"], "无法登录");
    assert_eq!(
        records[1].table, "feedback",
        "the category when no table is given"
    );
    let mut nobody: Vec<Record> = Vec::new();
    crm.connector
        .lookup("PR-2026-000002", &ids(2), &mut nobody)
        .await
        .expect("a look-up");
    assert!(nobody.is_empty());
    assert_eq!(service.calls.load(Ordering::SeqCst), 4);

    // A wrong secret is refused by the service.
    let wrong = http_source(&service.url, "another-secret-of-at-least-32-bytes!!!");
    let e = wrong
        .get("crm")
        .expect("the source")
        .connector
        .lookup("PR-2026-000003", &ids(0), &mut Vec::new())
        .await
        .expect_err("refused");
    assert!(matches!(e, ConnectorError::Refused(_)), "{e:?}");
    assert!(!e.is_transient());
    service.handle.stop(true).await;

    // Nothing listening: transient.
    let e = http_source(&service.url, SECRET)
        .get("crm")
        .expect("the source")
        .connector
        .lookup("PR-2026-000004", &ids(0), &mut Vec::new())
        .await
        .expect_err("unreachable");
    assert!(e.is_transient(), "{e:?}");
}

#[tokio::test]
async fn an_unsigned_answer_or_an_undeclared_category_is_refused() {
    for (mode, expect) in [(1, "not signed"), (2, "gossip")] {
        let service = serve(mode).await;
        let sources = http_source(&service.url, SECRET);
        let e = sources
            .get("crm")
            .expect("the source")
            .connector
            .lookup("PR-2026-000001", &ids(0), &mut Vec::new())
            .await
            .expect_err("refused");
        assert!(matches!(e, ConnectorError::Protocol(_)), "{e:?}");
        assert!(e.to_string().contains(expect), "{e}");
        service.handle.stop(true).await;
    }
    // Plain http is only for loopback.
    let e = Sources::from_toml(
        &format!(
            "[[source]]\nname = \"crm\"\ntitle_zh = \"x\"\ntitle_en = \"x\"\nowner = \"o\"\ncategories = [\"tickets\"]\n[source.http]\nurl = \"http://crm.example.com/lookup\"\nsecret = \"{SECRET}\"\n"
        ),
        |_| None,
    )
    .expect_err("refused");
    assert!(e.0.iter().any(|p| p.contains("https")), "{e:?}");
    let declared: BTreeSet<&str> = ["tickets"].into();
    assert!(declared.contains("tickets"));
}

#[tokio::test]
async fn a_mysql_source_returns_and_erases_exactly_the_persons_rows() {
    // MariaDB or MySQL: `scripts/test` makes sure one answers (the machine's, or a private
    // one it starts) and says where in RIGHTSDESK_TEST_MYSQL_URL.
    let admin_url = std::env::var("RIGHTSDESK_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/mysql".to_owned());
    let name = format!("rdsource_{}", uuid::Uuid::new_v4().simple());
    let admin = Database::connect(&admin_url)
        .await
        .expect("MariaDB or MySQL (set RIGHTSDESK_TEST_MYSQL_URL; scripts/test starts one)");
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name} CHARACTER SET utf8mb4"))
        .await
        .expect("create a database");
    let url = format!(
        "{}/{name}",
        &admin_url[..admin_url.rfind('/').expect("a database in the URL")]
    );
    let db = Database::connect(&url).await.expect("the source database");
    fill(&db).await;
    db.close().await.ok();
    check_sql_source(&url.replacen("mysql:", "mariadb:", 1)).await;
    // The consent withdrawal, the erasure, then a correction of another person (the
    // look-ups above change nothing).
    check_consent(&url).await;
    check_erasure(&url).await;
    check_correction(&url).await;
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name}"))
        .await
        .ok();
}
