//! `rightsdesk demo`: a demo source, so that a new user sees the whole flow in minutes.
//!
//! It writes, into one folder:
//! - `sources.db`: a SQLite database shaped like the company's systems (the website and
//!   its user centre, the CRM and support desk, events and training, the partner portal,
//!   the marketing platform, the technical forum), with tables in every category of the
//!   privacy policy's §一 (`crates/domain/data/categories.toml`), filled with generated
//!   people. Child tables (survey answers, ticket messages, certificates, …) hang off a
//!   parent by key, so the `sql` connector's `parent` links are used. Mobile numbers are
//!   stored in national form (`13812345678`), emails in lower case, and every identity
//!   and parent column is indexed;
//! - `sources.toml`: the sources file declaring those systems (six `sql` sources on
//!   `sources.db`, read-only, and one `manual` source, the paper archive);
//! - `rightsdesk.toml`: a configuration naming that sources file, with the service's own
//!   database and mail folder inside the demo folder, apart from any working data.
//!
//! People are generated from a seed, so a seed always gives the same data (with this
//! build's `rand`). Two people are always there: [`WELL_KNOWN`] (李雷), who has data in
//! every category, and [`NO_DATA`] (韩梅梅), who has none anywhere. Everything is
//! synthetic: addresses are under `example.com`, `example.net` and `example.org`.

mod generate;
mod schema;
mod words;

use std::fmt::Write as _;
use std::path::PathBuf;

pub use generate::{Dataset, Val, generate};
use schema::{TABLES, write_database};

/// The seed used unless `--seed` says otherwise (the policy's effective date).
pub const DEFAULT_SEED: u64 = 20_260_607;
/// The most people `--people` accepts: a demo, not a load test.
pub const MAX_PEOPLE: u32 = 10_000;

/// The files `rightsdesk demo` writes, and that `--force` replaces.
pub const FILES: [&str; 3] = ["sources.db", "sources.toml", "rightsdesk.toml"];

/// A documented demo person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoPerson {
    pub name: &'static str,
    pub email: &'static str,
    /// As the sources store it (national form).
    pub mobile: &'static str,
    /// Their account id on the website (`users.id`), if they have one.
    pub account_id: Option<&'static str>,
}

/// The demo person with data in every category of every source.
pub const WELL_KNOWN: DemoPerson = DemoPerson {
    name: "李雷",
    email: "li.lei@example.com",
    mobile: "13800138000",
    account_id: Some("100001"),
};

/// The demo person with no data anywhere: a search finds nothing.
pub const NO_DATA: DemoPerson = DemoPerson {
    name: "韩梅梅",
    email: "han.meimei@example.com",
    mobile: "13900139000",
    account_id: None,
};

/// What to make.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub dir: PathBuf,
    pub people: u32,
    pub seed: u64,
    pub force: bool,
}

/// Why `rightsdesk demo` made nothing.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The command was asked for something it will not do (exit 2).
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// What `rightsdesk demo` made.
#[derive(Debug, Clone)]
pub struct DemoReport {
    /// The demo folder, absolute.
    pub dir: PathBuf,
    pub people: u32,
    pub seed: u64,
    pub tables: usize,
    pub rows: usize,
    pub sql_sources: usize,
    pub manual_sources: usize,
}

impl DemoReport {
    pub fn config_file(&self) -> PathBuf {
        self.dir.join("rightsdesk.toml")
    }
}

