//! The company's data sources (SPEC §7): the sources file named by `[sources]`, read and
//! checked when the service starts, and `rightsdesk sources check`.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rightsdesk_connectors::{CheckReport, Sources};
use rightsdesk_domain::Permission;
use rightsdesk_store::source_checks;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::auth::Officer;
use crate::officers::require;
use crate::{Error, Services};

/// `[sources]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SourcesSettings {
    /// The sources file (docs/sources.md). Without one, no system is searched: requests
    /// are answered by officers alone.
    pub file: Option<PathBuf>,
}

impl SourcesSettings {
    pub fn validate(&self, problems: &mut Vec<String>) {
        if let Err(e) = self.load() {
            problems.extend(e.into_iter().map(|p| format!("sources.file: {p}")));
        }
    }

    /// Reads and checks the sources file (none: no sources, and the bundled category
    /// catalogue).
    pub fn load(&self) -> Result<Sources, Vec<String>> {
        match &self.file {
            None => Ok(Sources {
                catalogue: rightsdesk_domain::categories::Catalogue::bundled(),
                purposes: rightsdesk_domain::purposes::Purposes::bundled(),
                ..Sources::default()
            }),
            Some(path) => Sources::load(path).map_err(|e| e.0),
        }
    }
}

/// A data source as administration sees it: what it holds and how its last check went.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SourceView {
    pub name: String,
    pub title_zh: String,
    pub title_en: String,
    /// `sql`, `http` or `manual`.
    pub connector: String,
    /// Who answers for it (tasks for a manual source go there).
    pub owner: String,
    pub categories: Vec<String>,
    pub purposes: Vec<String>,
    pub correctable: Vec<String>,
    /// None until it is first checked.
    pub last_check: Option<SourceCheck>,
}

/// One check of a source: reached, its tables and columns there, its service answering.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SourceCheck {
    pub ok: bool,
    /// `[{name, ok, detail}]`: what was checked and what was found.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub items: Value,
    /// The officer who ran it.
    pub checked_by: Uuid,
    pub checked_at: DateTime<Utc>,
}

impl From<source_checks::Model> for SourceCheck {
    fn from(c: source_checks::Model) -> Self {
        Self {
            ok: c.ok,
            items: c.items,
            checked_by: c.checked_by,
            checked_at: c.checked_at,
        }
    }
}

impl Services {
    /// The sources, as read at start.
    pub fn sources(&self) -> &Arc<Sources> {
        &self.inner.sources
    }

    /// Every source of the sources file, with its last check (`admin`).
    pub async fn list_sources(&self, actor: &Officer) -> Result<Vec<SourceView>, Error> {
        require(actor, Permission::ManageSources)?;
        let conn = self.db().conn();
        let mut out = Vec::new();
        for s in &self.sources().sources {
            out.push(SourceView {
                name: s.name.clone(),
                title_zh: s.title_zh.clone(),
                title_en: s.title_en.clone(),
                connector: s.connector.kind().to_owned(),
                owner: s.owner.clone(),
                categories: s.categories.clone(),
                purposes: s.purposes.clone(),
                correctable: s.correctable.clone(),
                last_check: source_checks::latest(conn, &s.name).await?.map(Into::into),
            });
        }
        Ok(out)
    }

    /// Checks every source now, records each check, and returns the sources with them
    /// (`admin`).
    pub async fn check_sources(&self, actor: &Officer) -> Result<Vec<SourceView>, Error> {
        require(actor, Permission::ManageSources)?;
        let reports = check_sources(self.sources()).await;
        self.record_checks(actor.id, &reports).await?;
        tracing::info!(
            officer_id = %actor.id,
            sources = reports.len(),
            failed = reports.iter().filter(|r| !r.ok).count(),
            "sources checked"
        );
        self.list_sources(actor).await
    }

    /// Records `reports` as the sources' last checks, run by `officer`.
    async fn record_checks(&self, officer: Uuid, reports: &[CheckReport]) -> Result<(), Error> {
        let now = self.now();
        let rows = reports
            .iter()
            .map(|r| source_checks::Model {
                id: Uuid::now_v7(),
                source: r.source.clone(),
                ok: r.ok,
                items: serde_json::to_value(&r.items).unwrap_or(Value::Null),
                checked_by: officer,
                checked_at: now,
            })
            .collect();
        source_checks::insert_many(self.db().conn(), rows).await?;
        Ok(())
    }
}

/// Connects to every source at once and reports what each can see.
pub async fn check_sources(sources: &Sources) -> Vec<CheckReport> {
    futures_util::future::join_all(sources.sources.iter().map(|s| s.connector.check(&s.name))).await
}
