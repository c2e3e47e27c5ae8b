//! The `sql` connector: a PostgreSQL, MySQL/MariaDB or SQLite database, read table by
//! table with the identity columns the sources file names.
//!
//! SQL is built only from the sources file, and only from names that passed
//! [`is_identifier`] and are quoted for the database; the subject's identifiers are
//! always bound parameters. A child table is found through its parent's key with a
//! sub-select, so one query per table answers, however deep the chain. Values are
//! exported as text (`CAST(… AS TEXT)`): what the person gets is what the database
//! holds, whatever its type. Rows are streamed: a person with a million rows costs no
//! more memory than one with ten.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures_util::StreamExt;
use hmac::{Hmac, Mac};
use rightsdesk_domain::Secret;
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    DbErr, FromQueryResult, Statement, TransactionTrait, Value as DbValue,
};
use serde_json::{Map, Value};
use sha2::Sha256;
use tokio::sync::OnceCell;

use rightsdesk_domain::kinds::ConsentChange;

use crate::config::{ColumnValue, EraseStrategy, Matches, MobileFormat, RowUpdate, SqlConfig};
use crate::{
    CheckItem, ConnectorError, ConsentOrder, CorrectionOrder, Counter, CurrentValues, EraseOrder,
    FieldCorrection, Identifiers, LookupStats, PurposeChange, Record, RecordSink, TableErasure,
    TableOutcome,
};

/// Whether `s` is a plain SQL identifier: a letter or `_`, then letters, digits, `_` or
/// `$`, at most 63 bytes. Anything else in the sources file is refused at start.
pub fn is_identifier(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'A'..=b'Z' | b'_'))
        && s.len() <= 63
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$')
}

/// A table name: an identifier, or `schema.table`.
fn is_table_name(s: &str) -> bool {
    let mut parts = s.split('.');
    let ok = parts.next().is_some_and(is_identifier);
    match (parts.next(), parts.next()) {
        (None, _) => ok,
        (Some(table), None) => ok && is_identifier(table),
        _ => false,
    }
}

/// The SQL dialect of a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    MySql,
    Sqlite,
}

impl Dialect {
    fn of(url: &str) -> Option<Self> {
        let scheme = url.split(':').next()?.to_ascii_lowercase();
        match scheme.as_str() {
            "postgres" | "postgresql" => Some(Self::Postgres),
            "mysql" | "mariadb" => Some(Self::MySql),
            "sqlite" => Some(Self::Sqlite),
            _ => None,
        }
    }

    fn backend(self) -> DbBackend {
        match self {
            Self::Postgres => DbBackend::Postgres,
            Self::MySql => DbBackend::MySql,
            Self::Sqlite => DbBackend::Sqlite,
        }
    }

    /// Quotes a validated name (`schema.table` part by part). Not `"…"` on SQLite: there
    /// a double-quoted name that is no column silently becomes a string literal (a
    /// misspelt column would export its own name, or match nothing), where a backquoted
    /// one is an error.
    fn quote(self, name: &str) -> String {
        let (open, close) = match self {
            Self::MySql | Self::Sqlite => ('`', '`'),
            Self::Postgres => ('"', '"'),
        };
        name.split('.')
            .map(|part| format!("{open}{part}{close}"))
            .collect::<Vec<_>>()
            .join(".")
    }

    /// The `n`th (1-based) bound parameter.
    fn placeholder(self, n: usize) -> String {
        match self {
            Self::Postgres => format!("${n}"),
            Self::MySql | Self::Sqlite => "?".to_owned(),
        }
    }

    /// A column's value as text, named as the column.
    fn as_text(self, column: &str) -> String {
        format!("{} AS {}", self.text_of(column), self.quote(column))
    }

    /// A column's value as text, in an expression.
    fn text_of(self, column: &str) -> String {
        let q = self.quote(column);
        match self {
            Self::MySql => format!("CAST({q} AS CHAR)"),
            Self::Postgres | Self::Sqlite => format!("CAST({q} AS TEXT)"),
        }
    }
}

/// `url` as the connector opens it: a SQLite file read-only (`ro`) or read-write (`rw`)
/// unless the URL says otherwise; `mariadb:` as sqlx knows it.
fn normalise_url(dialect: Dialect, url: Secret, sqlite_mode: &str) -> Secret {
    match dialect {
        Dialect::Sqlite if !url.expose().contains("mode=") => {
            let sep = if url.expose().contains('?') { '&' } else { '?' };
            Secret::new(format!("{}{sep}mode={sqlite_mode}", url.expose()))
        }
        Dialect::MySql if url.expose().starts_with("mariadb:") => {
            Secret::new(url.expose().replacen("mariadb:", "mysql:", 1))
        }
        _ => url,
    }
}

