//! The `rightsdesk` binary's library: configuration, telemetry and start-up, shared by
//! `main` and by the end-to-end tests (which build the same `Application` on port 0).

pub mod config;
pub mod demo;
pub mod telemetry;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::HttpServer;
use actix_web::dev::{Server, ServerHandle};
use rightsdesk_api::ApiState;
use rightsdesk_core::{Clock, Services, SystemClock};
use rightsdesk_store::Db;

pub use config::Config;

/// A running service: its listener, server and use-cases.
pub struct Application {
    port: u16,
    server: Server,
    services: Services,
    /// Whether `run_until_stopped` also runs the background work (`worker.in_process`).
    background: bool,
}

impl Application {
    /// Connects to the database, migrates it, creates the first administrator when
    /// needed, and binds the listener (port 0 picks a free port).
    pub async fn build(config: &Config) -> anyhow::Result<Self> {
        Self::build_with_clock(config, Arc::new(SystemClock)).await
    }

    pub async fn build_with_clock(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let db = Db::connect(&config.database).await?;
        db.migrate().await?;
        let services = Services::new(db, clock, config.core()).await?;
        if let Some(admin) = services.bootstrap_admin().await? {
            tracing::info!(username = %admin.username, "first administrator created");
            if let Some(password) = admin.generated_password {
                // Printed once, on standard output, never logged.
                println!(
                    "rightsdesk: created the first administrator {:?} with the one-time password {}\n\
                     rightsdesk: log in and create officer accounts; this password is not shown again.",
                    admin.username, password
                );
            }
        }
        let listener = TcpListener::bind(&config.http.bind)?;
        let port = listener.local_addr()?.port();
        let state = ApiState {
            services: services.clone(),
            config: config.http.clone(),
            metrics: telemetry::metrics_handle(),
            openapi: rightsdesk_api::openapi(),
        };
        let mut server = HttpServer::new(move || rightsdesk_api::app(state.clone()))
            .shutdown_timeout(config.http.shutdown_timeout_secs)
            .client_request_timeout(Duration::from_secs(30));
        if config.http.workers > 0 {
            server = server.workers(config.http.workers);
        }
        let server = server.listen(listener)?.run();
        tracing::info!(port, "listening");
        Ok(Self {
            port,
            server,
            services,
            background: config.worker.in_process,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn services(&self) -> &Services {
        &self.services
    }

    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGINT/SIGTERM (or `handle().stop()`), finishing in-flight requests,
    /// with the background work (the job runner and the outbox sender) beside it unless
    /// `worker.in_process` is off. The background work stops after the server.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let stop = tokio_util::sync::CancellationToken::new();
        let mut tasks = if self.background {
            background(&self.services, &stop)
        } else {
            Vec::new()
        };
        tasks.push(tokio::spawn(
            self.services.clone().run_key_refresh(stop.clone()),
        ));
        let served = self.server.await;
        stop.cancel();
        for task in tasks {
            let _ = task.await;
        }
        served
    }
}

/// The background work, each loop on its own task until `stop`: the job runner (the
/// periodic expiry, purges, deadline sweep and calendar check, and one-off jobs) and the
/// outbox sender. Both claim under leases, so they are safe beside other instances.
fn background(
    services: &Services,
    stop: &tokio_util::sync::CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    vec![
        tokio::spawn(services.clone().run_jobs(stop.clone())),
        tokio::spawn(services.clone().run_outbox(stop.clone())),
    ]
}

/// `rightsdesk worker`: the background work without the HTTP API, so that API instances
/// (with `worker.in_process = false`) and workers scale apart on one PostgreSQL.
pub struct Worker {
    services: Services,
    stop: tokio_util::sync::CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// `/healthz`, `/readyz` and `/metrics` on `worker.bind`, when set.
    ops: Option<ServerHandle>,
}

impl Worker {
    pub async fn start(config: &Config) -> anyhow::Result<Self> {
        Self::start_with_clock(config, Arc::new(SystemClock)).await
    }

    /// Starts the background loops on a database whose schema is up to date (a worker
    /// never migrates: `serve` or `migrate` does).
    pub async fn start_with_clock(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let services = one_shot_with_clock(config, clock).await?;
        let stop = tokio_util::sync::CancellationToken::new();
        let mut tasks = background(&services, &stop);
        tasks.push(tokio::spawn(services.clone().run_key_refresh(stop.clone())));
        let ops = match &config.worker.bind {
            Some(bind) => {
                let listener = TcpListener::bind(bind)?;
                let port = listener.local_addr()?.port();
                let (ops_services, metrics) = (services.clone(), telemetry::metrics_handle());
                let server = HttpServer::new(move || {
                    rightsdesk_api::ops_app(ops_services.clone(), metrics.clone())
                })
                .workers(1)
                .disable_signals()
                .shutdown_timeout(5)
                .listen(listener)?
                .run();
                let handle = server.handle();
                tasks.push(tokio::spawn(async move {
                    if let Err(e) = server.await {
                        tracing::error!(error = %e, "the worker's health listener failed");
                    }
                }));
                tracing::info!(port, "worker health and metrics listening");
                Some(handle)
            }
            None => None,
        };
        tracing::info!("worker started");
        Ok(Self {
            services,
            stop,
            tasks,
            ops,
        })
    }

    pub fn services(&self) -> &Services {
        &self.services
    }

    /// Stops: the outbox sender finishes its pass, running jobs get
    /// `worker.shutdown_grace_secs` to finish and are released after it.
    pub async fn stop(self) {
        self.stop.cancel();
        if let Some(handle) = &self.ops {
            handle.stop(true).await;
        }
        for task in self.tasks {
            let _ = task.await;
        }
        tracing::info!("worker stopped");
    }

    /// Runs until SIGINT or SIGTERM, then stops.
    pub async fn run_until_signal(self) -> anyhow::Result<()> {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        self.stop().await;
        Ok(())
    }
}

/// Connects and migrates (for `rightsdesk migrate`).
pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    let db = Db::connect(&config.database).await?;
    db.migrate().await?;
    db.close().await?;
    Ok(())
}

/// Services on an up-to-date schema, for a command that runs once.
async fn one_shot(config: &Config) -> anyhow::Result<Services> {
    one_shot_with_clock(config, Arc::new(SystemClock)).await
}

async fn one_shot_with_clock(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<Services> {
    let db = Db::connect(&config.database).await?;
    let pending = db.pending_migrations().await?;
    if pending > 0 {
        anyhow::bail!(
            "the database schema is not up to date ({pending} migrations pending): run `rightsdesk migrate` first"
        );
    }
    Ok(Services::new(db, clock, config.core()).await?)
}

/// `rightsdesk holidays import FILE`.
pub async fn holidays_import(
    config: &Config,
    file: &std::path::Path,
) -> anyhow::Result<rightsdesk_core::holidays::HolidayImport> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    let source = file
        .file_name()
        .map_or_else(|| "import".to_owned(), |n| n.to_string_lossy().into_owned());
    let services = one_shot(config).await?;
    services.import_holidays(&text, &source).await.map_err(|e| {
        match e.details.as_ref().and_then(|d| d.get("problems")) {
            Some(problems) => anyhow::anyhow!("{}: {problems}", e.message),
            None => anyhow::anyhow!(e),
        }
    })
}

/// `rightsdesk reminders sweep`: one deadline sweep now, and how long it took.
pub async fn reminders_sweep(
    config: &Config,
) -> anyhow::Result<(rightsdesk_core::reminders::SweepReport, Duration)> {
    let services = one_shot(config).await?;
    let started = std::time::Instant::now();
    let report = services.sweep_deadlines().await?;
    Ok((report, started.elapsed()))
}

/// `rightsdesk jobs list`.
pub async fn jobs_list(config: &Config) -> anyhow::Result<Vec<rightsdesk_core::jobs::JobView>> {
    Ok(one_shot(config).await?.list_jobs().await?)
}

/// `rightsdesk holidays list`.
pub async fn holidays_list(
    config: &Config,
) -> anyhow::Result<Vec<rightsdesk_core::holidays::CalendarYear>> {
    Ok(one_shot(config).await?.holiday_years().await?)
}

/// `rightsdesk intake poll`: polls every configured mailbox once (a mailbox waiting
/// after a failure is polled too: the operator asked).
pub async fn intake_poll(
    config: &Config,
) -> anyhow::Result<rightsdesk_core::intake::mailboxes::PollReport> {
    Ok(one_shot(config).await?.poll_mailboxes_now().await?)
}

/// `rightsdesk intake status`.
pub async fn intake_status(
    config: &Config,
) -> anyhow::Result<Vec<rightsdesk_core::intake::mailboxes::MailboxState>> {
    Ok(one_shot(config).await?.mailbox_states().await?)
}

/// `rightsdesk sources check`: needs no database, only the sources file.
pub async fn sources_check(
    config: &Config,
) -> anyhow::Result<Vec<rightsdesk_connectors::CheckReport>> {
    let sources = config
        .sources
        .load()
        .map_err(|problems| anyhow::anyhow!("sources.file: {}", problems.join("; ")))?;
    Ok(rightsdesk_core::sources::check_sources(&sources).await)
}

/// Verifies every request's event chain (for `rightsdesk audit verify`).
/// `rightsdesk tombstones export`: the erasures the sources' backups still hold.
pub async fn tombstones(
    config: &Config,
    source: Option<&str>,
) -> anyhow::Result<Vec<rightsdesk_core::erasures::Tombstone>> {
    Ok(one_shot(config).await?.tombstones(source).await?)
}

/// `rightsdesk tombstones apply SOURCE`: after a restore, applies those erasures again.
pub async fn reapply_tombstones(
    config: &Config,
    source: &str,
) -> anyhow::Result<rightsdesk_core::erasures::Reapplied> {
    Ok(one_shot(config).await?.reapply_tombstones(source).await?)
}

/// `rightsdesk certificate public-key`: the key deletion certificates are signed with.
pub async fn certificate_public_key(
    config: &Config,
) -> anyhow::Result<rightsdesk_core::certificates::PublicKey> {
    Ok(one_shot(config).await?.certificate_public_key())
}

/// `rightsdesk keys list`.
pub async fn keys_list(config: &Config) -> anyhow::Result<Vec<rightsdesk_core::keys::KeyView>> {
    Ok(one_shot(config).await?.list_keys().await?)
}

/// `rightsdesk keys rotate`.
pub async fn keys_rotate(
    config: &Config,
    names: &[rightsdesk_core::keys::KeyName],
    activate_in: Duration,
) -> anyhow::Result<Vec<rightsdesk_core::keys::Rotation>> {
    Ok(one_shot(config)
        .await?
        .rotate_keys(names, activate_in)
        .await?)
}

/// `rightsdesk export-evidence REFERENCE`.
pub async fn export_evidence(
    config: &Config,
    reference: &str,
    reason: Option<&str>,
) -> anyhow::Result<rightsdesk_core::evidence_export::EvidenceExport> {
    Ok(one_shot(config)
        .await?
        .export_evidence(reference, reason)
        .await?)
}

pub async fn audit_verify(config: &Config) -> anyhow::Result<rightsdesk_core::audit::AuditReport> {
    // A check changes nothing, not even the schema.
    Ok(one_shot(config).await?.verify_audit_log().await?)
}
