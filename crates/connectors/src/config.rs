//! The sources file: which systems hold personal data, and how to reach them.
//!
//! ```toml
//! [[source]]
//! name = "website"                      # [a-z][a-z0-9_]*: a folder name in bundles
//! title_zh = "官网账户系统"
//! title_en = "Website accounts"
//! owner = "web-team@example.com"        # asked when the source needs a person
//! portable = ["account"]                # given with consent or under contract (portability)
//!
//! [source.sql]
//! url_env = "WEBSITE_DB_URL"            # or url = "postgres://…"; sqlite:, mysql: too
//!
//! [[source.sql.table]]
//! name = "users"
//! category = "account"
//! key = "id"
//! match = { email = "email", mobile = "mobile", account_id = "id" }
//! columns = ["id", "name", "email", "mobile", "company", "created_at"]
//! column_categories = { last_login_ip = "access_logs" }
//!
//! [[source.sql.table]]
//! name = "downloads"
//! category = "downloads"
//! parent = { table = "users", column = "user_id" }   # downloads.user_id = users.id
//! columns = ["product", "requested_at"]
//! ```
//!
//! Everything is checked when the file is read, and every problem is reported at once:
//! names, categories, identifiers (letters, digits, `_`, `$`, optionally `schema.`),
//! parents that exist and do not loop, secrets present.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use rightsdesk_domain::Secret;
use rightsdesk_domain::categories::{Catalogue, Category, is_key};
use rightsdesk_domain::purposes::{Purpose, Purposes};
use serde::{Deserialize, Serialize};

use crate::Connector;
use crate::http::HttpSource;
use crate::sql::SqlSource;

/// The sources file as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourcesFile {
    /// Categories added to (or restating) the bundled catalogue.
    #[serde(default)]
    pub category: Vec<Category>,
    /// Purposes of processing on consent added to (or restating) the bundled ones.
    #[serde(default)]
    pub purpose: Vec<Purpose>,
    #[serde(default)]
    pub source: Vec<SourceConfig>,
    /// Categories a law requires the company to keep for a time (contracts, invoices):
    /// an erasure leaves them in place, restricted to storage and security, until the
    /// period ends (PIPL 47).
    #[serde(default)]
    pub retention: Vec<RetentionRule>,
}

/// `[[retention]]`: a legal duty to keep one category for a period.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionRule {
    pub category: String,
    /// The law and article, as the requester and the certificate read it.
    pub basis_zh: String,
    pub basis_en: String,
    /// Days the data is kept from the erasure request on (1 to 36,500).
    pub days: u32,
}

/// One source as written.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    pub name: String,
    pub title_zh: String,
    pub title_en: String,
    /// Who answers for it: gets the manual tasks and their reminders.
    pub owner: String,
    /// The categories it holds (`http` and `manual`; an `sql` source's come from its
    /// tables).
    #[serde(default)]
    pub categories: Vec<String>,
    /// The categories whose data the subject gave with consent or under a contract: what
    /// a portability request may transfer (SPEC §1).
    #[serde(default)]
    pub portable: Vec<String>,
    /// The purposes of processing on consent it uses (`http` and `manual`; an `sql`
    /// source's are those of its `consent` table): a consent withdrawal reaches it.
    #[serde(default)]
    pub purposes: Vec<String>,
    /// The fields of personal data a correction may change in it (`http` and `manual`;
    /// an `sql` source's are those of its `[source.sql.correct]`): keys such as
    /// `address`, as officers apply a requested correction to them.
    #[serde(default)]
    pub correctable: Vec<String>,
    /// Seconds a source may stay silent (connecting, or between two rows or pages).
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// Days until the source's backups rotate: an erasure is `backup_pending` until
    /// then (the backups still hold the data; a restore must re-apply it). Unset: the
    /// source has no backups of its own, or they are purged with it.
    #[serde(default)]
    pub backup_rotation_days: Option<u32>,
    #[serde(default)]
    pub sql: Option<SqlConfig>,
    #[serde(default)]
    pub http: Option<HttpConfig>,
    #[serde(default)]
    pub manual: Option<ManualConfig>,
}

fn default_timeout() -> u64 {
    30
}