/// A table, checked.
#[derive(Debug, Clone)]
struct Table {
    name: String,
    key: Option<String>,
    matches: Matches,
    /// (index of the parent table, the column of this table that holds its key)
    parent: Option<(usize, String)>,
    columns: Vec<String>,
    /// The exported columns by category.
    by_category: BTreeMap<String, Vec<String>>,
    /// The table's own category (its rows are kept or erased as one).
    category: String,
    erase: Option<EraseStrategy>,
    erase_columns: Vec<String>,
    restrict_column: Option<String>,
    /// Parents above it (0 for a table with `match` only): erasures go deepest first,
    /// while the parents that find a child's rows are still there.
    depth: usize,
}

/// Columns set in the person's rows of one table (`deactivate`, `consent`, a
/// correction), checked.
#[derive(Debug)]
struct Update {
    table: usize,
    set: Vec<(String, DbValue)>,
}

impl Update {
    fn new(
        config: &RowUpdate,
        index: &BTreeMap<&str, usize>,
        at: &str,
        problems: &mut Vec<String>,
    ) -> Option<Self> {
        let mut bad = |p: String| problems.push(format!("{at}: {p}"));
        let Some(table) = index.get(config.table.as_str()).copied() else {
            bad(format!("{:?} is not a table of this source", config.table));
            return None;
        };
        if config.set.is_empty() {
            bad("`set` names no column".to_owned());
        }
        for c in config.set.keys() {
            if !is_identifier(c) {
                bad(format!("column {c:?} is not a plain column name"));
            }
        }
        let set = config
            .set
            .iter()
            .map(|(c, v)| {
                let value = match v {
                    ColumnValue::Bool(b) => DbValue::from(*b),
                    ColumnValue::Int(i) => DbValue::from(*i),
                    ColumnValue::Text(t) => DbValue::from(t.clone()),
                };
                (c.clone(), value)
            })
            .collect();
        Some(Self { table, set })
    }
}

/// A database that holds personal data.
pub struct SqlSource {
    name: String,
    url: Secret,
    /// For erasures (see `SqlConfig::write_url`).
    write_url: Secret,
    dialect: Dialect,
    mobile_format: MobileFormat,
    max_connections: u32,
    timeout: Duration,
    tables: Vec<Table>,
    /// Account closure: the table whose rows are deactivated, and the columns set.
    deactivate: Option<Update>,
    /// Consent withdrawal, per purpose: the table and the columns set.
    consent: BTreeMap<String, Update>,
    /// Correction, per field: the table and the column that hold it.
    correct: BTreeMap<String, (usize, String)>,
    conn: OnceCell<DatabaseConnection>,
    write_conn: OnceCell<DatabaseConnection>,
}

impl std::fmt::Debug for SqlSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlSource")
            .field("name", &self.name)
            .field("dialect", &self.dialect)
            .field("tables", &self.tables.len())
            .finish_non_exhaustive()
    }
}

/// How long a source's connection stays open unused.
const SOURCE_IDLE: Duration = Duration::from_secs(30);

