//! The test harness: starts the real service (the same `Application` as `main`) on a
//! free loopback port against a fresh database, with a manual clock.
//!
//! The backend comes from `RIGHTSDESK_TEST_BACKEND` (`sqlite`, the default, or
//! `postgres`); PostgreSQL tests create a uniquely named database on the server at
//! `RIGHTSDESK_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432/test`) and drop
//! it afterwards.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use reqwest::{Method, StatusCode};
use rightsdesk::{Application, Config};
use rightsdesk_core::ManualClock;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use serde_json::{Value, json};

pub mod browser;
pub mod imap;
pub mod mail;
pub mod sms;

pub use reqwest;
pub use serde_json;

pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";
pub const OFFICER_PASSWORD: &str = "officer-password-for-tests";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub fn backend() -> Backend {
    match std::env::var("RIGHTSDESK_TEST_BACKEND").as_deref() {
        Ok("postgres") | Ok("postgresql") | Ok("pg") => Backend::Postgres,
        Ok("sqlite") | Err(_) => Backend::Sqlite,
        Ok(other) => panic!("RIGHTSDESK_TEST_BACKEND={other}: expected sqlite or postgres"),
    }
}

fn pg_admin_url() -> String {
    std::env::var("RIGHTSDESK_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A database that exists for one test and is removed when dropped.
pub struct TestDb {
    pub url: String,
    pg_name: Option<String>,
    _dir: Option<TempDir>,
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> Self {
        let dir =
            std::env::temp_dir().join(format!("rightsdesk-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("create a temporary directory");
        Self(dir)
    }
}

impl Default for TempDir {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl TestDb {
    pub async fn fresh() -> Self {
        match backend() {
            Backend::Sqlite => {
                let dir = TempDir::new();
                let url = format!("sqlite://{}", dir.0.join("rightsdesk.db").display());
                Self {
                    url,
                    pg_name: None,
                    _dir: Some(dir),
                }
            }
            Backend::Postgres => Self::postgres().await,
        }
    }

    /// A database of its own on the PostgreSQL test server, whatever the backend under
    /// test (for a data source the service reads).
    pub async fn postgres() -> Self {
        let name = format!("rdtest_{}", uuid::Uuid::new_v4().simple());
        let admin = Database::connect(pg_admin_url())
            .await
            .expect("connect to the PostgreSQL test server");
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create the test database");
        admin.close().await.ok();
        let base = pg_admin_url();
        let url = match base.rfind('/') {
            Some(i) => format!("{}/{name}", &base[..i]),
            None => panic!("RIGHTSDESK_TEST_PG_URL must name a database"),
        };
        Self {
            url,
            pg_name: Some(name),
            _dir: None,
        }
    }

    /// A direct connection, for tests that inspect or tamper with stored rows.
    pub async fn connect(&self) -> DatabaseConnection {
        Database::connect(&self.url)
            .await
            .expect("connect to the test database")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else {
            return;
        };
        // Drop runs outside async code: use a runtime of its own on a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let admin = Database::connect(pg_admin_url()).await.ok()?;
                admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .ok()?;
                admin.close().await.ok()
            })
        })
        .join();
    }
}

/// A port on 127.0.0.1 that nothing listens on (for a server to start on, or for a
/// client to find closed).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The harness's configuration for `db`: a free loopback port, one worker, a known
/// administrator password, and no background work (tests run it explicitly).
pub fn base_config(db: &TestDb) -> Config {
    let mut config = Config::default();
    config.database.url = db.url.clone();
    config.database.max_connections = 4;
    config.http.bind = "127.0.0.1:0".to_owned();
    config.http.workers = 1;
    config.bootstrap.admin_password = Some(ADMIN_PASSWORD.to_owned());
    config.worker.in_process = false;
    config
}

/// Mail from `config` goes to the SMTP server on loopback `port`, without TLS.
pub fn send_over_smtp(config: &mut Config, port: u16) {
    config.mail.transport = rightsdesk_mail::TransportKind::Smtp;
    config.mail.smtp.host = "127.0.0.1".to_owned();
    config.mail.smtp.port = port;
    config.mail.smtp.tls = rightsdesk_mail::SmtpTls::None;
    config.mail.smtp.timeout_secs = 5;
}

/// The instant every test starts at: 1 March 2026, 10:00 in Shanghai.
pub fn start_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 2, 0, 0)
        .single()
        .expect("a valid instant")
}

/// A running service and a client for it.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub clock: Arc<ManualClock>,
    pub config: Config,
    pub db: TestDb,
    /// The use-cases of the running service, to drive background work (it does not run
    /// on its own in tests: they call `deliver_notifications`, `expire_unverified`).
    pub services: rightsdesk_core::Services,
    /// Holds the outbox folder (`config.mail.folder`) and anything else a test writes.
    pub dir: Arc<TempDir>,
    handle: actix_web::dev::ServerHandle,
}