/// `[source.sql]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SqlConfig {
    /// `postgres://…`, `mysql://…` or `sqlite:…` (opened read-only unless the URL says
    /// otherwise). Prefer `url_env`, so that a password stays out of the file.
    #[serde(default)]
    pub url: Option<Secret>,
    /// The environment variable that holds the URL.
    #[serde(default)]
    pub url_env: Option<String>,
    /// The URL erasures use, with credentials that may update and delete (look-ups
    /// need only read). Unset: `url` (a SQLite file is then opened read-write).
    #[serde(default)]
    pub write_url: Option<Secret>,
    #[serde(default)]
    pub write_url_env: Option<String>,
    /// How the mobile columns store a number: `e164` (`+8613812345678`, the default),
    /// `digits` (`8613812345678`) or `national` (`13812345678` for +86 numbers, digits
    /// otherwise).
    #[serde(default)]
    pub mobile_format: MobileFormat,
    #[serde(default = "default_connections")]
    pub max_connections: u32,
    /// Account closure (注销): how the person's account is deactivated, before their data
    /// is erased, in the same transaction.
    #[serde(default)]
    pub deactivate: Option<RowUpdate>,
    /// Consent withdrawal: per purpose, how the person's rows record that it is withdrawn
    /// (`[source.sql.consent.marketing_sms] table = "users", set = { sms_opt_in = false }`).
    /// A purpose named here is one the source uses.
    #[serde(default)]
    pub consent: BTreeMap<String, RowUpdate>,
    /// Correction (PIPL 46): per field, the column that holds it
    /// (`[source.sql.correct.address] table = "users", column = "address"`). The new
    /// value is bound as text.
    #[serde(default)]
    pub correct: BTreeMap<String, FieldColumn>,
    #[serde(default)]
    pub table: Vec<TableConfig>,
}

/// `{ table = "users", column = "address" }`: where a correctable field is held.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FieldColumn {
    pub table: String,
    pub column: String,
}

/// `{ table = "users", set = { status = "closed", sms_opt_in = false } }`: the columns
/// set (to these values, bound) in the person's rows of `table`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RowUpdate {
    pub table: String,
    pub set: BTreeMap<String, ColumnValue>,
}

/// A value written to a column: text, a whole number or a boolean, bound as such.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum ColumnValue {
    Bool(bool),
    Int(i64),
    Text(String),
}

fn default_connections() -> u32 {
    2
}

/// How a source stores mobile numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MobileFormat {
    #[default]
    E164,
    Digits,
    National,
}

impl MobileFormat {
    /// `e164` (`+8613812345678`) as this source stores it.
    pub fn render(self, e164: &str) -> String {
        let digits = e164.trim_start_matches('+');
        match self {
            Self::E164 => format!("+{digits}"),
            Self::Digits => digits.to_owned(),
            Self::National => digits
                .strip_prefix("86")
                .filter(|n| n.len() == 11)
                .unwrap_or(digits)
                .to_owned(),
        }
    }
}

/// `[[source.sql.table]]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TableConfig {
    /// `table` or `schema.table`.
    pub name: String,
    /// The category of its columns (unless `column_categories` says otherwise).
    pub category: String,
    /// The column children refer to (see `parent`).
    #[serde(default)]
    pub key: Option<String>,
    /// The columns that hold each identifier: rows matching any of them are the
    /// subject's. A table without `match` is found through its `parent`.
    #[serde(default, rename = "match")]
    pub matches: Matches,
    #[serde(default)]
    pub parent: Option<ParentLink>,
    /// The columns exported (every value as text).
    pub columns: Vec<String>,
    /// Columns of another category than the table's.
    #[serde(default)]
    pub column_categories: BTreeMap<String, String>,
    /// How an erasure removes the person's rows: `delete` them, set `erase_columns` to
    /// `null`, or `anonymise` `erase_columns` with a keyed hash. Unset: the table is not
    /// erased by rightsdesk, and an erasure asks the source's owner.
    #[serde(default)]
    pub erase: Option<EraseStrategy>,
    /// The columns `null` and `anonymise` change (any columns, exported or not).
    #[serde(default)]
    pub erase_columns: Vec<String>,
    /// A column set to the end of the retention period when the table's category is
    /// kept under a `[[retention]]` rule: the company's systems read it as "storage
    /// and security only".
    #[serde(default)]
    pub restrict_column: Option<String>,
}