/// Writes the demo into `options.dir` (see the module documentation). Nothing is
/// replaced without `force`. Each file is written in full under a temporary name, and
/// the three are renamed into place once all are written.
pub async fn run(options: &DemoOptions) -> Result<DemoReport, DemoError> {
    if options.people > MAX_PEOPLE {
        return Err(DemoError::Usage(format!(
            "--people must be at most {MAX_PEOPLE}"
        )));
    }
    if options.dir.exists() && !options.dir.is_dir() {
        return Err(DemoError::Usage(format!(
            "{} exists and is not a directory",
            options.dir.display()
        )));
    }
    if options.dir.is_dir() && !options.force {
        let present: Vec<&str> = FILES
            .iter()
            .copied()
            .filter(|f| options.dir.join(f).exists())
            .collect();
        if !present.is_empty() {
            return Err(DemoError::Usage(format!(
                "{} already holds {}: give --force to replace {}, or choose another --dir",
                options.dir.display(),
                present.join(", "),
                if present.len() == 1 { "it" } else { "them" }
            )));
        }
    }
    std::fs::create_dir_all(&options.dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", options.dir.display()))?;
    let dir = options
        .dir
        .canonicalize()
        .map_err(|e| anyhow::anyhow!("{}: {e}", options.dir.display()))?;
    let Some(dir_text) = dir.to_str() else {
        return Err(DemoError::Usage(format!(
            "{} is not valid UTF-8: the configuration files name it",
            dir.display()
        )));
    };

    let data = generate(options.seed, options.people);
    let partial = |name: &str| dir.join(format!(".{name}.partial"));
    let result = async {
        let db = partial("sources.db");
        write_database(&db, &data).await?;
        // No `mode`: the connector opens it read-only for look-ups, read-write to erase.
        let sources = sources_toml(&sqlite_url(&format!("{dir_text}/sources.db"), ""));
        std::fs::write(partial("sources.toml"), sources)?;
        std::fs::write(partial("rightsdesk.toml"), config_toml(dir_text))?;
        // A former demo's SQLite side files would belong to the old database.
        for side in ["-journal", "-wal", "-shm"] {
            let _ = std::fs::remove_file(dir.join(format!("sources.db{side}")));
        }
        for name in FILES {
            std::fs::rename(partial(name), dir.join(name))?;
        }
        anyhow::Ok(())
    }
    .await;
    if let Err(e) = result {
        for name in FILES {
            let _ = std::fs::remove_file(partial(name));
        }
        return Err(DemoError::Failed(e));
    }
    let sources = SOURCES_TOML.matches("\n[source.sql]").count();
    Ok(DemoReport {
        dir,
        people: options.people,
        seed: options.seed,
        tables: TABLES.len(),
        rows: data.rows(),
        sql_sources: sources,
        manual_sources: SOURCES_TOML.matches("\n[source.manual]").count(),
    })
}

/// What `rightsdesk demo` prints: what it made and what to do next.
pub fn instructions(report: &DemoReport) -> String {
    let dir = report.dir.display().to_string();
    let config = sh(&report.config_file().display().to_string());
    let mut out = String::new();
    let p = WELL_KNOWN;
    let n = NO_DATA;
    let _ = writeln!(out, "rightsdesk: wrote a demo into {dir}");
    let _ = writeln!(
        out,
        "  sources.db       the demo company's systems (SQLite): {} tables in all 15 data categories, \
         {} generated people and 2 documented ones, {} rows (seed {})",
        report.tables, report.people, report.rows, report.seed
    );
    let _ = writeln!(
        out,
        "  sources.toml     the sources file: {} sql sources reading sources.db, and {} manual source (paper_archive)",
        report.sql_sources, report.manual_sources
    );
    let _ = writeln!(
        out,
        "  rightsdesk.toml  a configuration for the demo: the service's database (rightsdesk.db), its mail (outbox/) and its bundles (bundles/) stay in this folder"
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "Demo people (synthetic):");
    let _ = writeln!(
        out,
        "  {}  {}  mobile {}  account {}: data in every category",
        p.name,
        p.email,
        p.mobile,
        p.account_id.unwrap_or("-")
    );
    let _ = writeln!(
        out,
        "  {}  {}  mobile {}: no data anywhere",
        n.name, n.email, n.mobile
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "Next:");
    let _ = writeln!(
        out,
        "  1. Check the sources:  rightsdesk sources check --config {config}"
    );
    let _ = writeln!(
        out,
        "  2. Start the service:  rightsdesk serve --config {config}"
    );
    let _ = writeln!(
        out,
        "     (the first start prints the administrator's one-time password)"
    );
    let _ = writeln!(
        out,
        "  3. In another terminal, file an access request for {}:",
        p.name
    );
    let _ = writeln!(
        out,
        "     curl -s -X POST http://127.0.0.1:8080/api/v1/requests -H 'Content-Type: application/json' \\\n       \
         -d '{{\"kind\": \"access\", \"requester\": {{\"name\": \"{}\", \"email\": \"{}\", \"phone\": \"{}\", \"language\": \"zh-CN\"}}}}'",
        p.name, p.email, p.mobile
    );
    let _ = writeln!(
        out,
        "  4. The acknowledgement and the verification code land as .eml files in {}",
        sh(&format!("{dir}/outbox/"))
    );
    let _ = writeln!(
        out,
        "     Verify with the code, then as an officer start the request and search the sources:\n     \
         README.md, \"Try it with demo data\"."
    );
    out
}

/// `path` quoted for a POSIX shell when it needs to be.
fn sh(path: &str) -> String {
    if !path.is_empty()
        && path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:@,".contains(c))
    {
        path.to_owned()
    } else {
        format!("'{}'", path.replace('\'', r"'\''"))
    }
}

/// A SQLite URL for the absolute `path` (`?`, `#`, `%` and spaces escaped, as sqlx
/// reads them).
fn sqlite_url(path: &str, mode: &str) -> String {
    let mut escaped = String::with_capacity(path.len());
    for c in path.chars() {
        match c {
            '%' => escaped.push_str("%25"),
            '?' => escaped.push_str("%3F"),
            '#' => escaped.push_str("%23"),
            ' ' => escaped.push_str("%20"),
            c => escaped.push(c),
        }
    }
    let mut url = format!("sqlite://{escaped}");
    if !mode.is_empty() {
        let _ = write!(url, "?mode={mode}");
    }
    url
}

/// `s` as a TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The demo's `rightsdesk.toml`.
fn config_toml(dir: &str) -> String {
    format!(
        "# A configuration for trying rightsdesk on demo data, written by `rightsdesk demo`.\n\
         # Everything not set here is at its default (docs/configuration.md). The service's\n\
         # own database and its mail stay in this folder, apart from any working data.\n\
         \n\
         [database]\n\
         url = {}\n\
         \n\
         [mail]\n\
         # Mail is not sent: each message is written here as an .eml file.\n\
         folder = {}\n\
         \n\
         [bundles]\n\
         # The data bundles the service writes (encrypted), and their download links.\n\
         dir = {}\n\
         \n\
         [sources]\n\
         # The demo company's systems (sources.db), as docs/sources.md describes.\n\
         file = {}\n",
        toml_string(&sqlite_url(&format!("{dir}/rightsdesk.db"), "")),
        toml_string(&format!("{dir}/outbox")),
        toml_string(&format!("{dir}/bundles")),
        toml_string(&format!("{dir}/sources.toml")),
    )
}

/// The demo's sources file, reading the SQLite database at `url`.
pub fn sources_toml(url: &str) -> String {
    SOURCES_TOML.replace("\"@URL@\"", &toml_string(url))
}

/// The sources file, with `"@URL@"` where each source's URL goes.
const SOURCES_TOML: &str = include_str!("demo/sources.toml");

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use rightsdesk_connectors::Sources;
    use rightsdesk_domain::categories::Catalogue;

    use super::*;

    #[test]
    fn a_seed_always_gives_the_same_data() {
        let a = generate(7, 60);
        assert_eq!(a, generate(7, 60));
        assert_ne!(a, generate(8, 60), "another seed, other people");
        assert!(a.rows() > 60 * 3, "{} rows", a.rows());
        // The well-known person is first, with the documented identifiers.
        assert_eq!(
            a.column("users", "email").first(),
            Some(&&Val::from(WELL_KNOWN.email))
        );
        assert_eq!(
            a.column("users", "id").first(),
            Some(&&Val::Int(100_001)),
            "{:?}",
            WELL_KNOWN.account_id
        );
    }

    #[test]
    fn every_row_has_every_column_of_its_table() {
        let data = generate(DEFAULT_SEED, 200);
        for t in TABLES {
            let rows = data.tables.get(t.name).map(Vec::len).unwrap_or_default();
            assert!(rows > 0, "{} has no rows", t.name);
            for row in data.tables.get(t.name).into_iter().flatten() {
                assert_eq!(row.len(), t.columns.len(), "{}", t.name);
            }
        }
    }

    #[test]
    fn identifiers_are_as_the_sources_store_them_and_never_the_documented_peoples() {
        let data = generate(DEFAULT_SEED, 300);
        let mut emails = 0;
        let mut mobiles = 0;
        for t in TABLES {
            for v in data.column(t.name, "email") {
                if let Val::Text(e) = v {
                    emails += 1;
                    assert_eq!(e, &e.to_lowercase());
                    assert_ne!(e, NO_DATA.email);
                }
            }
            for v in data.column(t.name, "mobile") {
                if let Val::Text(m) = v {
                    mobiles += 1;
                    assert_eq!(m.len(), 11, "{m}");
                    assert!(m.starts_with('1') && m.chars().all(|c| c.is_ascii_digit()));
                    assert_ne!(m, NO_DATA.mobile);
                }
            }
        }
        assert!(emails > 300 && mobiles > 300);
        // Only the well-known person's own rows carry their identifiers.
        let users = data.column("users", "email");
        assert_eq!(
            users
                .iter()
                .filter(|v| ***v == Val::from(WELL_KNOWN.email))
                .count(),
            1
        );
    }

    #[test]
    fn the_sources_file_covers_every_category_and_every_table() {
        let text = sources_toml("sqlite:///tmp/demo/sources.db");
        let sources = Sources::from_toml(&text, |_| None).expect("the demo sources file is valid");
        let held: BTreeSet<&str> = sources
            .sources
            .iter()
            .flat_map(|s| s.categories.iter().map(String::as_str))
            .collect();
        let bundled = Catalogue::bundled();
        let catalogue: BTreeSet<&str> = bundled.iter().map(|c| c.key.as_str()).collect();
        assert_eq!(held, catalogue);
        assert_eq!(catalogue.len(), 15);
        for t in TABLES {
            assert!(
                text.contains(&format!("name = \"{}\"", t.name)),
                "{} is not in the sources file",
                t.name
            );
        }
        assert_eq!(
            sources
                .sources
                .iter()
                .filter(|s| s.connector.kind() == "manual")
                .count(),
            1
        );
    }

    #[test]
    fn paths_are_quoted_for_urls_and_shells() {
        assert_eq!(
            sqlite_url("/tmp/a b/x?#%.db", "ro"),
            "sqlite:///tmp/a%20b/x%3F%23%25.db?mode=ro"
        );
        assert_eq!(toml_string("C:\\d \"x\"\n"), "\"C:\\\\d \\\"x\\\"\\u000A\"");
        assert_eq!(sh("/tmp/demo/rightsdesk.toml"), "/tmp/demo/rightsdesk.toml");
        assert_eq!(sh("/tmp/it's here"), "'/tmp/it'\\''s here'");
    }

    #[test]
    fn the_configuration_names_the_demo_files_wherever_the_folder_is() {
        let dir = std::env::temp_dir().join(format!(
            "rightsdesk demo \"quoted\" #?% {}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("a directory");
        let d = dir.to_str().expect("a UTF-8 path");
        let url = sqlite_url(&format!("{d}/sources.db"), "");
        std::fs::write(dir.join("sources.toml"), sources_toml(&url)).expect("sources.toml");
        std::fs::write(dir.join("rightsdesk.toml"), config_toml(d)).expect("rightsdesk.toml");
        let config = crate::Config::load(Some(&dir.join("rightsdesk.toml")));
        std::fs::remove_dir_all(&dir).ok();
        let config = config.expect("the demo configuration loads");
        assert_eq!(config.sources.file, Some(dir.join("sources.toml")));
        assert_eq!(config.mail.folder, dir.join("outbox"));
        assert_eq!(config.bundles.dir, dir.join("bundles"));
        assert_eq!(
            config.database.url,
            sqlite_url(&format!("{d}/rightsdesk.db"), "")
        );
    }
}
