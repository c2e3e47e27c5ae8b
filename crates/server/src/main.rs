//! `rightsdesk`: the privacy-rights request service.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rightsdesk::{Application, Config, telemetry};

#[derive(Parser)]
#[command(
    name = "rightsdesk",
    version,
    about = "Privacy-rights requests under PIPL: receive, verify, work and prove them"
)]
struct Cli {
    /// Configuration file (TOML). Default: ./rightsdesk.toml when it exists.
    #[arg(long, short, global = true, env = "RIGHTSDESK_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API (migrates the database first).
    Serve,
    /// Run the background work alone (the job runner and the outbox sender), beside API
    /// instances started with `worker.in_process = false`.
    Worker,
    /// Bring the database schema up to date and exit.
    Migrate,
    /// Print the OpenAPI 3.1 document of the HTTP API.
    Openapi,
    /// The configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// The audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Deadline reminders, overdue notices and digests.
    Reminders {
        #[command(subcommand)]
        command: RemindersCommand,
    },
    /// The worker's job table.
    Jobs {
        #[command(subcommand)]
        command: JobsCommand,
    },
    /// The working-day calendar's holidays and make-up working days.
    Holidays {
        #[command(subcommand)]
        command: HolidaysCommand,
    },
    /// Email intake's IMAP mailboxes (`[intake.mailboxes]`).
    Intake {
        #[command(subcommand)]
        command: IntakeCommand,
    },
    /// The company's data sources (`sources.file`).
    Sources {
        #[command(subcommand)]
        command: SourcesCommand,
    },
    /// Data bundles given to requesters.
    Bundle {
        #[command(subcommand)]
        command: BundleCommand,
    },
    /// Erasures that a restore from backup must apply again.
    Tombstones {
        #[command(subcommand)]
        command: TombstonesCommand,
    },
    /// The whole history of one request as a signed archive for a regulator or a court
    /// (`export-evidence PR-2026-000123 --out FILE`), or check one
    /// (`export-evidence verify FILE`).
    #[command(args_conflicts_with_subcommands = true)]
    ExportEvidence {
        /// The request's reference.
        reference: Option<String>,
        /// Where to write the archive. Default: REFERENCE.evidence.zip in the working
        /// directory. An existing file is never overwritten.
        #[arg(long, short)]
        out: Option<PathBuf>,
        /// Why it is exported (recorded on the request's event log with the export).
        #[arg(long)]
        reason: Option<String>,
        #[command(subcommand)]
        command: Option<ExportEvidenceCommand>,
    },
    /// The signing and encryption keys the service keeps.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Deletion certificates given to requesters.
    Certificate {
        #[command(subcommand)]
        command: CertificateCommand,
    },
    /// Write a demo source into DIR: a SQLite database shaped like the company's systems
    /// (every data category of the privacy policy) filled with generated people, its
    /// sources file, and a configuration to try the whole flow with
    /// (`rightsdesk serve --config DIR/rightsdesk.toml`).
    Demo {
        /// The folder to write into (created when missing).
        #[arg(long, default_value = "./demo")]
        dir: PathBuf,
        /// How many people to generate, besides the two documented demo people.
        #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(0..=i64::from(rightsdesk::demo::MAX_PEOPLE)))]
        people: u32,
        /// The seed of the generated people: a seed always gives the same data.
        #[arg(long, default_value_t = rightsdesk::demo::DEFAULT_SEED)]
        seed: u64,
        /// Replace the demo files already in DIR (sources.db, sources.toml,
        /// rightsdesk.toml); the service's data there (rightsdesk.db, outbox/) is kept.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Check the configuration (defaults, the file, the environment) and print the
    /// effective one as TOML with every secret masked; exits 2, listing every problem,
    /// when it is invalid.
    Check {
        /// Print JSON instead of TOML.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum SourcesCommand {
    /// Connect to every source and report what each can see (tables and columns
    /// readable, the service answering signed); exits 1 when one cannot be used.
    Check,
}

#[derive(Subcommand)]
enum BundleCommand {
    /// Check a bundle against its manifest: every file present, of its size and SHA-256,
    /// nothing added; exits 1 when it does not match. An encrypted bundle's password is
    /// read from the file given with --password-file, or from RIGHTSDESK_BUNDLE_PASSWORD.
    Verify {
        file: PathBuf,
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum TombstonesCommand {
    /// Print, one JSON object per line, every erasure that a source's backups still hold
    /// (its `backup_until` not passed): the reference, the source, when it was erased and
    /// the subject's identifiers. The list names people: keep it like a backup.
    Export {
        /// Only this source.
        #[arg(long)]
        source: Option<String>,
    },
    /// After SOURCE was restored from a backup, erase again everything its backups still
    /// held, as the tombstones list; prints what it did.
    Apply { source: String },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Each key that can be rotated: what it does, where it comes from (database or
    /// configuration) and its versions (id, created, active from, current). Never the key.
    List,
    /// Add a new version of keys kept in the database: officer_token_secret,
    /// download_key, certificate_key, outbox_key, evidence_key (all when none is named).
    /// New data uses the new version once it is active; every older version still
    /// verifies and decrypts what it made. Configured keys are skipped: change them in the
    /// configuration.
    Rotate {
        /// A key to rotate (repeatable). Default: every key the database keeps.
        #[arg(long = "key", value_name = "NAME")]
        keys: Vec<String>,
        /// Seconds until the new versions sign and seal, so that every running instance
        /// has read them first (instances read keys every 30 s).
        #[arg(long, default_value_t = rightsdesk_core::keys::ACTIVATION_DELAY.as_secs(), conflicts_with = "now")]
        activate_in: u64,
        /// Activate at once: only when no other instance runs, or all restart now.
        #[arg(long)]
        now: bool,
    },
}

#[derive(Subcommand)]
enum ExportEvidenceCommand {
    /// Check an evidence export: its signature over every byte, each file against its
    /// manifest, and the request's event chain; exits 1 when anything was changed, or,
    /// with --public-key (base64, from `rightsdesk certificate public-key`), when another
    /// key signed it.
    Verify {
        file: PathBuf,
        #[arg(long)]
        public_key: Option<String>,
    },
}

#[derive(Subcommand)]
enum CertificateCommand {
    /// Check a deletion certificate's signature: exits 1 when it was changed, or, with
    /// --public-key (base64, from `rightsdesk certificate public-key` or
    /// `GET /api/v1/certificates/public-key`), when another key signed it.
    Verify {
        file: PathBuf,
        #[arg(long)]
        public_key: Option<String>,
    },
    /// Print the public key this service signs certificates with.
    PublicKey,
}

#[derive(Subcommand)]
enum IntakeCommand {
    /// Poll every configured mailbox once now (the worker polls every
    /// `worker.every_secs.poll_mailboxes`) and print what was recorded: a quick check
    /// of a new mailbox's settings.
    Poll,
    /// Where the poller stands in each mailbox: UIDVALIDITY, last UID, failures, the
    /// next try and the last error.
    Status,
}

#[derive(Subcommand)]
enum RemindersCommand {
    /// Run one sweep now (the worker runs one every `worker.every_secs.sweep_deadlines`)
    /// and print what it wrote and how long it took.
    Sweep,
}

#[derive(Subcommand)]
enum JobsCommand {
    /// The pending and failed jobs: when each runs next, who holds it, its last error.
    List,
}

#[derive(Subcommand)]
enum HolidaysCommand {
    /// Replace the years in FILE (`date,kind,name` lines; see docs/configuration.md).
    Import { file: PathBuf },
    /// The years the table covers.
    List,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Verify every request's hash chain; exits 1 when one is broken.
    Verify,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(problems) => {
            eprintln!("rightsdesk: invalid configuration:\n{problems}");
            return ExitCode::from(2);
        }
    };
    telemetry::init_logs(&config.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rightsdesk: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve => {
                let app = Application::build(&config).await?;
                app.run_until_stopped().await?;
                tracing::info!("stopped");
                Ok(ExitCode::SUCCESS)
            }
            Command::Worker => {
                rightsdesk::Worker::start(&config)
                    .await?
                    .run_until_signal()
                    .await?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Openapi => {
                println!("{}", rightsdesk_api::openapi().to_pretty_json()?);
                Ok(ExitCode::SUCCESS)
            }
            Command::Config {
                command: ConfigCommand::Check { json },
            } => {
                let masked = config.masked();
                if json {
                    println!("{}", serde_json::to_string_pretty(&masked)?);
                } else {
                    // TOML has no null: an unset key is left out, as in a file.
                    print!(
                        "{}",
                        toml::to_string_pretty(&rightsdesk::config::without_nulls(masked))?
                    );
                }
                eprintln!("rightsdesk: the configuration is valid");
                Ok(ExitCode::SUCCESS)
            }
            Command::Migrate => {
                rightsdesk::migrate(&config).await?;
                println!("rightsdesk: the database is up to date");
                Ok(ExitCode::SUCCESS)
            }
            Command::Reminders {
                command: RemindersCommand::Sweep,
            } => {
                let (report, took) = rightsdesk::reminders_sweep(&config).await?;
                let mut out = serde_json::to_value(&report)?;
                out["elapsed_ms"] = serde_json::json!(took.as_secs_f64() * 1000.0);
                println!("{}", serde_json::to_string_pretty(&out)?);
                Ok(ExitCode::SUCCESS)
            }
            Command::Jobs {
                command: JobsCommand::List,
            } => {
                let jobs = rightsdesk::jobs_list(&config).await?;
                println!("{}", serde_json::to_string_pretty(&jobs)?);
                Ok(ExitCode::SUCCESS)
            }
            Command::Holidays {
                command: HolidaysCommand::Import { file },
            } => {
                let report = rightsdesk::holidays_import(&config, &file).await?;
                println!("{}", serde_json::to_string_pretty(&report)?);
                Ok(ExitCode::SUCCESS)
            }
            Command::Holidays {
                command: HolidaysCommand::List,
            } => {
                let years = rightsdesk::holidays_list(&config).await?;
                println!("{}", serde_json::to_string_pretty(&years)?);
                Ok(ExitCode::SUCCESS)
            }
            Command::Intake {
                command: IntakeCommand::Poll,
            } => {
                let report = rightsdesk::intake_poll(&config).await?;
                println!("{}", serde_json::to_string_pretty(&report)?);
                Ok(if report.failed == 0 {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                })
            }
            Command::Intake {
                command: IntakeCommand::Status,
            } => {
                let states = rightsdesk::intake_status(&config).await?;
                println!("{}", serde_json::to_string_pretty(&states)?);
                Ok(ExitCode::SUCCESS)
            }
            Command::Sources {
                command: SourcesCommand::Check,
            } => {
                let reports = rightsdesk::sources_check(&config).await?;
                println!("{}", serde_json::to_string_pretty(&reports)?);
                Ok(if reports.iter().all(|r| r.ok) {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                })
            }
            Command::Bundle {
                command:
                    BundleCommand::Verify {
                        file,
                        password_file,
                    },
            } => {
                let password = match password_file {
                    Some(path) => Some(
                        std::fs::read_to_string(&path)
                            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
                            .trim()
                            .to_owned(),
                    ),
                    None => std::env::var("RIGHTSDESK_BUNDLE_PASSWORD").ok(),
                };
                let report = rightsdesk_export::verify(&file, password.as_deref())?;
                let problems = report.problems();
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "ok": report.is_ok(),
                        "reference": report.manifest.reference,
                        "created_at": report.manifest.created_at,
                        "encrypted": report.encrypted,
                        "files_checked": report.entries_ok,
                        "problems": problems,
                    }))?
                );
                Ok(if report.is_ok() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                })
            }
            Command::Certificate {
                command: CertificateCommand::Verify { file, public_key },
            } => {
                let bytes =
                    std::fs::read(&file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
                match rightsdesk_core::certificates::verify(&bytes, public_key.as_deref()) {
                    Ok(verified) => {
                        println!(
                            "{}",
                            serde_json::to_string_pretty(&serde_json::json!({
                                "ok": true,
                                "certificate": verified,
                            }))?
                        );
                        Ok(ExitCode::SUCCESS)
                    }
                    Err(problem) => {
                        println!(
                            "{}",
                            serde_json::to_string_pretty(&serde_json::json!({
                                "ok": false,
                                "problem": problem,
                            }))?
                        );
                        Ok(ExitCode::from(1))
                    }
                }
            }
            Command::Keys {
                command: KeysCommand::List,
            } => {
                let keys = rightsdesk::keys_list(&config).await?;
                println!("{}", serde_json::to_string_pretty(&keys)?);
                Ok(ExitCode::SUCCESS)
            }
            Command::Keys {
                command:
                    KeysCommand::Rotate {
                        keys,
                        activate_in,
                        now,
                    },
            } => {
                let mut names = Vec::new();
                for key in &keys {
                    match rightsdesk_core::keys::KeyName::parse(key) {
                        Some(name) => names.push(name),
                        None => {
                            let known: Vec<&str> = rightsdesk_core::keys::KeyName::ALL
                                .iter()
                                .map(|k| k.as_str())
                                .collect();
                            eprintln!(
                                "rightsdesk: keys rotate: {key:?} is not a key that rotates; one of {}",
                                known.join(", ")
                            );
                            return Ok(ExitCode::from(2));
                        }
                    }
                }
                let delay = std::time::Duration::from_secs(if now { 0 } else { activate_in });
                let rotated = rightsdesk::keys_rotate(&config, &names, delay).await?;
                println!("{}", serde_json::to_string_pretty(&rotated)?);
                Ok(ExitCode::SUCCESS)
            }
            Command::ExportEvidence {
                command: Some(ExportEvidenceCommand::Verify { file, public_key }),
                ..
            } => {
                let bytes =
                    std::fs::read(&file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
                let (ok, out) = match rightsdesk_core::evidence_export::verify_export(
                    &bytes,
                    public_key.as_deref(),
                ) {
                    Ok(verified) => (true, serde_json::json!({"ok": true, "export": verified})),
                    Err(problem) => (false, serde_json::json!({"ok": false, "problem": problem})),
                };
                println!("{}", serde_json::to_string_pretty(&out)?);
                Ok(if ok {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                })
            }
            Command::ExportEvidence {
                reference,
                out,
                reason,
                command: None,
            } => {
                let Some(reference) = reference else {
                    eprintln!(
                        "rightsdesk: export-evidence: name a request's reference, or `verify FILE`"
                    );
                    return Ok(ExitCode::from(2));
                };
                let path =
                    out.unwrap_or_else(|| PathBuf::from(format!("{reference}.evidence.zip")));
                // Refuse before recording anything on the request's log.
                if path.exists() {
                    anyhow::bail!("{} exists: choose another --out", path.display());
                }
                let export =
                    rightsdesk::export_evidence(&config, &reference, reason.as_deref()).await?;
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&path)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                std::io::Write::write_all(&mut file, &export.bytes)?;
                file.sync_all()?;
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "reference": export.reference,
                        "file": path,
                        "bytes": export.bytes.len(),
                        "events": export.events,
                        "files": export.files,
                    }))?
                );
                Ok(ExitCode::SUCCESS)
            }
            Command::Tombstones {
                command: TombstonesCommand::Export { source },
            } => {
                for t in rightsdesk::tombstones(&config, source.as_deref()).await? {
                    println!("{}", serde_json::to_string(&t)?);
                }
                Ok(ExitCode::SUCCESS)
            }
            Command::Tombstones {
                command: TombstonesCommand::Apply { source },
            } => {
                let report = rightsdesk::reapply_tombstones(&config, &source).await?;
                println!("{}", serde_json::to_string_pretty(&report)?);
                Ok(if report.failed.is_empty() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                })
            }
            Command::Certificate {
                command: CertificateCommand::PublicKey,
            } => {
                let key = rightsdesk::certificate_public_key(&config).await?;
                println!("{}", serde_json::to_string_pretty(&key)?);
                Ok(ExitCode::SUCCESS)
            }
            Command::Demo {
                dir,
                people,
                seed,
                force,
            } => {
                let options = rightsdesk::demo::DemoOptions {
                    dir,
                    people,
                    seed,
                    force,
                };
                match rightsdesk::demo::run(&options).await {
                    Ok(report) => {
                        tracing::debug!(
                            tables = report.tables,
                            rows = report.rows,
                            people = report.people,
                            "demo written"
                        );
                        print!("{}", rightsdesk::demo::instructions(&report));
                        Ok(ExitCode::SUCCESS)
                    }
                    Err(rightsdesk::demo::DemoError::Usage(message)) => {
                        eprintln!("rightsdesk: demo: {message}");
                        Ok(ExitCode::from(2))
                    }
                    Err(rightsdesk::demo::DemoError::Failed(e)) => Err(e),
                }
            }
            Command::Audit {
                command: AuditCommand::Verify,
            } => {
                let report = rightsdesk::audit_verify(&config).await?;
                println!("{}", serde_json::to_string_pretty(&report)?);
                Ok(if report.ok() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                })
            }
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            let e: anyhow::Error = e;
            tracing::error!(error = %e, "rightsdesk failed");
            eprintln!("rightsdesk: {e:#}");
            ExitCode::FAILURE
        }
    }
}