/// How a table's rows are erased.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EraseStrategy {
    Delete,
    Null,
    Anonymise,
}

/// The identity columns of a table.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Matches {
    pub email: Option<String>,
    pub mobile: Option<String>,
    pub account_id: Option<String>,
}

impl Matches {
    pub fn columns(&self) -> impl Iterator<Item = &String> {
        [&self.email, &self.mobile, &self.account_id]
            .into_iter()
            .flatten()
    }

    pub fn is_empty(&self) -> bool {
        self.columns().next().is_none()
    }
}

/// A child table's link to its parent: `child.column = parent.key`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ParentLink {
    pub table: String,
    pub column: String,
}

/// `[source.http]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Where look-ups are posted (HTTPS, or HTTP on loopback).
    pub url: String,
    /// The shared HMAC key (at least 32 bytes). Prefer `secret_env`.
    #[serde(default)]
    pub secret: Option<Secret>,
    #[serde(default)]
    pub secret_env: Option<String>,
    /// Records asked for per page.
    #[serde(default = "default_page")]
    pub page_size: u32,
    /// Whether the service carries out erasures (the `erase` action, which closes the
    /// account first for an account closure). Unset: an erasure of this source becomes a
    /// task for its owner.
    #[serde(default)]
    pub erase: bool,
    /// Whether the service applies consent withdrawals itself (the `consent` action).
    /// Unset: a withdrawal of one of its `purposes` becomes a task for its owner.
    #[serde(default)]
    pub consent: bool,
    /// Whether the service reads and applies corrections of its `correctable` fields
    /// itself (the `current` and `correct` actions). Unset: a correction becomes a task
    /// for its owner.
    #[serde(default)]
    pub correct: bool,
}

fn default_page() -> u32 {
    1_000
}

/// `[source.manual]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ManualConfig {
    /// What the owner is asked to do, shown in their task.
    #[serde(default)]
    pub instructions_zh: Option<String>,
    #[serde(default)]
    pub instructions_en: Option<String>,
}

/// Which connector a source uses.
#[derive(Debug, Clone)]
pub enum ConnectorConfig {
    Sql(SqlConfig),
    Http(HttpConfig),
    Manual(ManualConfig),
}

/// The sources, checked and ready.
#[derive(Debug, Default)]
pub struct Sources {
    pub catalogue: Catalogue,
    /// The purposes of processing on consent.
    pub purposes: Purposes,
    pub sources: Vec<Source>,
    /// The `[[retention]]` rules by category.
    pub retention: BTreeMap<String, RetentionRule>,
}

/// One source, checked, with its connector.
#[derive(Debug)]
pub struct Source {
    pub name: String,
    pub title_zh: String,
    pub title_en: String,
    pub owner: String,
    /// Every category it holds, sorted.
    pub categories: Vec<String>,
    pub portable: BTreeSet<String>,
    /// The purposes of processing on consent it uses, sorted.
    pub purposes: Vec<String>,
    /// The fields a correction may change in it, sorted.
    pub correctable: Vec<String>,
    pub timeout: Duration,
    pub connector: Connector,
    pub manual: Option<ManualConfig>,
    /// See [`SourceConfig::backup_rotation_days`].
    pub backup_rotation_days: Option<u32>,
}

/// Every problem found in a sources file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.join("; "))]
pub struct SourcesError(pub Vec<String>);

