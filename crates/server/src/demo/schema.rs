//! The demo database's tables, and writing them.

use std::path::{Path, PathBuf};

use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sea_orm::{ConnectionTrait, DbBackend, SqlxSqliteConnector, Statement, TransactionTrait};

use super::generate::{Dataset, Val};

/// One table of `sources.db`: its columns (name, SQLite type) in insertion order, and
/// the columns indexed (identity columns and parent links).
pub(super) struct TableSpec {
    pub(super) name: &'static str,
    pub(super) columns: &'static [(&'static str, &'static str)],
    pub(super) indexes: &'static [&'static str],
}

const PK: &str = "INTEGER PRIMARY KEY";
const T: &str = "TEXT";
const TN: &str = "TEXT NOT NULL";
const I: &str = "INTEGER";

/// Parents before their children.
pub(super) const TABLES: &[TableSpec] = &[
    TableSpec {
        name: "users",
        columns: &[
            ("id", PK),
            ("customer_type", TN),
            ("name", TN),
            ("email", "TEXT NOT NULL UNIQUE"),
            ("mobile", "TEXT UNIQUE"),
            ("company", T),
            ("position", T),
            ("password_hash", TN),
            ("created_at", TN),
            ("last_login_at", T),
            ("last_login_ip", T),
        ],
        indexes: &[],
    },
    TableSpec {
        name: "access_logs",
        columns: &[
            ("id", PK),
            ("user_id", "INTEGER REFERENCES users(id)"),
            ("accessed_at", TN),
            ("ip", TN),
            ("method", TN),
            ("page", TN),
            ("referrer", T),
            ("status", "INTEGER NOT NULL"),
            ("user_agent", T),
            ("device", T),
            ("os", T),
        ],
        indexes: &["user_id"],
    },
    TableSpec {
        name: "downloads",
        columns: &[
            ("id", PK),
            ("user_id", "INTEGER REFERENCES users(id)"),
            ("name", TN),
            ("company", T),
            ("email", TN),
            ("mobile", TN),
            ("product", TN),
            ("document", TN),
            ("version", T),
            ("requested_at", TN),
            ("link_sent_at", T),
        ],
        indexes: &["email", "mobile", "user_id"],
    },
    TableSpec {
        name: "trials",
        columns: &[
            ("id", PK),
            ("user_id", "INTEGER REFERENCES users(id)"),
            ("name", TN),
            ("company", T),
            ("email", TN),
            ("mobile", TN),
            ("product", TN),
            ("edition", T),
            ("requirement", T),
            ("status", TN),
            ("applied_at", TN),
        ],
        indexes: &["email", "mobile", "user_id"],
    },
    TableSpec {
        name: "trial_licenses",
        columns: &[
            ("id", PK),
            ("trial_id", "INTEGER NOT NULL REFERENCES trials(id)"),
            ("license_key", TN),
            ("nodes", I),
            ("issued_at", TN),
            ("expires_at", TN),
        ],
        indexes: &["trial_id"],
    },
    TableSpec {
        name: "survey_responses",
        columns: &[
            ("id", PK),
            ("survey", TN),
            ("name", TN),
            ("company", T),
            ("email", TN),
            ("mobile", TN),
            ("industry", T),
            ("submitted_at", TN),
        ],
        indexes: &["email", "mobile"],
    },
    TableSpec {
        name: "survey_answers",
        columns: &[
            ("id", PK),
            (
                "response_id",
                "INTEGER NOT NULL REFERENCES survey_responses(id)",
            ),
            ("question_no", "INTEGER NOT NULL"),
            ("question", TN),
            ("answer", T),
        ],
        indexes: &["response_id"],
    },
    TableSpec {
        name: "compatibility_applications",
        columns: &[
            ("id", PK),
            ("contact_name", TN),
            ("company", TN),
            ("email", TN),
            ("mobile", TN),
            ("mailing_address", T),
            ("product_name", TN),
            ("product_type", T),
            ("architecture", T),
            ("description", T),
            ("logo_file", T),
            ("target_product", T),
            ("test_method", T),
            ("status", TN),
            ("applied_at", TN),
        ],
        indexes: &["email", "mobile"],
    },
    TableSpec {
        name: "consultations",
        columns: &[
            ("id", PK),
            ("name", TN),
            ("company", T),
            ("email", TN),
            ("mobile", TN),
            ("industry", T),
            ("topic", TN),
            ("details", T),
            ("status", TN),
            ("submitted_at", TN),
        ],
        indexes: &["email", "mobile"],
    },
    TableSpec {
        name: "feedback",
        columns: &[
            ("id", PK),
            ("kind", TN),
            ("name", TN),
            ("company", T),
            ("email", TN),
            ("mobile", TN),
            ("content", TN),
            ("preferred_time", T),
            ("submitted_at", TN),
            ("handled_at", T),
        ],
        indexes: &["email", "mobile"],
    },
    TableSpec {
        name: "call_records",
        columns: &[
            ("id", PK),
            ("mobile", TN),
            ("direction", TN),
            ("started_at", TN),
            ("duration_secs", "INTEGER NOT NULL"),
            ("agent", T),
            ("summary", T),
            ("recording_file", T),
        ],
        indexes: &["mobile"],
    },
    TableSpec {
        name: "tickets",
        columns: &[
            ("id", PK),
            ("ticket_no", "TEXT NOT NULL UNIQUE"),
            ("priority", TN),
            ("type", TN),
            ("product", TN),
            ("title", TN),
            ("details", T),
            ("confidential", T),
            ("submitter", TN),
            ("email", TN),
            ("mobile", TN),
            ("company", T),
            ("contact_time", T),
            ("status", TN),
            ("created_at", TN),
            ("closed_at", T),
        ],
        indexes: &["email", "mobile"],
    },
    TableSpec {
        name: "ticket_messages",
        columns: &[
            ("id", PK),
            ("ticket_id", "INTEGER NOT NULL REFERENCES tickets(id)"),
            ("author", TN),
            ("body", TN),
            ("attachment", T),
            ("sent_at", TN),
        ],
        indexes: &["ticket_id"],
    },
    TableSpec {
        name: "business_opportunities",
        columns: &[
            ("id", PK),
            ("project_name", TN),
            ("expected_sign_date", T),
            ("expected_amount", I),
            ("stage", TN),
            ("purchase_method", T),
            ("background", T),
            ("end_customer", TN),
            ("province", T),
            ("city", T),
            ("industry", T),
            ("contact_name", TN),
            ("contact_role", T),
            ("email", TN),
            ("mobile", TN),
            ("partner_company", T),
            ("reported_at", TN),
        ],
        indexes: &["email", "mobile"],
    },
    TableSpec {
        name: "opportunity_followups",
        columns: &[
            ("id", PK),
            (
                "opportunity_id",
                "INTEGER NOT NULL REFERENCES business_opportunities(id)",
            ),
            ("followed_at", TN),
            ("note", TN),
        ],
        indexes: &["opportunity_id"],
    },
    TableSpec {
        name: "event_registrations",
        columns: &[
            ("id", PK),
            ("event", TN),
            ("city", TN),
            ("name", TN),
            ("company", T),
            ("email", TN),
            ("mobile", TN),
            ("registered_at", TN),
            ("checked_in", "INTEGER NOT NULL"),
        ],
        indexes: &["email", "mobile"],
    },
    TableSpec {
        name: "training_enquiries",
        columns: &[
            ("id", PK),
            ("course", TN),
            ("name", TN),
            ("company", T),
            ("email", TN),
            ("mobile", TN),
            ("question", T),
            ("submitted_at", TN),
        ],
        indexes: &["email", "mobile"],
    },
    TableSpec {
        name: "training_enrolments",
        columns: &[
            ("id", PK),
            ("course", TN),
            ("name", TN),
            ("email", TN),
            ("mobile", TN),
            ("city", T),
            ("company", T),
            ("school", T),
            ("grade", T),
            ("major", T),
            ("activation_code", T),
            ("applied_at", TN),
            ("activated_at", T),
        ],
        indexes: &["email", "mobile"],
    },
    TableSpec {
        name: "certificates",
        columns: &[
            ("id", PK),
            (
                "enrolment_id",
                "INTEGER NOT NULL REFERENCES training_enrolments(id)",
            ),
            ("certificate_type", TN),
            ("certificate_no", "TEXT NOT NULL UNIQUE"),
            ("city", T),
            ("issued_at", TN),
        ],
        indexes: &["enrolment_id"],
    },
    TableSpec {
        name: "training_partner_applications",
        columns: &[
            ("id", PK),
            ("name", TN),
            ("email", TN),
            ("mobile", TN),
            ("city", T),
            ("company", T),
            ("position", T),
            ("intention", T),
            ("applied_at", TN),
        ],
        indexes: &["email", "mobile"],
    },
    TableSpec {
        name: "partners",
        columns: &[
            ("id", PK),
            ("name", TN),
            ("position", T),
            ("company", TN),
            ("province", T),
            ("city", T),
            ("email", TN),
            ("mobile", TN),
            ("inviter", T),
            ("registered_capital", T),
            ("founded_on", T),
            ("industries", T),
            ("website", T),
            ("introduction", T),
            ("password_hash", TN),
            ("registered_at", TN),
        ],
        indexes: &["email", "mobile"],
    },
    TableSpec {
        name: "marketing_contacts",
        columns: &[
            ("id", PK),
            ("name", T),
            ("company", T),
            ("position", T),
            ("email", T),
            ("mobile", T),
            ("source", TN),
            ("email_opt_in", "INTEGER NOT NULL"),
            ("sms_opt_in", "INTEGER NOT NULL"),
            ("created_at", TN),
            ("unsubscribed_at", T),
        ],
        indexes: &["email", "mobile"],
    },
    TableSpec {
        name: "marketing_messages",
        columns: &[
            ("id", PK),
            (
                "contact_id",
                "INTEGER NOT NULL REFERENCES marketing_contacts(id)",
            ),
            ("channel", TN),
            ("campaign", TN),
            ("sent_at", TN),
            ("opened_at", T),
        ],
        indexes: &["contact_id"],
    },
    TableSpec {
        name: "forum_users",
        columns: &[
            ("id", PK),
            ("username", "TEXT NOT NULL UNIQUE"),
            ("email", "TEXT NOT NULL UNIQUE"),
            ("reason", T),
            ("password_hash", TN),
            ("registered_at", TN),
            ("last_seen_at", T),
        ],
        indexes: &[],
    },
    TableSpec {
        name: "forum_downloads",
        columns: &[
            ("id", PK),
            ("user_id", "INTEGER NOT NULL REFERENCES forum_users(id)"),
            ("topic", TN),
            ("attachment", T),
            ("downloaded_at", TN),
        ],
        indexes: &["user_id"],
    },
];

