//! The system under test: a scratch database per phase and the `rightsdesk serve`
//! process, started on a free loopback port and stopped with SIGTERM (or `rightsdesk
//! worker`, which serves no HTTP).

use std::collections::BTreeMap;
use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use sea_orm::sqlx::{self, AssertSqlSafe, Connection, PgConnection};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::load::{Conn, get};
use crate::procstat::{self, Memory};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }

    pub fn slug(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A scratch database: a file in the work directory, or a PostgreSQL database created
/// for this run and dropped afterwards.
pub struct Database {
    pub backend: Backend,
    /// What the service is given as `database.url`.
    pub url: String,
    pub sqlite_path: Option<PathBuf>,
    pg: Option<(String, String)>,
}

impl Database {
    pub async fn create(
        backend: Backend,
        dir: &Path,
        pg_admin_url: &str,
        label: &str,
    ) -> anyhow::Result<Self> {
        match backend {
            Backend::Sqlite => {
                let path = dir.join(format!("{label}.db"));
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
                Ok(Self {
                    backend,
                    url: format!("sqlite://{}", path.display()),
                    sqlite_path: Some(path),
                    pg: None,
                })
            }
            Backend::Postgres => {
                let name = format!("rightsdesk_bench_{}_{label}", std::process::id());
                let mut admin = PgConnection::connect(pg_admin_url)
                    .await
                    .with_context(|| format!("connecting to {pg_admin_url}"))?;
                sqlx::raw_sql(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}")))
                    .execute(&mut admin)
                    .await?;
                sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut admin)
                    .await
                    .with_context(|| format!("creating the database {name}"))?;
                admin.close().await?;
                // Same server and parameters (e.g. `?sslmode=disable`), our database.
                let (base, db_and_params) = pg_admin_url
                    .rsplit_once('/')
                    .context("the PostgreSQL URL needs a database name")?;
                let params = db_and_params
                    .split_once('?')
                    .map_or(String::new(), |(_, p)| format!("?{p}"));
                Ok(Self {
                    backend,
                    url: format!("{base}/{name}{params}"),
                    sqlite_path: None,
                    pg: Some((pg_admin_url.to_owned(), name)),
                })
            }
        }
    }

    /// PostgreSQL: how the other sessions on this database (the service's pool) are
    /// encrypted, e.g. `8 of 8 connections TLSv1.3`.
    pub async fn tls_in_use(&self) -> anyhow::Result<String> {
        let Some((admin_url, name)) = &self.pg else {
            bail!("not PostgreSQL");
        };
        let mut c = PgConnection::connect(admin_url).await?;
        let row: (i64, i64, Option<String>) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE s.ssl), count(*), max(s.version) \
             FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.datname = $1",
        )
        .bind(name)
        .fetch_one(&mut c)
        .await?;
        c.close().await?;
        Ok(match row {
            (0, n, _) => format!("no ({n} connections in plain text)"),
            (t, n, v) => format!("yes ({t} of {n} connections, {})", v.unwrap_or_default()),
        })
    }

    pub async fn drop_now(self) -> anyhow::Result<()> {
        if let Some((admin_url, name)) = &self.pg {
            let mut admin = PgConnection::connect(admin_url).await?;
            sqlx::raw_sql(AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut admin)
            .await
            .with_context(|| format!("dropping the database {name}"))?;
            admin.close().await?;
        }
        if let Some(path) = &self.sqlite_path {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
        }
        Ok(())
    }
}

/// The settings every server in this bench gets.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub binary: PathBuf,
    pub admin_password: String,
    /// Extra `RIGHTSDESK__…` variables given on the command line.
    pub extra_env: Vec<(String, String)>,
}

/// A running `rightsdesk serve`.
pub struct Server {
    child: Option<Child>,
    pub pid: u32,
    pub port: u16,
    /// From spawning the process to the first 200 from `/healthz` (includes migrating).
    pub ready_after: Duration,
    /// When the process was spawned.
    pub spawned_at: Instant,
    stderr_path: PathBuf,
}

fn free_port() -> anyhow::Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("binding a probe listener")?;
    Ok(l.local_addr()?.port())
}

