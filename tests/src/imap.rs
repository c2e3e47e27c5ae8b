//! A real IMAP server in tests: Debian's Dovecot (`dovecot-imapd`), one per test, on a
//! free loopback port, with a configuration, a Maildir and runtime directories of its own
//! in a temporary folder (so several run at once), stopped on drop.
//!
//! Mail gets into its Maildir two ways: written straight into `new/`
//! ([`ImapServer::deliver_raw`]), or handed to a real SMTP server (aiosmtpd, as in
//! [`crate::mail`]) that writes into the same Maildir ([`ImapServer::send_over_smtp`],
//! or [`ImapServer::smtp_port`] for the service itself to send to).
//!
//! The configuration is Dovecot 2.3's (Debian 12); 2.4 renamed most settings, and the
//! harness says so rather than failing obscurely.
//!
//! Dovecot as root (TESTING-NOTES.md): its login processes run as `dovenull`, its own
//! internal processes as `dovecot`, and the mail user as `nobody`, who owns the Maildir;
//! the folders are 0777 and the SMTP writer runs with umask 0 so that both can write
//! there. Every directory above the runtime folder is traversable.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use rightsdesk_mail::imap::{ImapConfig, ImapSecurity, Secret};

use crate::{TempDir, free_port};

/// How the test server is set up.
#[derive(Debug, Clone, Default)]
pub struct ImapOptions {
    /// Also listen with TLS: STARTTLS on `port` and implicit TLS on `tls_port`, with a
    /// certificate for 127.0.0.1 from a CA of the test's own (`ca_file`).
    pub tls: bool,
    /// Replaces the capabilities Dovecot announces after login (e.g. without `MOVE`, to
    /// exercise a client's fallback). Dovecot still understands every command.
    pub capabilities: Option<String>,
}

/// A running Dovecot.
pub struct ImapServer {
    /// The plain (and STARTTLS, with `tls`) IMAP port on 127.0.0.1.
    pub port: u16,
    /// The implicit-TLS port, with `tls`.
    pub tls_port: Option<u16>,
    pub user: String,
    pub password: String,
    /// The user's Maildir (INBOX; other folders are `.<name>` inside it).
    pub maildir: PathBuf,
    /// The CA that signed the server's certificate, with `tls`.
    pub ca_file: Option<PathBuf>,
    dir: TempDir,
    child: Option<Child>,
    smtp: Option<MaildirSmtp>,
    options: ImapOptions,
}

/// The uid and gid of `nobody`, the mail user (Dovecot refuses uid 0).
fn nobody() -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
    passwd
        .lines()
        .find_map(|line| {
            let mut fields = line.split(':');
            if fields.next()? != "nobody" {
                return None;
            }
            let _password = fields.next();
            Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
        })
        .expect("a nobody user in /etc/passwd")
}

fn dovecot_binary() -> PathBuf {
    let sbin = PathBuf::from("/usr/sbin/dovecot");
    if sbin.exists() {
        sbin
    } else {
        PathBuf::from("dovecot")
    }
}

/// Panics unless the installed Dovecot reads 2.3-style settings (2.4 renamed
/// `mail_location`, `disable_plaintext_auth`, the passdb and SSL settings, …).
fn check_version() {
    static CHECKED: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let version = CHECKED.get_or_init(|| {
        let out = Command::new(dovecot_binary())
            .arg("--version")
            .output()
            .expect(
                "run dovecot --version (Debian package dovecot-imapd; scripts/test installs it)",
            );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    });
    assert!(
        version.starts_with("2.3.") || version.starts_with("2.2."),
        "Dovecot {version}: tests/src/imap.rs writes a Dovecot 2.3 configuration"
    );
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// Maildir folders (`cur`, `new`, `tmp`) that root, Dovecot's `nobody` and the SMTP
/// writer can all use.
fn make_maildir(path: &Path, owner: (u32, u32)) {
    for sub in ["", "cur", "new", "tmp"] {
        let dir = path.join(sub);
        std::fs::create_dir_all(&dir).expect("create a Maildir folder");
        std::os::unix::fs::chown(&dir, Some(owner.0), Some(owner.1)).expect("chown the Maildir");
        chmod(&dir, 0o777);
    }
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and a certificate for 127.0.0.1 and localhost signed by it, with the openssl
/// command (EC P-256, valid for two days).
fn make_certificates(dir: &Path) -> PathBuf {
    let openssl = |args: &[&str], what: &str| {
        run(Command::new("openssl").args(args).current_dir(dir), what);
    };
    openssl(
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=rightsdesk test CA",
        ],
        "openssl: the test CA",
    );
    openssl(
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
        "openssl: the server key",
    );
    std::fs::write(
        dir.join("server.ext"),
        "basicConstraints = CA:FALSE\n\
         keyUsage = digitalSignature\n\
         extendedKeyUsage = serverAuth\n\
         subjectAltName = IP:127.0.0.1, DNS:localhost\n",
    )
    .expect("write the certificate extensions");
    openssl(
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ],
        "openssl: the server certificate",
    );
    dir.join("ca.pem")
}

