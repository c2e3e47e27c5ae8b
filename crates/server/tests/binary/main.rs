//! The `rightsdesk` binary as operators run it: worker processes sharing a database
//! (one killed with SIGKILL), the IMAP poller killed mid-mailbox, and the commands that
//! need no server (`rightsdesk demo` among them). One test binary; one module per area.
//! Runs on the backend of `RIGHTSDESK_TEST_BACKEND` (`scripts/test` runs it on SQLite
//! and on PostgreSQL).

mod commands;
mod demo;
mod deploy;
mod mailbox_poller;
mod operations;
mod pipl_map;
mod scale_out;
mod worker_processes;

use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use tokio::process::Child;

/// The `n` of a `SELECT COUNT(*) AS n …` query.
pub async fn count(conn: &DatabaseConnection, sql: &str) -> i64 {
    let row = conn
        .query_one_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await
        .expect("a count query")
        .expect("a row");
    row.try_get("", "n").expect("a count")
}

/// Sends SIGTERM and waits for a clean exit.
pub async fn stop(mut worker: Child) {
    let pid = worker.id().expect("a running worker");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill -TERM");
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(30), worker.wait())
        .await
        .expect("the worker stops on SIGTERM")
        .expect("its exit status");
    assert!(exit.success(), "{exit:?}");
}
