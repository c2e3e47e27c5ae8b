//! The company's data sources (SPEC §7): the sources file named by `[sources]`, read and
//! checked when the service starts, and `rightsdesk sources check`.

use std::path::PathBuf;
use std::sync::Arc;

use rightsdesk_connectors::{CheckReport, Sources};
use serde::{Deserialize, Serialize};

use crate::Services;

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

impl Services {
    /// The sources, as read at start.
    pub fn sources(&self) -> &Arc<Sources> {
        &self.inner.sources
    }
}

/// Connects to every source at once and reports what each can see.
pub async fn check_sources(sources: &Sources) -> Vec<CheckReport> {
    futures_util::future::join_all(sources.sources.iter().map(|s| s.connector.check(&s.name))).await
}
