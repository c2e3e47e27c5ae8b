//! Real mail in tests: an SMTP server (Debian's aiosmtpd) on a free loopback port that
//! writes what it accepts into a Maildir, and a reader for that Maildir or for the
//! service's own `.eml` folder.

use std::path::{Path, PathBuf};
use std::time::Duration;

use mail_parser::{MessageParser, MimeHeaders};

use crate::TempDir;

/// One message as a test looks at it.
#[derive(Debug, Clone)]
pub struct Received {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub message_id: String,
    pub auto_submitted: Option<String>,
    /// Attached files: (name, bytes).
    pub attachments: Vec<(String, Vec<u8>)>,
}

impl Received {
    /// The 6-digit code at the start of a verification message's subject.
    pub fn code(&self) -> String {
        let code: String = self.subject.chars().take(6).collect();
        assert!(
            code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()),
            "no code in {:?}",
            self.subject
        );
        code
    }

    /// The path of the verification link in the text part (`/verify/<token>`).
    pub fn link_path(&self) -> String {
        let start = self
            .text
            .find("/verify/")
            .unwrap_or_else(|| panic!("no link in {:?}", self.text));
        self.text[start..]
            .split_whitespace()
            .next()
            .expect("a link")
            .to_owned()
    }
}

fn parse(bytes: &[u8]) -> Received {
    let m = MessageParser::default()
        .parse(bytes)
        .expect("a parsable message");
    Received {
        to: m
            .to()
            .and_then(|a| a.first())
            .and_then(|a| a.address())
            .unwrap_or_default()
            .to_owned(),
        subject: m.subject().unwrap_or_default().to_owned(),
        text: m.body_text(0).map(|c| c.into_owned()).unwrap_or_default(),
        html: m.body_html(0).map(|c| c.into_owned()).unwrap_or_default(),
        message_id: m.message_id().unwrap_or_default().to_owned(),
        auto_submitted: m.header_raw("Auto-Submitted").map(|s| s.trim().to_owned()),
        attachments: m
            .attachments()
            .map(|a| {
                (
                    a.attachment_name().unwrap_or_default().to_owned(),
                    a.contents().to_vec(),
                )
            })
            .collect(),
    }
}

/// Every message in the files directly in `dirs` (Maildir `new`/`cur`, or the service's
/// `.eml` folder), oldest first by file name.
pub fn read_messages(dirs: &[PathBuf]) -> Vec<Received> {
    let mut files: Vec<PathBuf> = dirs
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && !p
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with('.'))
        })
        .collect();
    files.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    files
        .iter()
        .map(|p| parse(&std::fs::read(p).expect("read a message")))
        .collect()
}

/// How the test server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpMode {
    /// Accepts every message into the Maildir.
    Accept,
    /// Refuses every recipient with `550 5.1.1`.
    Reject,
    /// Accepts every message into the Maildir after this many milliseconds (a slow
    /// server).
    Slow(u64),
}

const REJECT_HANDLER: &str = "\
import asyncio, os
from aiosmtpd.handlers import Mailbox

class Reject:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        return '550 5.1.1 mailbox unavailable'

class Slow(Mailbox):
    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(int(os.environ['SMTP_DELAY_MS']) / 1000)
        return await super().handle_DATA(server, session, envelope)
";

/// A running aiosmtpd.
pub struct SmtpServer {
    pub port: u16,
    mode: SmtpMode,
    dir: TempDir,
    child: Option<tokio::process::Child>,
}

impl SmtpServer {
    pub async fn start(mode: SmtpMode) -> Self {
        let port = crate::free_port();
        let mut server = Self {
            port,
            mode,
            dir: TempDir::new(),
            child: None,
        };
        server.restart().await;
        server
    }

    fn maildir(&self) -> PathBuf {
        self.dir.0.join("Maildir")
    }

    /// Starts the server again on the same port (after `stop`).
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "the SMTP server is already running");
        std::fs::write(self.dir.0.join("reject_handler.py"), REJECT_HANDLER)
            .expect("write the handler");
        let mut cmd = tokio::process::Command::new("/usr/bin/python3");
        cmd.args([
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            &format!("127.0.0.1:{}", self.port),
        ]);
        match self.mode {
            SmtpMode::Accept => {
                cmd.args(["-c", "aiosmtpd.handlers.Mailbox"])
                    .arg(self.maildir());
            }
            SmtpMode::Reject => {
                cmd.args(["-c", "reject_handler.Reject"])
                    .env("PYTHONPATH", &self.dir.0);
            }
            SmtpMode::Slow(ms) => {
                cmd.args(["-c", "reject_handler.Slow"])
                    .arg(self.maildir())
                    .env("PYTHONPATH", &self.dir.0)
                    .env("SMTP_DELAY_MS", ms.to_string());
            }
        }
        cmd.kill_on_drop(true)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let child = cmd
            .spawn()
            .expect("start aiosmtpd (Debian package python3-aiosmtpd; scripts/test installs it)");
        self.child = Some(child);
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("aiosmtpd did not start listening on port {}", self.port);
    }

    /// Stops the server: connections are refused until `restart`.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.ok();
        }
    }

    /// Every message the server accepted.
    pub fn messages(&self) -> Vec<Received> {
        let maildir = self.maildir();
        read_messages(&[maildir.join("new"), maildir.join("cur")])
    }
}

/// The messages the service wrote into its outbox folder (the `folder` transport).
pub fn folder_messages(folder: &Path) -> Vec<Received> {
    read_messages(&[folder.to_path_buf()])
}