/// Distinct, increasing Maildir file names, so that Dovecot gives messages delivered one
/// after the other increasing UIDs (it orders new files by the time in their name).
static DELIVERED: AtomicU32 = AtomicU32::new(0);

impl ImapServer {
    /// A server without TLS, announcing Dovecot's usual capabilities.
    pub async fn start() -> Self {
        Self::start_with(ImapOptions::default()).await
    }

    pub async fn start_with(options: ImapOptions) -> Self {
        check_version();
        let dir = TempDir::new();
        // dovenull must traverse every directory above base_dir; `nobody` the home.
        chmod(&dir.0, 0o755);
        let owner = nobody();
        let home = dir.0.join("home");
        std::fs::create_dir_all(&home).expect("create the mail home");
        std::os::unix::fs::chown(&home, Some(owner.0), Some(owner.1)).expect("chown the home");
        chmod(&home, 0o777);
        let maildir = home.join("Maildir");
        make_maildir(&maildir, owner);
        let user = "privacy@example.com".to_owned();
        let password = format!("pw-{}", uuid::Uuid::new_v4().simple());
        let passwd = dir.0.join("passwd");
        std::fs::write(&passwd, format!("{user}:{{PLAIN}}{password}\n"))
            .expect("write the password file");
        // Read by the auth process, which runs as `dovecot`.
        chmod(&passwd, 0o644);
        let ca_file = options.tls.then(|| make_certificates(&dir.0));
        let mut server = Self {
            port: free_port(),
            tls_port: options.tls.then(free_port),
            user,
            password,
            maildir,
            ca_file,
            dir,
            child: None,
            smtp: None,
            options,
        };
        server.write_config(owner);
        server.restart().await;
        server
    }

    fn config_path(&self) -> PathBuf {
        self.dir.0.join("dovecot.conf")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.0.join("dovecot.log")
    }

    fn write_config(&self, owner: (u32, u32)) {
        let dir = self.dir.0.display();
        let tls = if self.options.tls {
            let dh = Path::new("/usr/share/dovecot/dh.pem");
            format!(
                "ssl = yes\nssl_cert = <{dir}/server.pem\nssl_key = <{dir}/server.key\n{}",
                if dh.exists() {
                    format!("ssl_dh = <{}\n", dh.display())
                } else {
                    String::new()
                }
            )
        } else {
            "ssl = no\n".to_owned()
        };
        let capabilities = self
            .options
            .capabilities
            .as_deref()
            .map(|c| format!("imap_capability = {c}\n"))
            .unwrap_or_default();
        let config = format!(
            "# A Dovecot of one test (rightsdesk-tests, tests/src/imap.rs).
base_dir = {dir}/run
state_dir = {dir}/state
instance_name = rightsdesk-{instance}
protocols = imap
listen = 127.0.0.1
log_path = {log}
default_login_user = dovenull
default_internal_user = dovecot
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
{tls}{capabilities}mail_location = maildir:{maildir}
namespace inbox {{
  inbox = yes
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {dir}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={dir}/home
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
  }}
}}
service stats {{
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
",
            instance = uuid::Uuid::new_v4().simple(),
            log = self.log_path().display(),
            maildir = self.maildir.display(),
            uid = owner.0,
            gid = owner.1,
            port = self.port,
            tls_port = self.tls_port.unwrap_or(0),
        );
        std::fs::write(self.config_path(), config).expect("write dovecot.conf");
        for sub in ["run", "state"] {
            let path = self.dir.0.join(sub);
            std::fs::create_dir_all(&path).expect("create a Dovecot directory");
            chmod(&path, 0o755);
        }
    }

    /// What Dovecot wrote to its log and to stderr so far (for failure messages).
    pub fn log(&self) -> String {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let stderr = std::fs::read_to_string(self.dir.0.join("stderr")).unwrap_or_default();
        format!("{stderr}{log}")
    }

