//! Proving the event log unbroken (SPEC §11): every request's chain is recomputed and
//! compared with the head stored on the request.

use rightsdesk_store::{events, requests};
use serde::Serialize;
use uuid::Uuid;

use crate::{Error, Services};

/// A chain that does not verify.
#[derive(Debug, Clone, Serialize)]
pub struct ChainFailure {
    pub request_id: Uuid,
    pub reference: String,
    pub problem: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct AuditReport {
    pub requests: u64,
    pub events: u64,
    pub failures: Vec<ChainFailure>,
}

impl AuditReport {
    pub fn ok(&self) -> bool {
        self.failures.is_empty()
    }
}

impl Services {
    /// Verifies every request's chain, in batches.
    pub async fn verify_audit_log(&self) -> Result<AuditReport, Error> {
        let conn = self.db().conn();
        let mut report = AuditReport::default();
        let mut after = None;
        loop {
            let batch = requests::ids_after(conn, after, 500).await?;
            let Some(last) = batch.last() else { break };
            after = Some(last.id);
            for row in batch {
                let chain = events::for_request(conn, row.id).await?;
                report.requests += 1;
                report.events += chain.len() as u64;
                let head = events::Head {
                    seq: row.event_seq,
                    hash: row.head_hash.clone(),
                };
                if let Err(e) = events::verify_chain(row.id, &chain, &head) {
                    report.failures.push(ChainFailure {
                        request_id: row.id,
                        reference: row.reference,
                        problem: e.to_string(),
                    });
                }
            }
        }
        Ok(report)
    }
}
