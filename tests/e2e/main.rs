//! End-to-end tests: the real service over HTTP, on SQLite or PostgreSQL
//! (`RIGHTSDESK_TEST_BACKEND`). One binary; one module per area.

mod account_login;
mod audit;
mod auth;
mod bundles;
mod collections;
mod complaints;
mod consents;
mod console;
mod console_pages;
mod corrections;
mod deadlines;
mod erasures;
mod evidence;
mod explanation;
mod fees;
mod holidays;
mod idempotency;
mod imap_client;
mod intake;
mod jobs;
mod lifecycle;
mod mailboxes;
mod next_of_kin;
mod notifications;
mod queue;
mod references;
mod refusals;
mod reminders;
mod repeats;
mod restart;
mod smoke;
mod sms;
mod validation;
mod verification;
mod worker;