impl SqlSource {
    /// Checks `config`; problems go to `problems` (then `None`).
    pub fn new(
        name: &str,
        config: &SqlConfig,
        url: Secret,
        write_url: Option<Secret>,
        timeout: Duration,
        problems: &mut Vec<String>,
    ) -> Option<Self> {
        let before = problems.len();
        let Some(dialect) = Dialect::of(url.expose()) else {
            problems.push("url: must start with postgres://, mysql:// or sqlite:".to_owned());
            return None;
        };
        if write_url
            .as_ref()
            .is_some_and(|w| Dialect::of(w.expose()) != Some(dialect))
        {
            problems
                .push("write_url: must be a URL of the same kind of database as url".to_owned());
        }
        let write_url = match write_url {
            Some(w) => normalise_url(dialect, w, "rw"),
            None => normalise_url(dialect, url.clone(), "rw"),
        };
        if dialect == Dialect::Sqlite
            && write_url.expose().contains("mode=ro")
            && (config.table.iter().any(|t| t.erase.is_some())
                || !config.consent.is_empty()
                || !config.correct.is_empty())
        {
            problems.push(
                "url says mode=ro, but erasures and consent withdrawals write: leave mode out (look-ups still open it read-only) or give write_url"
                    .to_owned(),
            );
        }
        let url = normalise_url(dialect, url, "ro");
        if !(1..=32).contains(&config.max_connections) {
            problems.push("max_connections must be from 1 to 32".to_owned());
        }
        if config.table.is_empty() {
            problems.push("an sql source needs at least one [[source.sql.table]]".to_owned());
        }
        let index: BTreeMap<&str, usize> = config
            .table
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.as_str(), i))
            .collect();
        let mut tables = Vec::new();
        for t in &config.table {
            let at = format!("table {:?}", t.name);
            let mut bad = |p: String| problems.push(format!("{at}: {p}"));
            if !is_table_name(&t.name) {
                bad(
                    "not a plain table name (letters, digits, _ and $, optionally schema.table)"
                        .to_owned(),
                );
            }
            for column in t
                .key
                .iter()
                .chain(t.matches.columns())
                .chain(t.columns.iter())
                .chain(t.column_categories.keys())
                .chain(t.parent.iter().map(|p| &p.column))
                .chain(t.erase_columns.iter())
                .chain(t.restrict_column.iter())
            {
                if !is_identifier(column) {
                    bad(format!("column {column:?} is not a plain column name"));
                }
            }
            if t.columns.is_empty() {
                bad("`columns` is empty: name the columns to export".to_owned());
            }
            let mut seen = std::collections::BTreeSet::new();
            for c in &t.columns {
                if !seen.insert(c) {
                    bad(format!("column {c:?} is listed twice"));
                }
            }
            for c in t.column_categories.keys() {
                if !t.columns.contains(c) {
                    bad(format!(
                        "column_categories names {c:?}, which is not in `columns`"
                    ));
                }
            }
            let parent = match &t.parent {
                Some(p) => match index.get(p.table.as_str()) {
                    Some(i) if config.table[*i].key.is_some() => Some((*i, p.column.clone())),
                    Some(_) => {
                        bad(format!("its parent {:?} has no `key`", p.table));
                        None
                    }
                    None => {
                        bad(format!(
                            "its parent {:?} is not a table of this source",
                            p.table
                        ));
                        None
                    }
                },
                None => None,
            };
            match t.erase {
                Some(EraseStrategy::Delete) | None if !t.erase_columns.is_empty() => {
                    bad("erase_columns is for erase = \"null\" or \"anonymise\"".to_owned())
                }
                Some(EraseStrategy::Null | EraseStrategy::Anonymise) => {
                    if t.erase_columns.is_empty() {
                        bad("erase = \"null\" or \"anonymise\" needs erase_columns".to_owned());
                    }
                    // The key stays (the tables below find their rows through it).
                    for m in t.matches.columns().filter(|m| t.key.as_ref() != Some(*m)) {
                        if !t.erase_columns.contains(m) {
                            bad(format!(
                                "erase_columns must include the identity column {m:?}, or the rows still name the person"
                            ));
                        }
                    }
                    if let Some(k) = &t.key
                        && t.erase_columns.contains(k)
                    {
                        bad(format!(
                            "erase_columns must not include the key {k:?}: the tables below it find their rows through it"
                        ));
                    }
                }
                _ => {}
            }
            if t.matches.is_empty() && t.parent.is_none() {
                bad(
                    "give `match` (the identity columns) or `parent` (how its rows are found)"
                        .to_owned(),
                );
            }
            let mut by_category: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for c in &t.columns {
                let category = t.column_categories.get(c).unwrap_or(&t.category);
                by_category
                    .entry(category.clone())
                    .or_default()
                    .push(c.clone());
            }
            tables.push(Table {
                name: t.name.clone(),
                key: t.key.clone(),
                matches: t.matches.clone(),
                parent,
                columns: t.columns.clone(),
                by_category,
                category: t.category.clone(),
                erase: t.erase,
                erase_columns: t.erase_columns.clone(),
                restrict_column: t.restrict_column.clone(),
                depth: 0,
            });
        }
        let deactivate = config
            .deactivate
            .as_ref()
            .and_then(|d| Update::new(d, &index, "deactivate", problems));
        let consent = config
            .consent
            .iter()
            .filter_map(|(purpose, u)| {
                let at = format!("consent.{purpose}");
                Some((purpose.clone(), Update::new(u, &index, &at, problems)?))
            })
            .collect();
        let mut correct = BTreeMap::new();
        for (field, at) in &config.correct {
            match index.get(at.table.as_str()) {
                Some(table) if is_identifier(&at.column) => {
                    correct.insert(field.clone(), (*table, at.column.clone()));
                }
                Some(_) => problems.push(format!(
                    "correct.{field}: column {:?} is not a plain column name",
                    at.column
                )),
                None => problems.push(format!(
                    "correct.{field}: {:?} is not a table of this source",
                    at.table
                )),
            }
        }
        // Every parent chain ends at a table with `match`, without a loop.
        let mut depths = Vec::with_capacity(tables.len());
        for (i, t) in tables.iter().enumerate() {
            let mut at = i;
            let mut steps = 0;
            while let Some((p, _)) = tables[at].parent {
                steps += 1;
                if steps > tables.len() || p == i {
                    problems.push(format!("table {:?}: its parents form a loop", t.name));
                    break;
                }
                at = p;
            }
            depths.push(steps);
        }
        for (t, depth) in tables.iter_mut().zip(depths) {
            t.depth = depth;
        }
        if problems.len() > before {
            return None;
        }
        Some(Self {
            name: name.to_owned(),
            url,
            write_url,
            dialect,
            mobile_format: config.mobile_format,
            max_connections: config.max_connections,
            timeout,
            tables,
            deactivate,
            consent,
            correct,
            conn: OnceCell::new(),
            write_conn: OnceCell::new(),
        })
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    async fn connection(&self) -> Result<&DatabaseConnection, ConnectorError> {
        self.connect(&self.conn, &self.url).await
    }

    /// The connection erasures use (see `SqlConfig::write_url`).
    async fn write_connection(&self) -> Result<&DatabaseConnection, ConnectorError> {
        self.connect(&self.write_conn, &self.write_url).await
    }

    async fn connect<'a>(
        &self,
        cell: &'a OnceCell<DatabaseConnection>,
        url: &Secret,
    ) -> Result<&'a DatabaseConnection, ConnectorError> {
        cell.get_or_try_init(|| async {
            let mut options = ConnectOptions::new(url.expose().to_owned());
            options
                .max_connections(self.max_connections)
                .min_connections(0)
                // Look-ups come in bursts (a request's collection): between them the
                // source keeps no connection open, nor the memory each one holds.
                .idle_timeout(SOURCE_IDLE)
                .connect_timeout(self.timeout)
                .acquire_timeout(self.timeout)
                .sqlx_logging(false);
            match tokio::time::timeout(self.timeout, Database::connect(options)).await {
                Ok(Ok(conn)) => Ok(conn),
                Ok(Err(e)) => Err(unreachable_or_query(e)),
                Err(_) => Err(ConnectorError::Timeout(self.timeout.as_secs())),
            }
        })
        .await
    }

    /// The `WHERE` condition that finds table `i`'s rows of `ids` (binding values into
    /// `values`), or `None` when no identifier applies to it.
    fn condition(&self, i: usize, ids: &Identifiers, values: &mut Vec<DbValue>) -> Option<String> {
        let d = self.dialect;
        let t = &self.tables[i];
        let mut any = Vec::new();
        let mobile = ids.mobile.as_deref().map(|m| self.mobile_format.render(m));
        for (column, value) in [
            (&t.matches.email, ids.email.clone()),
            (&t.matches.mobile, mobile),
            (&t.matches.account_id, ids.account_id.clone()),
        ] {
            // A NUL cannot be stored in PostgreSQL text (the query would fail): such a
            // value matches nothing anywhere.
            if let (Some(column), Some(value)) = (column, value.filter(|v| !v.contains('\0'))) {
                values.push(DbValue::from(value));
                any.push(format!(
                    "{} = {}",
                    d.quote(column),
                    d.placeholder(values.len())
                ));
            }
        }
        if let Some((p, column)) = &t.parent
            && let Some(key) = &self.tables[*p].key
            && let Some(inner) = self.condition(*p, ids, values)
        {
            any.push(format!(
                "{} IN (SELECT {} FROM {} WHERE {inner})",
                d.quote(column),
                d.quote(key),
                d.quote(&self.tables[*p].name),
            ));
        }
        (!any.is_empty()).then(|| format!("({})", any.join(" OR ")))
    }

    /// The query for table `i`, or `None` when no identifier applies to it.
    fn select(&self, i: usize, ids: &Identifiers, count: bool) -> Option<Statement> {
        let d = self.dialect;
        let t = &self.tables[i];
        let mut values = Vec::new();
        let condition = self.condition(i, ids, &mut values)?;
        let what = if count {
            "COUNT(*) AS n".to_owned()
        } else {
            t.columns
                .iter()
                .map(|c| d.as_text(c))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let sql = format!("SELECT {what} FROM {} WHERE {condition}", d.quote(&t.name));
        Some(Statement::from_sql_and_values(d.backend(), sql, values))
    }

    /// Streams every row of `ids` into `sink`, table by table.
    pub async fn lookup(
        &self,
        ids: &Identifiers,
        sink: &mut impl RecordSink,
    ) -> Result<LookupStats, ConnectorError> {
        let db = self.connection().await?;
        let mut stats = Counter::default();
        for (i, table) in self.tables.iter().enumerate() {
            let Some(statement) = self.select(i, ids, false) else {
                continue;
            };
            let mut rows = match tokio::time::timeout(
                self.timeout,
                Value::find_by_statement(statement).stream(db),
            )
            .await
            {
                Ok(Ok(rows)) => rows,
                Ok(Err(e)) => return Err(unreachable_or_query(e)),
                Err(_) => return Err(ConnectorError::Timeout(self.timeout.as_secs())),
            };
            loop {
                let row = match tokio::time::timeout(self.timeout, rows.next()).await {
                    Err(_) => return Err(ConnectorError::Timeout(self.timeout.as_secs())),
                    Ok(None) => break,
                    Ok(Some(Err(e))) => return Err(unreachable_or_query(e)),
                    Ok(Some(Ok(row))) => row,
                };
                let Value::Object(mut row) = row else {
                    return Err(ConnectorError::Query(
                        "a row that is not a record".to_owned(),
                    ));
                };
                for (category, columns) in &table.by_category {
                    let mut data = Map::new();
                    for c in columns {
                        data.insert(c.clone(), row.remove(c).unwrap_or(Value::Null));
                    }
                    *stats.per_category.entry(category.clone()).or_default() += 1;
                    sink.accept(Record {
                        category: category.clone(),
                        table: table.name.clone(),
                        data,
                    })
                    .await?;
                }
            }
        }
        Ok(stats)
    }

    /// How many records a look-up of `ids` would give, per category, without reading
    /// them (`COUNT(*)` per table).
    pub async fn count(&self, ids: &Identifiers) -> Result<LookupStats, ConnectorError> {
        let db = self.connection().await?;
        let mut stats = Counter::default();
        for (i, table) in self.tables.iter().enumerate() {
            let Some(statement) = self.select(i, ids, true) else {
                continue;
            };
            let row = match tokio::time::timeout(self.timeout, db.query_one_raw(statement)).await {
                Ok(Ok(row)) => row,
                Ok(Err(e)) => return Err(unreachable_or_query(e)),
                Err(_) => return Err(ConnectorError::Timeout(self.timeout.as_secs())),
            };
            let n: i64 = row
                .and_then(|r| r.try_get("", "n").ok())
                .unwrap_or_default();
            if n > 0 {
                for category in table.by_category.keys() {
                    *stats.per_category.entry(category.clone()).or_default() +=
                        u64::try_from(n).unwrap_or_default();
                }
            }
        }
        Ok(stats)
    }

    /// Whether every table says how it is erased (else an erasure asks the owner).
    pub fn erasable(&self) -> bool {
        self.tables.iter().all(|t| t.erase.is_some())
    }

    /// Problems with `retained` categories (those under a `[[retention]]` rule): a kept
    /// table found only through a parent that an erasure removes could not be found
    /// again when its retention ends.
    pub fn retention_problems(&self, retained: &BTreeSet<String>) -> Vec<String> {
        let mut problems = Vec::new();
        for t in &self.tables {
            if !retained.contains(&t.category) || !t.matches.is_empty() {
                continue;
            }
            let mut at = t;
            while let Some((p, _)) = &at.parent {
                at = &self.tables[*p];
                if !retained.contains(&at.category) && at.erase.is_some() {
                    problems.push(format!(
                        "table {:?}: its category {:?} is kept under a retention rule, but it is found only through table {:?}, which an erasure changes; give it its own `match` columns",
                        t.name, t.category, at.name
                    ));
                    break;
                }
            }
        }
        problems
    }

    /// Erases the rows of `order.ids` in one transaction, deepest tables first: each
    /// table (of `order.only`'s categories, when given) by its strategy, or, when its
    /// category is in `order.restricted`, left in place with `restrict_column` set to the
    /// date its retention ends.
    pub async fn erase(&self, order: &EraseOrder<'_>) -> Result<Vec<TableErasure>, ConnectorError> {
        let db = self.write_connection().await?;
        let txn = self.timed(db.begin()).await?;
        let mut done = Vec::new();
        // An account closure: the account first, so that it cannot be used whatever
        // the rest keeps.
        if order.deactivate
            && let Some(update) = &self.deactivate
            && let Some(rows) = self.update_rows(&txn, update, order.ids).await?
        {
            let t = &self.tables[update.table];
            done.push(TableErasure {
                table: t.name.clone(),
                category: t.category.clone(),
                outcome: TableOutcome::Deactivated,
                rows,
            });
        }
        let mut by_depth: Vec<usize> = (0..self.tables.len()).collect();
        by_depth.sort_by_key(|i| std::cmp::Reverse(self.tables[*i].depth));
        for i in by_depth {
            let t = &self.tables[i];
            if order.only.is_some_and(|only| !only.contains(&t.category)) {
                continue;
            }
            let mut values = Vec::new();
            let Some(condition) = self.condition(i, order.ids, &mut values) else {
                continue;
            };
            let d = self.dialect;
            let table = d.quote(&t.name);
            let (outcome, rows) = if let Some(until) = order.restricted.get(&t.category) {
                let rows = match &t.restrict_column {
                    Some(column) => {
                        // `?` placeholders bind in the order they appear: SET's first.
                        let mut values = vec![DbValue::from(until.clone())];
                        let set = format!("{} = {}", d.quote(column), d.placeholder(1));
                        let condition = self
                            .condition(i, order.ids, &mut values)
                            .unwrap_or_default();
                        let sql = format!("UPDATE {table} SET {set} WHERE {condition}");
                        self.exec(&txn, sql, values).await?
                    }
                    None => {
                        let sql = format!("SELECT COUNT(*) AS n FROM {table} WHERE {condition}");
                        self.count_rows(&txn, sql, values).await?
                    }
                };
                (TableOutcome::Restricted, rows)
            } else {
                match t.erase {
                    None => {
                        return Err(ConnectorError::Refused(format!(
                            "table {:?} has no erase strategy",
                            t.name
                        )));
                    }
                    Some(EraseStrategy::Delete) => {
                        let sql = format!("DELETE FROM {table} WHERE {condition}");
                        (TableOutcome::Deleted, self.exec(&txn, sql, values).await?)
                    }
                    Some(EraseStrategy::Null) => {
                        let set = t
                            .erase_columns
                            .iter()
                            .map(|c| format!("{} = NULL", d.quote(c)))
                            .collect::<Vec<_>>()
                            .join(", ");
                        let sql = format!("UPDATE {table} SET {set} WHERE {condition}");
                        (TableOutcome::Nulled, self.exec(&txn, sql, values).await?)
                    }
                    Some(EraseStrategy::Anonymise) => (
                        TableOutcome::Anonymised,
                        self.anonymise(&txn, i, order, &condition, values).await?,
                    ),
                }
            };
            done.push(TableErasure {
                table: t.name.clone(),
                category: t.category.clone(),
                outcome,
                rows,
            });
        }
        self.timed(txn.commit()).await?;
        Ok(done)
    }

    /// Sets `update`'s columns in the person's rows of its table; `None` when no
    /// identifier applies to the table.
    async fn update_rows(
        &self,
        txn: &DatabaseTransaction,
        update: &Update,
        ids: &Identifiers,
    ) -> Result<Option<u64>, ConnectorError> {
        let d = self.dialect;
        // `?` placeholders bind in the order they appear: SET's first.
        let mut values: Vec<DbValue> = update.set.iter().map(|(_, v)| v.clone()).collect();
        let assignments = update
            .set
            .iter()
            .enumerate()
            .map(|(n, (c, _))| format!("{} = {}", d.quote(c), d.placeholder(n + 1)))
            .collect::<Vec<_>>()
            .join(", ");
        let Some(condition) = self.condition(update.table, ids, &mut values) else {
            return Ok(None);
        };
        let sql = format!(
            "UPDATE {} SET {assignments} WHERE {condition}",
            d.quote(&self.tables[update.table].name)
        );
        Ok(Some(self.exec(txn, sql, values).await?))
    }

    /// The purposes whose withdrawal this source records itself (`[source.sql.consent]`).
    pub fn consent_purposes(&self) -> impl Iterator<Item = &String> {
        self.consent.keys()
    }

    /// Records the withdrawal of `order.purposes` in the person's rows, in one
    /// transaction: per purpose, the columns its `consent` entry sets. Narrowing a
    /// purpose is not something columns can say: refused (its owner is asked instead).
    pub async fn change_consent(
        &self,
        order: &ConsentOrder<'_>,
    ) -> Result<Vec<PurposeChange>, ConnectorError> {
        if order.change != ConsentChange::Withdraw {
            return Err(ConnectorError::Refused(
                "an sql source records withdrawals only; a narrowing is its owner's task"
                    .to_owned(),
            ));
        }
        let db = self.write_connection().await?;
        let txn = self.timed(db.begin()).await?;
        let mut done = Vec::new();
        for purpose in order.purposes {
            let Some(update) = self.consent.get(purpose) else {
                continue;
            };
            let rows = self
                .update_rows(&txn, update, order.ids)
                .await?
                .unwrap_or_default();
            done.push(PurposeChange {
                purpose: purpose.clone(),
                table: self.tables[update.table].name.clone(),
                rows,
            });
        }
        self.timed(txn.commit()).await?;
        Ok(done)
    }

    /// The distinct non-null values of `field`'s column in the person's rows (`None`:
    /// no identifier applies to its table).
    async fn field_values(
        &self,
        conn: &impl ConnectionTrait,
        field: &str,
        ids: &Identifiers,
    ) -> Result<Option<Vec<String>>, ConnectorError> {
        let Some((table, column)) = self.correct.get(field) else {
            return Ok(None);
        };
        let d = self.dialect;
        let mut values = Vec::new();
        let Some(condition) = self.condition(*table, ids, &mut values) else {
            return Ok(None);
        };
        let sql = format!(
            "SELECT DISTINCT {} FROM {} WHERE {condition} AND {} IS NOT NULL",
            d.as_text(column),
            d.quote(&self.tables[*table].name),
            d.quote(column),
        );
        let rows = self
            .timed(
                Value::find_by_statement(Statement::from_sql_and_values(d.backend(), sql, values))
                    .all(conn),
            )
            .await?;
        let mut found: Vec<String> = rows
            .iter()
            .filter_map(|r| r.get(column).and_then(Value::as_str).map(str::to_owned))
            .collect();
        found.sort();
        Ok(Some(found))
    }

    /// What the person's rows hold now for each of `fields` this source maps.
    pub async fn current_values(
        &self,
        ids: &Identifiers,
        fields: &[String],
    ) -> Result<CurrentValues, ConnectorError> {
        let db = self.connection().await?;
        let mut out = CurrentValues::new();
        for field in fields {
            if let Some(values) = self.field_values(db, field, ids).await? {
                out.insert(field.clone(), values);
            }
        }
        Ok(out)
    }

    /// Sets each field of `order` this source maps to its new value (bound as text) in
    /// the person's rows, in one transaction, and says per field the rows changed and
    /// the values they held before.
    pub async fn correct(
        &self,
        order: &CorrectionOrder<'_>,
    ) -> Result<Vec<FieldCorrection>, ConnectorError> {
        let db = self.write_connection().await?;
        let txn = self.timed(db.begin()).await?;
        let mut done = Vec::new();
        for change in order.changes {
            let Some((table, column)) = self.correct.get(&change.field) else {
                continue;
            };
            let Some(old_values) = self.field_values(&txn, &change.field, order.ids).await? else {
                continue;
            };
            let update = Update {
                table: *table,
                set: vec![(column.clone(), DbValue::from(change.value.clone()))],
            };
            let rows = self
                .update_rows(&txn, &update, order.ids)
                .await?
                .unwrap_or_default();
            done.push(FieldCorrection {
                field: change.field.clone(),
                table: self.tables[*table].name.clone(),
                rows,
                old_values,
            });
        }
        self.timed(txn.commit()).await?;
        Ok(done)
    }

    /// Replaces each distinct combination of table `i`'s `erase_columns` values among
    /// the person's rows (`condition` with `values`) with their keyed hashes
    /// ([`anonymised`]); NULLs stay NULL.
    async fn anonymise(
        &self,
        txn: &DatabaseTransaction,
        i: usize,
        order: &EraseOrder<'_>,
        condition: &str,
        values: Vec<DbValue>,
    ) -> Result<u64, ConnectorError> {
        let d = self.dialect;
        let t = &self.tables[i];
        let table = d.quote(&t.name);
        let what = t
            .erase_columns
            .iter()
            .map(|c| d.as_text(c))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!("SELECT DISTINCT {what} FROM {table} WHERE {condition}");
        let combos = self
            .timed(
                Value::find_by_statement(Statement::from_sql_and_values(d.backend(), sql, values))
                    .all(txn),
            )
            .await?;
        let mut rows = 0;
        for combo in combos {
            // `?` placeholders bind in the order they appear: SET, the condition, the
            // old values.
            let mut bound = Vec::new();
            let mut set = Vec::new();
            for c in &t.erase_columns {
                if let Some(v) = combo.get(c).and_then(Value::as_str) {
                    let hashed = anonymised(order.anonymise_key, &self.name, &t.name, c, v);
                    bound.push(DbValue::from(hashed));
                    set.push(format!("{} = {}", d.quote(c), d.placeholder(bound.len())));
                }
            }
            if set.is_empty() {
                continue;
            }
            let condition = self.condition(i, order.ids, &mut bound).unwrap_or_default();
            let mut same = Vec::new();
            for c in &t.erase_columns {
                match combo.get(c).and_then(Value::as_str) {
                    Some(v) => {
                        bound.push(DbValue::from(v.to_owned()));
                        same.push(format!("{} = {}", d.text_of(c), d.placeholder(bound.len())));
                    }
                    None => same.push(format!("{} IS NULL", d.quote(c))),
                }
            }
            let sql = format!(
                "UPDATE {table} SET {} WHERE {condition} AND {}",
                set.join(", "),
                same.join(" AND ")
            );
            rows += self.exec(txn, sql, bound).await?;
        }
        Ok(rows)
    }

    async fn exec(
        &self,
        txn: &DatabaseTransaction,
        sql: String,
        values: Vec<DbValue>,
    ) -> Result<u64, ConnectorError> {
        let statement = Statement::from_sql_and_values(self.dialect.backend(), sql, values);
        Ok(self
            .timed(txn.execute_raw(statement))
            .await?
            .rows_affected())
    }

    async fn count_rows(
        &self,
        txn: &DatabaseTransaction,
        sql: String,
        values: Vec<DbValue>,
    ) -> Result<u64, ConnectorError> {
        let statement = Statement::from_sql_and_values(self.dialect.backend(), sql, values);
        let row = self.timed(txn.query_one_raw(statement)).await?;
        let n: i64 = row
            .and_then(|r| r.try_get("", "n").ok())
            .unwrap_or_default();
        Ok(u64::try_from(n).unwrap_or_default())
    }

    /// `f` within the source's timeout, its error as the connector's.
    async fn timed<T>(
        &self,
        f: impl std::future::Future<Output = Result<T, DbErr>>,
    ) -> Result<T, ConnectorError> {
        match tokio::time::timeout(self.timeout, f).await {
            Ok(Ok(x)) => Ok(x),
            Ok(Err(e)) => Err(unreachable_or_query(e)),
            Err(_) => Err(ConnectorError::Timeout(self.timeout.as_secs())),
        }
    }

    /// Connects and reads no row from every table: the tables and columns exist and
    /// the credentials may read them.
    pub async fn check(&self) -> Vec<CheckItem> {
        let db = match self.connection().await {
            Ok(db) => db,
            Err(e) => {
                return vec![CheckItem {
                    name: "connection".to_owned(),
                    ok: false,
                    detail: e.to_string(),
                }];
            }
        };
        let mut items = vec![CheckItem {
            name: "connection".to_owned(),
            ok: true,
            detail: format!("{:?}", self.dialect),
        }];
        items.push(if self.erasable() {
            match self.write_connection().await {
                Ok(_) => CheckItem {
                    name: "erasure".to_owned(),
                    ok: true,
                    detail: "every table has a strategy; the write connection opens".to_owned(),
                },
                Err(e) => CheckItem {
                    name: "erasure".to_owned(),
                    ok: false,
                    detail: format!("the write connection: {e}"),
                },
            }
        } else {
            CheckItem {
                name: "erasure".to_owned(),
                ok: true,
                detail: "not every table has `erase`: erasures go to the owner".to_owned(),
            }
        });
        for t in &self.tables {
            let d = self.dialect;
            let columns: Vec<&String> = t
                .columns
                .iter()
                .chain(t.matches.columns())
                .chain(t.key.iter())
                .chain(t.parent.iter().map(|(_, c)| c))
                .collect();
            let sql = format!(
                "SELECT {} FROM {} WHERE 1 = 0",
                columns
                    .iter()
                    .map(|c| d.quote(c))
                    .collect::<Vec<_>>()
                    .join(", "),
                d.quote(&t.name)
            );
            let result = tokio::time::timeout(
                self.timeout,
                db.query_all_raw(Statement::from_string(d.backend(), sql)),
            )
            .await;
            let (ok, detail) = match result {
                Ok(Ok(_)) => (true, format!("{} columns readable", t.columns.len())),
                Ok(Err(e)) => (false, e.to_string()),
                Err(_) => (
                    false,
                    format!("no answer within {} s", self.timeout.as_secs()),
                ),
            };
            items.push(CheckItem {
                name: t.name.clone(),
                ok,
                detail,
            });
        }
        items
    }
}