/// A response: status and JSON body (`Value::Null` when the body is not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Reply {
    /// The error code of an error body.
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    /// The `field` names of a validation error, in order.
    pub fn fields(&self) -> Vec<String> {
        self.body["details"]["fields"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|f| f["field"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_on(
            TestDb::fresh().await,
            Arc::new(ManualClock::new(start_time())),
        )
        .await
    }

    async fn spawn_on(db: TestDb, clock: Arc<ManualClock>) -> Self {
        let config = base_config(&db);
        Self::spawn_with(db, clock, config).await
    }

    /// Starts the service with `config` (whose database URL must be `db`'s). Mail goes
    /// to a folder of the test's own, `dir/outbox`, unless `config` sends it over SMTP.
    pub async fn spawn_with(db: TestDb, clock: Arc<ManualClock>, mut config: Config) -> Self {
        let dir = Arc::new(TempDir::new());
        config.mail.folder = dir.0.join("outbox");
        config.bundles.dir = dir.0.join("bundles");
        Self::spawn_in(db, clock, config, dir).await
    }

    async fn spawn_in(
        db: TestDb,
        clock: Arc<ManualClock>,
        config: Config,
        dir: Arc<TempDir>,
    ) -> Self {
        let app = Application::build_with_clock(&config, clock.clone())
            .await
            .expect("the service starts");
        let base = format!("http://127.0.0.1:{}", app.port());
        let handle = app.handle();
        let services = app.services().clone();
        tokio::spawn(app.run_until_stopped());
        Self {
            base,
            client: reqwest::Client::new(),
            clock,
            config,
            db,
            services,
            dir,
            handle,
        }
    }

    /// Stops the server (finishing in-flight requests) and starts a new one on the same
    /// database, as a restart of the process would.
    pub async fn restart(self) -> Self {
        self.handle.stop(true).await;
        let TestApp {
            db,
            clock,
            config,
            dir,
            ..
        } = self;
        Self::spawn_in(db, clock, config, dir).await
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Reply {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let res = req.send().await.expect("the service answers");
        Self::reply(res).await
    }

    pub async fn reply(res: reqwest::Response) -> Reply {
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.bytes().await.expect("a body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            body,
            headers,
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.request(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Reply {
        self.request(Method::POST, path, token, Some(body)).await
    }

    /// Files a request over the requester API and returns the 201 body.
    pub async fn file(&self, kind: &str, details: Value) -> Value {
        let r = self
            .post("/api/v1/requests", None, &filing(kind, details))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "filing {kind}: {:?}", r.body);
        r.body
    }

    pub async fn login(&self, username: &str, password: &str) -> String {
        let r = self
            .post(
                "/api/v1/auth/token",
                None,
                &json!({"username": username, "password": password}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "login {username}: {:?}", r.body);
        r.body["access_token"].as_str().expect("a token").to_owned()
    }

    pub async fn admin_token(&self) -> String {
        self.login("admin", ADMIN_PASSWORD).await
    }

    /// Creates an officer with `roles` (through the admin API) and returns
    /// (officer id, token).
    pub async fn officer(&self, username: &str, roles: &[&str]) -> (String, String) {
        self.officer_with_email(username, roles, None).await
    }

    /// The same, with an email address (for the notices officers receive).
    pub async fn officer_with_email(
        &self,
        username: &str,
        roles: &[&str],
        email: Option<&str>,
    ) -> (String, String) {
        let admin = self.admin_token().await;
        let mut body = json!({
            "username": username,
            "display_name": username,
            "password": OFFICER_PASSWORD,
            "roles": roles,
        });
        if let Some(email) = email {
            body["email"] = json!(email);
        }
        let r = self
            .post("/api/v1/admin/officers", Some(&admin), &body)
            .await;
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "create officer {username}: {:?}",
            r.body
        );
        let id = r.body["id"].as_str().expect("an id").to_owned();
        (id, self.login(username, OFFICER_PASSWORD).await)
    }

    /// Request `id` as the officer with `token` sees it (`GET /api/v1/officer/requests/{id}`),
    /// which must answer 200.
    pub async fn detail(&self, token: &str, id: &str) -> Value {
        let r = self
            .get(&format!("/api/v1/officer/requests/{id}"), Some(token))
            .await;
        assert_eq!(r.status, StatusCode::OK, "detail of {id}: {:?}", r.body);
        r.body
    }

    /// Takes `action` on request `id` as the officer with `token`.
    pub async fn act(&self, token: &str, id: &str, action: &str, body: Value) -> Reply {
        self.post(
            &format!("/api/v1/officer/requests/{id}/actions/{action}"),
            Some(token),
            &body,
        )
        .await
    }

    /// A service that sends its mail to the SMTP server on `port` (no TLS, loopback).
    pub async fn spawn_with_smtp(port: u16) -> Self {
        let db = TestDb::fresh().await;
        let mut config = base_config(&db);
        send_over_smtp(&mut config, port);
        Self::spawn_with(db, Arc::new(ManualClock::new(start_time())), config).await
    }

    /// A service that sends its text messages to the HTTP SMS gateway at `url`, signed
    /// with `secret` (mail goes to the test's folder).
    pub async fn spawn_with_sms_gateway(url: &str, secret: &str) -> Self {
        let db = TestDb::fresh().await;
        let mut config = base_config(&db);
        config.sms.provider = rightsdesk_mail::SmsProviderKind::Http;
        config.sms.http.url = Some(url.to_owned());
        config.sms.http.secret = Some(secret.to_owned());
        config.sms.http.timeout_secs = 5;
        Self::spawn_with(db, Arc::new(ManualClock::new(start_time())), config).await
    }

    /// The text messages the development provider wrote so far
    /// (`<mail.folder>/sms/<id>.json`), by id.
    pub fn sms_folder_messages(&self) -> Vec<(String, Value)> {
        sms::folder_messages(&self.config.mail.folder.join("sms"))
    }

    /// One pass of the outbox sender.
    pub async fn deliver(&self) -> rightsdesk_core::notifications::DeliveryReport {
        self.services
            .deliver_notifications()
            .await
            .expect("a delivery pass")
    }

    /// The messages the service wrote into its outbox folder so far.
    pub fn outbox_messages(&self) -> Vec<mail::Received> {
        mail::folder_messages(&self.config.mail.folder)
    }

    /// Files a request of `kind` as li.lei (valid details) and verifies it with the
    /// link of its own verification message; returns the 201 body.
    pub async fn file_verified(&self, kind: &str) -> Value {
        let filed = self.file(kind, valid_details(kind)).await;
        self.deliver().await;
        let reference = filed["reference"].as_str().expect("a reference");
        let path = self
            .outbox_messages()
            .into_iter()
            .find(|m| m.subject.contains(reference) && m.text.contains("/verify/"))
            .expect("the request's verification message")
            .link_path();
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .send()
            .await
            .expect("the link answers");
        assert!(r.status().is_success(), "{}", r.status());
        filed
    }

    /// The newest verification message (code and link) sent to `to`.
    pub fn verification_message(&self, to: &str) -> mail::Received {
        self.outbox_messages()
            .into_iter()
            .rfind(|m| m.to == to && m.text.contains("/verify/"))
            .unwrap_or_else(|| panic!("no verification message to {to}"))
    }

    /// Counts rows of `table` (for "nothing was stored" checks).
    pub async fn count(&self, table: &str) -> i64 {
        let conn = self.db.connect().await;
        let row = conn
            .query_one_raw(sea_orm::Statement::from_string(
                conn.get_database_backend(),
                format!("SELECT COUNT(*) AS n FROM {table}"),
            ))
            .await
            .expect("count query")
            .expect("a row");
        let n: i64 = row.try_get("", "n").expect("a count");
        conn.close().await.ok();
        n
    }
}

/// Every row `sql` reads from the source database at `url`, as JSON objects (to check
/// what a connector changed there).
pub async fn source_rows(url: &str, sql: &str) -> Vec<Value> {
    use sea_orm::FromQueryResult;
    let db = Database::connect(url).await.expect("the source");
    let rows = db
        .query_all_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            sql,
        ))
        .await
        .expect("read the source");
    db.close().await.ok();
    rows.iter()
        .map(|r| Value::from_query_result(r, "").expect("a row"))
        .collect()
}

/// A valid filing of `kind` with `details` by a requester with an email address.
pub fn filing(kind: &str, details: Value) -> Value {
    json!({
        "kind": kind,
        "requester": {"name": "李雷", "email": "li.lei@example.com", "phone": "13812345678", "language": "zh-CN"},
        "details": details,
    })
}

/// Valid details for every kind.
pub fn valid_details(kind: &str) -> Value {
    match kind {
        "access" | "copy" => json!({"categories": ["account", "downloads"]}),
        "portability" => json!({"recipient": {"name": "B 公司", "email": "dpo@b.example.com"}}),
        "correction" => json!({"changes": [{"field": "company", "new_value": "新公司"}]}),
        "consent_withdrawal" => json!({"purposes": ["marketing_sms", "marketing_email"]}),
        "deletion" => json!({"categories": ["marketing"], "reason": "no longer a customer"}),
        "account_closure" => json!({"reason": "moving on"}),
        "next_of_kin" => json!({
            "relationship": "child",
            "deceased": {"name": "王芳", "phone": "13900000000", "date_of_death": "2026-01-02"},
            "rights": ["access", "deletion"],
            "lawful_interest": "整理遗物"
        }),
        "explanation" => json!({"question": "为什么需要我的手机号？"}),
        "complaint" => {
            json!({"about_reference": "PR-2026-000001", "description": "没有在 15 天内答复"})
        }
        other => panic!("no valid details for {other}"),
    }
}

pub const KINDS: &[&str] = &[
    "access",
    "copy",
    "portability",
    "correction",
    "consent_withdrawal",
    "deletion",
    "account_closure",
    "next_of_kin",
    "explanation",
    "complaint",
];
