//! The `rightsdesk` binary as operators run it: worker processes sharing a database
//! (one killed with SIGKILL), the IMAP poller killed mid-mailbox, and the commands that
//! need no server. One test binary; one module per area. Runs on the backend of
//! `RIGHTSDESK_TEST_BACKEND` (`scripts/test` runs it on SQLite and on PostgreSQL).

mod commands;
mod mailbox_poller;
mod worker_processes;