impl Server {
    pub async fn start(
        settings: &ServerSettings,
        workdir: &Path,
        db: &Database,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(workdir)?;
        let port = free_port()?;
        let stderr_path = workdir.join(format!("server-{port}.stderr.log"));
        let stdout = File::create(workdir.join(format!("server-{port}.stdout.log")))?;
        let stderr = File::create(&stderr_path)?;
        let mut cmd = Command::new(&settings.binary);
        cmd.arg("serve")
            .current_dir(workdir)
            .env_remove("RIGHTSDESK_CONFIG")
            .env("RIGHTSDESK__DATABASE__URL", &db.url)
            .env("RIGHTSDESK__HTTP__BIND", format!("127.0.0.1:{port}"))
            .env("RIGHTSDESK__LOG__LEVEL", "warn")
            .env(
                "RIGHTSDESK__BOOTSTRAP__ADMIN_PASSWORD",
                &settings.admin_password,
            )
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        for (k, v) in &settings.extra_env {
            cmd.env(k, v);
        }
        let started = Instant::now();
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", settings.binary.display()))?;
        let mut server = Server {
            pid: child.id(),
            child: Some(child),
            port,
            ready_after: Duration::ZERO,
            spawned_at: started,
            stderr_path,
        };
        let mut conn = Conn::new(server.addr());
        let health = get(port, "/healthz", None);
        loop {
            if let Ok(r) = conn.roundtrip(&health).await
                && r.status == 200
            {
                break;
            }
            if let Some(child) = server.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                bail!(
                    "the server exited during start-up ({status}):\n{}",
                    server.stderr_tail()
                );
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!(
                    "the server did not answer /healthz within 60 s:\n{}",
                    server.stderr_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        server.ready_after = started.elapsed();
        Ok(server)
    }

    /// `rightsdesk <args>` for a process that serves no HTTP (`worker`): spawned with the
    /// bench's settings plus `env` (which wins), and not waited for. `port` is 0.
    pub fn spawn(
        settings: &ServerSettings,
        workdir: &Path,
        db: &Database,
        args: &[&str],
        env: &[(String, String)],
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(workdir)?;
        let label = args.join("-");
        let stderr_path = workdir.join(format!("{label}.stderr.log"));
        let stdout = File::create(workdir.join(format!("{label}.stdout.log")))?;
        let stderr = File::create(&stderr_path)?;
        let mut cmd = Command::new(&settings.binary);
        cmd.args(args)
            .current_dir(workdir)
            .env_remove("RIGHTSDESK_CONFIG")
            .env("RIGHTSDESK__DATABASE__URL", &db.url)
            .env("RIGHTSDESK__LOG__LEVEL", "warn")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        for (k, v) in settings.extra_env.iter().chain(env) {
            cmd.env(k, v);
        }
        let spawned_at = Instant::now();
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {} {label}", settings.binary.display()))?;
        Ok(Server {
            pid: child.id(),
            child: Some(child),
            port: 0,
            ready_after: Duration::ZERO,
            spawned_at,
            stderr_path,
        })
    }

    /// Fails when the process has exited (it should be running).
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        if let Some(child) = self.child.as_mut()
            && let Some(status) = child.try_wait()?
        {
            bail!("the process exited ({status}):\n{}", self.stderr_tail());
        }
        Ok(())
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn memory(&self) -> anyhow::Result<Memory> {
        procstat::memory(self.pid)
    }

    /// The last lines the server wrote to stderr (its JSON logs).
    pub fn stderr_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.stderr_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// The server's log lines at level ERROR so far, by message (with the fields the
    /// service logs beside it, minus timestamps and spans), and how often each came.
    pub fn errors(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        let text = std::fs::read_to_string(&self.stderr_path).unwrap_or_default();
        for line in text.lines().filter(|l| l.contains("\"ERROR\"")) {
            let key = match serde_json::from_str::<Value>(line) {
                Ok(v) => {
                    let mut fields = v["fields"].clone();
                    if let Some(f) = fields.as_object_mut() {
                        f.remove("elapsed_ms");
                    }
                    format!("{} {fields}", v["target"].as_str().unwrap_or(""))
                }
                Err(_) => line.chars().take(300).collect(),
            };
            *out.entry(key).or_insert(0) += 1;
        }
        out
    }

    /// SIGTERM, then wait for a clean exit (SIGKILL after 20 s).
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let status = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .context("running kill -TERM")?;
        if !status.success() {
            let _ = child.kill();
            let _ = child.wait();
            bail!("kill -TERM {} failed", self.pid);
        }
        let t = Instant::now();
        loop {
            if let Some(status) = child.try_wait()? {
                if !status.success() {
                    eprintln!(
                        "bench: the server exited with {status} after SIGTERM:\n{}",
                        self.stderr_tail()
                    );
                }
                return Ok(());
            }
            if t.elapsed() > Duration::from_secs(20) {
                let _ = child.kill();
                let _ = child.wait();
                bail!("the server did not stop within 20 s of SIGTERM");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Only on an error path: never leave a server behind.
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The JSON API, for setting up (not for measuring).
pub struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    pub fn new(server: &Server) -> anyhow::Result<Self> {
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
            base: server.base_url(),
        })
    }

    pub async fn token(&self, username: &str, password: &str) -> anyhow::Result<String> {
        let res = self
            .http
            .post(format!("{}/api/v1/auth/token", self.base))
            .json(&json!({"username": username, "password": password}))
            .send()
            .await?;
        let status = res.status();
        let body: Value = res.json().await?;
        if !status.is_success() {
            bail!("logging in as {username}: {status} {body}");
        }
        body["access_token"]
            .as_str()
            .map(str::to_owned)
            .context("no access_token in the token response")
    }

    pub async fn create_officer(
        &self,
        admin_token: &str,
        username: &str,
        password: &str,
        roles: &[&str],
    ) -> anyhow::Result<Uuid> {
        let res = self
            .http
            .post(format!("{}/api/v1/admin/officers", self.base))
            .bearer_auth(admin_token)
            .json(&json!({
                "username": username,
                "display_name": format!("Bench {username}"),
                "password": password,
                "roles": roles,
            }))
            .send()
            .await?;
        let status = res.status();
        let body: Value = res.json().await?;
        if status.as_u16() != 201 {
            bail!("creating officer {username}: {status} {body}");
        }
        body["id"]
            .as_str()
            .context("no id in the created officer")?
            .parse()
            .context("the officer id is not a UUID")
    }

    pub async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> anyhow::Result<(u16, Value)> {
        let mut req = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await?;
        let status = res.status().as_u16();
        let body = res.json().await.unwrap_or(Value::Null);
        Ok((status, body))
    }

    pub async fn get(&self, path: &str, token: &str) -> anyhow::Result<(u16, Value)> {
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await?;
        let status = res.status().as_u16();
        let body = res.json().await.unwrap_or(Value::Null);
        Ok((status, body))
    }
}