    /// Starts Dovecot again on the same ports (after `stop`), and waits until it accepts
    /// connections.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "Dovecot is already running");
        // Left by a master that was killed: Dovecot refuses to start while the pid in
        // master.pid is alive (pids get reused), and waits for the dotlock of its
        // `instances` file to go stale.
        for leftover in ["run/master.pid", "state/instances.lock"] {
            let _ = std::fs::remove_file(self.dir.0.join(leftover));
        }
        let stderr = std::fs::File::create(self.dir.0.join("stderr")).expect("a stderr file");
        let mut child = Command::new(dovecot_binary())
            .arg("-F")
            .arg("-c")
            .arg(self.config_path())
            // Its own process group, so that stopping it stops every child process.
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(stderr))
            .spawn()
            .expect("start dovecot (Debian package dovecot-imapd; scripts/test installs it)");
        for _ in 0..400 {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("dovecot exited ({status}):\n{}", self.log());
            }
            if self.ready().await {
                self.child = Some(child);
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        kill_group(&mut child);
        panic!(
            "dovecot did not greet on port {} within 10 s:\n{}",
            self.port,
            self.log()
        );
    }

    /// Whether Dovecot has finished starting: its login process greets on the plain
    /// port (a listening socket alone only shows the master has bound it; killing the
    /// master before it has started its services leaves state behind that blocks the
    /// next start), and the TLS port accepts connections.
    async fn ready(&self) -> bool {
        use tokio::io::AsyncReadExt;
        let greeting = async {
            let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .ok()?;
            let mut buf = [0u8; 64];
            let n = stream.read(&mut buf).await.ok()?;
            Some(buf[..n].starts_with(b"* OK"))
        };
        let greeted = tokio::time::timeout(Duration::from_millis(500), greeting)
            .await
            .ok()
            .flatten()
            .unwrap_or(false);
        if !greeted {
            return false;
        }
        match self.tls_port {
            Some(port) => tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok(),
            None => true,
        }
    }

    /// Stops Dovecot as an administrator would (SIGTERM: the master stops its services
    /// and exits), and makes sure nothing of it is left: connections are refused until
    /// `restart`.
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        for _ in 0..200 {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        kill_group(&mut child);
    }

    /// A client configuration for this server: the plain port (loopback), `INBOX`.
    pub fn client_config(&self) -> ImapConfig {
        ImapConfig {
            host: "127.0.0.1".to_owned(),
            port: Some(self.port),
            security: ImapSecurity::Plain,
            allow_plain: true,
            username: self.user.clone(),
            password: Secret::new(self.password.clone()),
            timeout_secs: 10,
            ..ImapConfig::default()
        }
    }

    /// Writes `raw` as a new message into the INBOX (Maildir `tmp/`, then `new/`, as a
    /// delivery agent does) and returns its file. Messages delivered one after the other
    /// get increasing UIDs.
    pub fn deliver_raw(&self, raw: &[u8]) -> PathBuf {
        self.deliver_to(None, raw)
    }

    /// The same into `folder` (which must exist: see [`ImapServer::create_folder`]).
    pub fn deliver_to(&self, folder: Option<&str>, raw: &[u8]) -> PathBuf {
        let n = DELIVERED.fetch_add(1, Ordering::SeqCst);
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("a clock after 1970")
            .as_secs();
        // The time part goes up with every delivery, so the order never rests on ties.
        let name = format!(
            "{}.P{}Q{n}.rightsdesk-test",
            secs + u64::from(n),
            std::process::id()
        );
        let dir = self.folder_dir(folder);
        let tmp = dir.join("tmp").join(&name);
        std::fs::write(&tmp, raw).expect("write a message");
        chmod(&tmp, 0o666);
        let new = dir.join("new").join(&name);
        std::fs::rename(&tmp, &new).expect("deliver a message");
        new
    }

    /// Creates the Maildir folder `name` (`.name` in the Maildir), as a mail client
    /// would have.
    pub fn create_folder(&self, name: &str) {
        make_maildir(&self.folder_dir(Some(name)), nobody());
    }

    fn folder_dir(&self, folder: Option<&str>) -> PathBuf {
        match folder {
            None => self.maildir.clone(),
            Some(name) => self.maildir.join(format!(".{name}")),
        }
    }

    /// The messages stored in `folder` (`None`: INBOX), read from the disk, oldest file
    /// first: what a test checks without going through an IMAP client.
    pub fn stored(&self, folder: Option<&str>) -> Vec<Stored> {
        let dir = self.folder_dir(folder);
        let mut found: Vec<(std::time::SystemTime, Stored)> = Vec::new();
        for sub in ["new", "cur"] {
            let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
                continue;
            };
            for entry in entries.filter_map(Result::ok) {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') {
                    continue;
                }
                let flags = name
                    .split_once(":2,")
                    .map(|(_, f)| f.to_owned())
                    .unwrap_or_default();
                let modified = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .unwrap_or(std::time::UNIX_EPOCH);
                found.push((
                    modified,
                    Stored {
                        flags,
                        raw: std::fs::read(entry.path()).expect("read a stored message"),
                    },
                ));
            }
        }
        found.sort_by_key(|(t, _)| *t);
        found.into_iter().map(|(_, s)| s).collect()
    }

    /// Simulates the server losing its UID bookkeeping, as after the mailbox was rebuilt
    /// or restored: Dovecot is stopped, the INBOX's `dovecot-uidlist` and index files are
    /// deleted, and it starts again. It then numbers the messages afresh under a new
    /// UIDVALIDITY (the next value of `dovecot-uidvalidity`, which only goes up), and
    /// keeps their flags (they live in the file names).
    pub async fn change_uidvalidity(&mut self) {
        self.stop().await;
        let entries = std::fs::read_dir(&self.maildir).expect("read the Maildir");
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == "dovecot-uidlist" || name.starts_with("dovecot.index") {
                std::fs::remove_file(entry.path()).expect("remove a Dovecot index file");
            }
        }
        self.restart().await;
    }

    /// The port of an SMTP server (aiosmtpd) that delivers every message it accepts into
    /// this server's INBOX, started on first use and stopped with this server.
    pub async fn smtp_port(&mut self) -> u16 {
        if self.smtp.is_none() {
            self.smtp = Some(MaildirSmtp::start(&self.maildir).await);
        }
        self.smtp.as_ref().map(|s| s.port).expect("the SMTP server")
    }

    /// Sends `raw` through that SMTP server (Python's smtplib, envelope from
    /// `sender@example.com` to this server's user); it is in the Maildir when this returns.
    pub async fn send_over_smtp(&mut self, raw: &[u8]) {
        let port = self.smtp_port().await;
        let mut child = tokio::process::Command::new("/usr/bin/python3")
            .args([
                "-c",
                "import smtplib, sys\n\
                 with smtplib.SMTP('127.0.0.1', int(sys.argv[1]), timeout=10) as s:\n    \
                     s.sendmail(sys.argv[2], [sys.argv[3]], sys.stdin.buffer.read())\n",
                &port.to_string(),
                "sender@example.com",
                &self.user,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("run /usr/bin/python3");
        {
            use tokio::io::AsyncWriteExt;
            let mut stdin = child.stdin.take().expect("a stdin");
            stdin.write_all(raw).await.expect("hand the message over");
        }
        let out = child.wait_with_output().await.expect("smtplib finishes");
        assert!(
            out.status.success(),
            "smtplib failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for ImapServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_group(&mut child);
        }
    }
}

/// Kills Dovecot's whole process group (master, login, imap, auth, log, …), reaps the
/// master, and waits until every other process of the group is dead too: a signal is
/// only queued by `kill`, and until they die the login processes still hold the
/// listening socket (a "stopped" server would accept connections, and a restarted one
/// could not bind). `kill(1)` sends it: the workspace forbids `unsafe`, so no
/// `libc::kill`.
fn kill_group(child: &mut Child) {
    let group = child.id();
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{group}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let _ = child.kill();
    let _ = child.wait();
    for _ in 0..500 {
        if !group_alive(group) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("Dovecot's processes (group {group}) did not die within 5 s");
}

/// Whether a process of group `group` still runs. Zombies do not count: they hold no
/// socket, and whoever adopted them (pid 1) may never reap them.
fn group_alive(group: u32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.filter_map(Result::ok).any(|entry| {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            return false;
        };
        // `pid (comm) state ppid pgrp …`; comm may hold spaces and parentheses.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            return false;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next();
        let _ppid = fields.next();
        let pgrp = fields.next().and_then(|p| p.parse::<u32>().ok());
        pgrp == Some(group) && !matches!(state, Some("Z" | "X"))
    })
}

/// One message file in a Maildir folder.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The Maildir flags from the file name (`S` = `\Seen`, `T` = `\Deleted`, …); empty
    /// in `new/`.
    pub flags: String,
    pub raw: Vec<u8>,
}

impl Stored {
    pub fn seen(&self) -> bool {
        self.flags.contains('S')
    }

    /// Whether the raw message contains `needle` (e.g. its Message-ID).
    pub fn contains(&self, needle: &str) -> bool {
        self.raw
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
    }
}

/// aiosmtpd writing into an existing Maildir, with umask 0 so that its files are
/// readable and renamable by Dovecot's `nobody`.
struct MaildirSmtp {
    port: u16,
    _child: tokio::process::Child,
}

impl MaildirSmtp {
    async fn start(maildir: &Path) -> Self {
        let port = free_port();
        let child = tokio::process::Command::new("/bin/sh")
            .arg("-c")
            .arg("umask 0 && exec \"$@\"")
            .arg("sh")
            .arg("/usr/bin/python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(maildir)
            .kill_on_drop(true)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start aiosmtpd (Debian package python3-aiosmtpd)");
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Self {
                    port,
                    _child: child,
                };
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("aiosmtpd did not start listening on port {port}");
    }
}