impl Sources {
    /// Reads and checks the sources file at `path`; the environment gives the URLs and
    /// secrets named by `url_env` / `secret_env`.
    pub fn load(path: &Path) -> Result<Self, SourcesError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| SourcesError(vec![format!("{}: {e}", path.display())]))?;
        Self::from_toml(&text, |name| std::env::var(name).ok()).map_err(|e| {
            SourcesError(
                e.0.into_iter()
                    .map(|p| format!("{}: {p}", path.display()))
                    .collect(),
            )
        })
    }

    /// Reads and checks a sources file; `env` looks up environment variables.
    pub fn from_toml(
        text: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, SourcesError> {
        let file: SourcesFile =
            toml::from_str(text).map_err(|e| SourcesError(vec![e.to_string()]))?;
        Self::build(file, env)
    }

    fn build(
        file: SourcesFile,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, SourcesError> {
        let mut problems = Vec::new();
        let mut catalogue = Catalogue::bundled();
        if let Err(p) = catalogue.extend(file.category) {
            problems.extend(p);
        }
        let mut purposes = Purposes::bundled();
        if let Err(p) = purposes.extend(file.purpose) {
            problems.extend(p);
        }
        let mut names = BTreeSet::new();
        let mut sources = Vec::new();
        for s in file.source {
            let at = format!("source {:?}", s.name);
            let mut bad = |p: String| problems.push(format!("{at}: {p}"));
            if !is_key(&s.name) {
                bad("the name must be lower-case letters, digits and _, starting with a letter, at most 40 bytes".to_owned());
            }
            if !names.insert(s.name.clone()) {
                bad("a source of this name comes earlier".to_owned());
            }
            if s.title_zh.trim().is_empty() || s.title_en.trim().is_empty() {
                bad("title_zh and title_en are required".to_owned());
            }
            if s.owner.trim().is_empty() {
                bad("owner is required (who answers for this source)".to_owned());
            }
            if !(1..=3_600).contains(&s.timeout_secs) {
                bad("timeout_secs must be from 1 to 3600".to_owned());
            }
            let connectors = [s.sql.is_some(), s.http.is_some(), s.manual.is_some()]
                .iter()
                .filter(|x| **x)
                .count();
            if connectors != 1 {
                bad("give exactly one of [source.sql], [source.http], [source.manual]".to_owned());
                continue;
            }
            if s.backup_rotation_days
                .is_some_and(|d| !(1..=3_650).contains(&d))
            {
                bad("backup_rotation_days must be from 1 to 3650".to_owned());
            }
            let timeout = Duration::from_secs(s.timeout_secs.max(1));
            let (categories, connector): (BTreeSet<String>, Option<Connector>) = if let Some(sql) =
                &s.sql
            {
                if !s.categories.is_empty() {
                    bad(
                        "an sql source's categories come from its tables: remove `categories`"
                            .to_owned(),
                    );
                }
                if !s.purposes.is_empty() {
                    bad(
                        "an sql source's purposes are those of [source.sql.consent]: remove `purposes`"
                            .to_owned(),
                    );
                }
                if !s.correctable.is_empty() {
                    bad(
                        "an sql source's correctable fields are those of [source.sql.correct]: remove `correctable`"
                            .to_owned(),
                    );
                }
                let mut p = Vec::new();
                let categories = sql
                    .table
                    .iter()
                    .flat_map(|t| {
                        std::iter::once(t.category.clone())
                            .chain(t.column_categories.values().cloned())
                    })
                    .collect();
                let url = secret_from(&sql.url, &sql.url_env, "url", &env, &mut p);
                let write_url = if sql.write_url.is_some() || sql.write_url_env.is_some() {
                    secret_from(
                        &sql.write_url,
                        &sql.write_url_env,
                        "write_url",
                        &env,
                        &mut p,
                    )
                } else {
                    None
                };
                let source = match url {
                    Some(url) => SqlSource::new(&s.name, sql, url, write_url, timeout, &mut p),
                    None => None,
                };
                for problem in p {
                    bad(problem);
                }
                (categories, source.map(|s| Connector::Sql(Box::new(s))))
            } else if let Some(http) = &s.http {
                let mut p = Vec::new();
                let secret = secret_from(&http.secret, &http.secret_env, "secret", &env, &mut p);
                let source = match secret {
                    Some(secret) => HttpSource::new(http, secret, timeout, &mut p),
                    None => None,
                };
                for problem in p {
                    bad(problem);
                }
                if s.categories.is_empty() {
                    bad("`categories` is required: what the service holds".to_owned());
                }
                let categories: BTreeSet<String> = s.categories.iter().cloned().collect();
                (
                    categories.clone(),
                    source.map(|h| Connector::Http(h.with_categories(categories))),
                )
            } else {
                if s.categories.is_empty() {
                    bad("`categories` is required: what the owner holds".to_owned());
                }
                (
                    s.categories.iter().cloned().collect(),
                    Some(Connector::Manual),
                )
            };
            for c in categories.iter().chain(s.portable.iter()) {
                if !catalogue.contains(c) {
                    bad(format!(
                        "category {c:?} is not in the catalogue (add it with [[category]])"
                    ));
                }
            }
            let used: BTreeSet<String> = match &s.sql {
                Some(sql) => sql.consent.keys().cloned().collect(),
                None => s.purposes.iter().cloned().collect(),
            };
            for p in &used {
                if !purposes.contains(p) {
                    bad(format!(
                        "purpose {p:?} is not in the catalogue (add it with [[purpose]])"
                    ));
                }
            }
            if s.http.as_ref().is_some_and(|h| h.consent) && used.is_empty() {
                bad("consent = true needs `purposes`: the ones the service uses".to_owned());
            }
            let correctable: BTreeSet<String> = match &s.sql {
                Some(sql) => sql.correct.keys().cloned().collect(),
                None => s.correctable.iter().cloned().collect(),
            };
            for f in &correctable {
                if !is_key(f) {
                    bad(format!(
                        "correctable field {f:?}: lower-case letters, digits and _, starting with a letter, at most 40 bytes"
                    ));
                }
            }
            if s.http.as_ref().is_some_and(|h| h.correct) && correctable.is_empty() {
                bad(
                    "correct = true needs `correctable`: the fields the service corrects"
                        .to_owned(),
                );
            }
            for c in &s.portable {
                if !categories.contains(c) {
                    bad(format!(
                        "portable category {c:?} is not one the source holds"
                    ));
                }
            }
            if let Some(connector) = connector {
                sources.push(Source {
                    name: s.name.clone(),
                    title_zh: s.title_zh.clone(),
                    title_en: s.title_en.clone(),
                    owner: s.owner.clone(),
                    categories: categories.into_iter().collect(),
                    portable: s.portable.iter().cloned().collect(),
                    purposes: used.into_iter().collect(),
                    correctable: correctable.into_iter().collect(),
                    timeout,
                    connector,
                    manual: s.manual.clone(),
                    backup_rotation_days: s.backup_rotation_days,
                });
            }
        }
        let mut retention = BTreeMap::new();
        for r in file.retention {
            let at = format!("retention {:?}", r.category);
            if !catalogue.contains(&r.category) {
                problems.push(format!(
                    "{at}: not a category of the catalogue (add it with [[category]])"
                ));
            }
            if r.basis_zh.trim().is_empty() || r.basis_en.trim().is_empty() {
                problems.push(format!(
                    "{at}: basis_zh and basis_en are required (the law that requires keeping it)"
                ));
            }
            if !(1..=36_500).contains(&r.days) {
                problems.push(format!("{at}: days must be from 1 to 36500"));
            }
            if retention.insert(r.category.clone(), r).is_some() {
                problems.push(format!("{at}: a rule for this category comes earlier"));
            }
        }
        let retained: BTreeSet<String> = retention.keys().cloned().collect();
        for s in &sources {
            if let Connector::Sql(sql) = &s.connector {
                problems.extend(
                    sql.retention_problems(&retained)
                        .into_iter()
                        .map(|p| format!("source {:?}: {p}", s.name)),
                );
            }
        }
        if problems.is_empty() {
            Ok(Self {
                catalogue,
                purposes,
                sources,
                retention,
            })
        } else {
            Err(SourcesError(problems))
        }
    }

    pub fn get(&self, name: &str) -> Option<&Source> {
        self.sources.iter().find(|s| s.name == name)
    }

    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }
}

/// A secret given in the file or named by an environment variable (exactly one).
fn secret_from(
    value: &Option<Secret>,
    env_name: &Option<String>,
    field: &str,
    env: &impl Fn(&str) -> Option<String>,
    problems: &mut Vec<String>,
) -> Option<Secret> {
    match (value, env_name) {
        (Some(v), None) if !v.is_empty() => Some(v.clone()),
        (None, Some(name)) => match env(name) {
            Some(v) if !v.is_empty() => Some(Secret::new(v)),
            _ => {
                problems.push(format!(
                    "{field}_env: the environment variable {name} is not set"
                ));
                None
            }
        },
        (Some(_), Some(_)) => {
            problems.push(format!("give {field} or {field}_env, not both"));
            None
        }
        _ => {
            problems.push(format!("{field} (or {field}_env) is required"));
            None
        }
    }
}