/// `anonymise`'s replacement for `value` of `source`.`table`.`column`: the first 16 hex
/// digits of HMAC-SHA256 under `key`. The same value in the same column always gives the
/// same replacement (counts and joins still work), and without the key it cannot be
/// traced back. It fits any text column of 16 characters or more.
pub fn anonymised(key: &[u8], source: &str, table: &str, column: &str, value: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    for part in [source, table, column, value] {
        mac.update(part.as_bytes());
        mac.update(&[0]);
    }
    let digest = mac.finalize().into_bytes();
    hex::encode(&digest[..8])
}

fn unreachable_or_query(e: DbErr) -> ConnectorError {
    match e {
        DbErr::Conn(_) | DbErr::ConnectionAcquire(_) => ConnectorError::Unreachable(e.to_string()),
        other => ConnectorError::Query(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_plain_names() {
        for ok in ["users", "_x", "User_Name2", "a$b"] {
            assert!(is_identifier(ok), "{ok}");
        }
        for bad in [
            "",
            "1users",
            "users; DROP TABLE x",
            "a\"b",
            "a`b",
            "a b",
            "名字",
            "a.b",
            "a-b",
            &"x".repeat(64),
        ] {
            assert!(!is_identifier(bad), "{bad}");
        }
        assert!(is_table_name("crm.contacts"));
        assert!(!is_table_name("a.b.c"));
        assert!(!is_table_name(".b"));
    }

    #[test]
    fn names_are_quoted_for_each_database() {
        assert_eq!(
            Dialect::Postgres.quote("crm.contacts"),
            "\"crm\".\"contacts\""
        );
        assert_eq!(Dialect::MySql.quote("users"), "`users`");
        assert_eq!(Dialect::Sqlite.quote("users"), "`users`");
        assert_eq!(Dialect::Postgres.placeholder(2), "$2");
        assert_eq!(Dialect::Sqlite.placeholder(2), "?");
    }

    #[test]
    fn mobile_numbers_as_sources_store_them() {
        assert_eq!(
            MobileFormat::E164.render("+8613812345678"),
            "+8613812345678"
        );
        assert_eq!(
            MobileFormat::Digits.render("+8613812345678"),
            "8613812345678"
        );
        assert_eq!(
            MobileFormat::National.render("+8613812345678"),
            "13812345678"
        );
        assert_eq!(
            MobileFormat::National.render("+4915112345678"),
            "4915112345678"
        );
    }
}