pub(super) fn spec(table: &str) -> Option<&'static TableSpec> {
    TABLES.iter().find(|t| t.name == table)
}

/// Creates `path` afresh and writes `data` into it, in one transaction.
pub(super) async fn write_database(path: &Path, data: &Dataset) -> anyhow::Result<()> {
    for side in ["", "-journal", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(side);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
    // The rollback journal, not WAL: the file is then one file, and a read-only
    // connection needs no side files.
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Delete)
        .foreign_keys(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await?;
    let db = SqlxSqliteConnector::from_sqlx_sqlite_pool(pool);
    let tx = db.begin().await?;
    for t in TABLES {
        let columns: Vec<String> = t
            .columns
            .iter()
            .map(|(name, ty)| format!("{name} {ty}"))
            .collect();
        tx.execute_unprepared(&format!("CREATE TABLE {} ({})", t.name, columns.join(", ")))
            .await?;
        for c in t.indexes {
            tx.execute_unprepared(&format!(
                "CREATE INDEX {table}_{c} ON {table} ({c})",
                table = t.name
            ))
            .await?;
        }
        let rows = data.tables.get(t.name).map(Vec::as_slice).unwrap_or(&[]);
        // A few hundred rows per statement, well within SQLite's bound parameters.
        let per_statement = (4_000 / t.columns.len()).max(1);
        let names: Vec<&str> = t.columns.iter().map(|(n, _)| *n).collect();
        for chunk in rows.chunks(per_statement) {
            let one = format!("({})", vec!["?"; names.len()].join(", "));
            let sql = format!(
                "INSERT INTO {} ({}) VALUES {}",
                t.name,
                names.join(", "),
                vec![one; chunk.len()].join(", ")
            );
            let values: Vec<sea_orm::Value> = chunk
                .iter()
                .flat_map(|row| row.iter().map(Val::to_db))
                .collect();
            tx.execute_raw(Statement::from_sql_and_values(
                DbBackend::Sqlite,
                sql,
                values,
            ))
            .await?;
        }
    }
    tx.commit().await?;
    db.close().await?;
    Ok(())
}
