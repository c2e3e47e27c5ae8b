//! A real SMTP server for the mail phase: Debian's aiosmtpd (`python3-aiosmtpd`, as in
//! `tests/src/mail.rs`) on a free loopback port, with a sink handler that accepts every
//! message over the full SMTP dialogue (EHLO, MAIL, RCPT, DATA) and, instead of
//! storing it, appends one line per message to a log: its `Message-ID`, its number of
//! recipients and its size. The bench counts and checks those lines.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// The handler, loaded by `python3 -m aiosmtpd -c bench_sink.Sink <log>`.
const SINK_HANDLER: &str = r#"
"""Accepts every message and records its Message-ID, one line per message."""


class Sink:
    def __init__(self, path):
        # Line-buffered: each accepted message is in the file before its 250 is sent.
        self.log = open(path, "a", buffering=1, encoding="ascii", errors="replace")

    @classmethod
    def from_cli(cls, parser, *args):
        if len(args) != 1:
            parser.error("bench_sink.Sink takes the path of its log")
        return cls(args[0])

    async def handle_DATA(self, server, session, envelope):
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode("utf-8", "replace")
        head = content.split(b"\r\n\r\n", 1)[0].replace(b"\r\n ", b" ").replace(b"\r\n\t", b" ")
        mid = b"-"
        for line in head.split(b"\r\n"):
            if line[:11].lower() == b"message-id:":
                mid = line[11:].strip() or b"-"
                break
        self.log.write("%s %d %d\n" % (mid.decode("ascii", "replace"), len(envelope.rcpt_tos), len(content)))
        return "250 2.0.0 OK"
"#;

/// A running aiosmtpd with the sink handler.
pub struct SmtpSink {
    pub port: u16,
    pub pid: u32,
    child: Option<Child>,
    log_path: PathBuf,
    stderr_path: PathBuf,
    /// How far `count` has read the log, and the lines seen so far.
    read_offset: u64,
    lines: usize,
}

/// What the sink received: Message-IDs (the `<…>` value) with how often each came.
#[derive(Debug, Default)]
pub struct Received {
    pub messages: usize,
    pub by_message_id: BTreeMap<String, usize>,
    pub recipients: usize,
    pub bytes: u64,
}

impl SmtpSink {
    pub async fn start(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .context("finding a free port for the SMTP server")?
            .port();
        std::fs::write(dir.join("bench_sink.py"), SINK_HANDLER)?;
        let log_path = dir.join(format!("smtp-{port}.log"));
        let stderr_path = dir.join(format!("smtp-{port}.stderr.log"));
        File::create(&log_path)?;
        let child = Command::new("/usr/bin/python3")
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
                "-c",
                "bench_sink.Sink",
            ])
            .arg(&log_path)
            .env("PYTHONPATH", dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&stderr_path)?)
            .spawn()
            .context(
                "starting /usr/bin/python3 -m aiosmtpd (Debian package python3-aiosmtpd; \
                 scripts/test installs it)",
            )?;
        let mut sink = Self {
            port,
            pid: child.id(),
            child: Some(child),
            log_path,
            stderr_path,
            read_offset: 0,
            lines: 0,
        };
        let started = Instant::now();
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok(sink);
            }
            if let Some(child) = sink.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                bail!(
                    "aiosmtpd exited during start-up ({status}):\n{}",
                    std::fs::read_to_string(&sink.stderr_path).unwrap_or_default()
                );
            }
            if started.elapsed() > Duration::from_secs(20) {
                bail!("aiosmtpd did not listen on 127.0.0.1:{port} within 20 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Messages accepted so far (reads only what was appended since the last call).
    pub fn count(&mut self) -> anyhow::Result<usize> {
        let mut f = File::open(&self.log_path)?;
        f.seek(SeekFrom::Start(self.read_offset))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)?;
        // Count complete lines only; a partly written one is read again next time.
        if let Some(last) = buf.iter().rposition(|&b| b == b'\n') {
            self.lines += buf[..=last].iter().filter(|&&b| b == b'\n').count();
            self.read_offset += last as u64 + 1;
        }
        Ok(self.lines)
    }

    /// Everything received so far.
    pub fn received(&self) -> anyhow::Result<Received> {
        let text = std::fs::read_to_string(&self.log_path)?;
        let mut r = Received::default();
        for line in text.lines() {
            let mut parts = line.split(' ');
            let mid = parts.next().unwrap_or("-");
            let rcpts: usize = parts.next().and_then(|v| v.parse().ok()).unwrap_or(0);
            let bytes: u64 = parts.next().and_then(|v| v.parse().ok()).unwrap_or(0);
            r.messages += 1;
            r.recipients += rcpts;
            r.bytes += bytes;
            *r.by_message_id.entry(mid.to_owned()).or_insert(0) += 1;
        }
        Ok(r)
    }

    pub fn stop(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The notification id in a Message-ID `<id@domain>` the service sets.
pub fn notification_id(message_id: &str) -> Option<uuid::Uuid> {
    let inner = message_id
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>');
    let (id, _domain) = inner.split_once('@')?;
    id.parse().ok()
}
