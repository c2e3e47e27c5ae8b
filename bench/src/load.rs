//! The load generator: a minimal HTTP/1.1 keep-alive client (one connection per
//! simulated client, like wrk) and a closed-loop runner that records every latency.
//!
//! A hand-written client keeps the generator's own CPU cost small: server, database
//! and generator share the same two cores, so every microsecond spent here is taken
//! from the thing being measured.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::procstat::CpuSample;

/// One response: status and body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A keep-alive connection that reconnects when the server closed it.
pub struct Conn {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
}

impl Conn {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            stream: None,
            buf: Vec::with_capacity(64 * 1024),
        }
    }

    /// Sends one complete request (head and body) and reads the whole response.
    pub async fn roundtrip(&mut self, request: &[u8]) -> anyhow::Result<Response> {
        // A kept-alive connection the server has since closed fails before any byte
        // of the answer arrives; that request is sent again once on a new connection.
        let reused = self.stream.is_some();
        match self.try_roundtrip(request).await {
            Ok(r) => Ok(r),
            Err(RoundtripError::BeforeAnswer(_)) if reused => {
                self.stream = None;
                self.try_roundtrip(request).await.map_err(Into::into)
            }
            Err(e) => {
                self.stream = None;
                Err(e.into())
            }
        }
    }

    async fn try_roundtrip(&mut self, request: &[u8]) -> Result<Response, RoundtripError> {
        if self.stream.is_none() {
            let s = TcpStream::connect(self.addr)
                .await
                .map_err(|e| RoundtripError::BeforeAnswer(e.into()))?;
            s.set_nodelay(true)
                .map_err(|e| RoundtripError::BeforeAnswer(e.into()))?;
            self.stream = Some(s);
        }
        let Some(stream) = self.stream.as_mut() else {
            return Err(RoundtripError::BeforeAnswer(anyhow::anyhow!(
                "no connection"
            )));
        };
        stream
            .write_all(request)
            .await
            .map_err(|e| RoundtripError::BeforeAnswer(e.into()))?;
        self.buf.clear();
        let (status, head_len, body_len, close) = loop {
            let n = read_more(stream, &mut self.buf).await.map_err(|e| {
                if self.buf.is_empty() {
                    RoundtripError::BeforeAnswer(e)
                } else {
                    RoundtripError::During(e)
                }
            })?;
            if n == 0 {
                let e = anyhow::anyhow!("the server closed the connection");
                return Err(if self.buf.is_empty() {
                    RoundtripError::BeforeAnswer(e)
                } else {
                    RoundtripError::During(e)
                });
            }
            if let Some(head) = parse_head(&self.buf).map_err(RoundtripError::During)? {
                break head;
            }
        };
        let total = head_len + body_len;
        while self.buf.len() < total {
            let n = read_more(stream, &mut self.buf)
                .await
                .map_err(RoundtripError::During)?;
            if n == 0 {
                return Err(RoundtripError::During(anyhow::anyhow!(
                    "the server closed the connection mid-body"
                )));
            }
        }
        let body = self.buf[head_len..total].to_vec();
        if close {
            self.stream = None;
        }
        Ok(Response { status, body })
    }
}

enum RoundtripError {
    /// Nothing of the answer arrived: safe to send again on a fresh connection.
    BeforeAnswer(anyhow::Error),
    During(anyhow::Error),
}

impl From<RoundtripError> for anyhow::Error {
    fn from(e: RoundtripError) -> Self {
        match e {
            RoundtripError::BeforeAnswer(e) | RoundtripError::During(e) => e,
        }
    }
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> anyhow::Result<usize> {
    buf.reserve(16 * 1024);
    Ok(stream.read_buf(buf).await?)
}

/// `(status, head length, body length, connection: close)` once the head is complete.
fn parse_head(buf: &[u8]) -> anyhow::Result<Option<(u16, usize, usize, bool)>> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(buf)? {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => return Ok(None),
    };
    let status = resp.code.context("no status code")?;
    let mut body_len = None;
    let mut close = false;
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            body_len = Some(std::str::from_utf8(h.value)?.trim().parse::<usize>()?);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            bail!("chunked responses are not supported by the bench client");
        } else if h.name.eq_ignore_ascii_case("connection") {
            close = h.value.eq_ignore_ascii_case(b"close");
        }
    }
    // Every response this service sends on these routes has a known length.
    Ok(Some((status, head_len, body_len.unwrap_or(0), close)))
}

/// A GET request's bytes.
pub fn get(port: u16, path_and_query: &str, bearer: Option<&str>) -> Vec<u8> {
    let auth = bearer
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    get_with(port, path_and_query, &auth)
}

/// A GET request of a console page: the access token as the console's session cookie
/// (`rightsdesk_session`) instead of an `Authorization` header.
pub fn get_with_session(port: u16, path_and_query: &str, session: &str) -> Vec<u8> {
    get_with(
        port,
        path_and_query,
        &format!("Cookie: rightsdesk_session={session}\r\n"),
    )
}

/// A GET request's bytes with `headers` (complete lines, each ending in CRLF).
fn get_with(port: u16, path_and_query: &str, headers: &str) -> Vec<u8> {
    format!("GET {path_and_query} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{headers}\r\n").into_bytes()
}

/// A POST request with a JSON body and, optionally, an `Idempotency-Key`.
pub fn post_json(
    port: u16,
    path: &str,
    body: &str,
    bearer: Option<&str>,
    idempotency_key: Option<&str>,
) -> Vec<u8> {
    let auth = bearer
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let key = idempotency_key
        .map(|k| format!("Idempotency-Key: {k}\r\n"))
        .unwrap_or_default();
    format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n{auth}{key}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Builds the request a client sends next: `(client number, its request number)`.
pub type RequestMaker = Arc<dyn Fn(usize, u64) -> Vec<u8> + Send + Sync>;

/// What one timed run measured.
#[derive(Debug, Clone)]
pub struct RunResult {
    pub concurrency: usize,
    pub elapsed: Duration,
    pub ok: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    /// Latencies of the successful requests, sorted, in microseconds.
    pub latencies_us: Vec<u32>,
    pub cpu: CpuSample,
}

impl RunResult {
    pub fn throughput(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    pub fn mean_ms(&self) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let sum: u64 = self.latencies_us.iter().map(|&v| u64::from(v)).sum();
        sum as f64 / self.latencies_us.len() as f64 / 1000.0
    }

    /// Share of the summed latency spent in requests slower than `ms` (0–1): how much
    /// of the time rare stalls take.
    pub fn share_slower_than(&self, ms: f64) -> f64 {
        let limit = (ms * 1000.0) as u32;
        let total: u64 = self.latencies_us.iter().map(|&v| u64::from(v)).sum();
        let slow: u64 = self
            .latencies_us
            .iter()
            .filter(|&&v| v > limit)
            .map(|&v| u64::from(v))
            .sum();
        if total == 0 {
            0.0
        } else {
            slow as f64 / total as f64
        }
    }

    /// The latency below which `q` (0–1) of the requests finished, in milliseconds
    /// (nearest-rank).
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let rank = ((q * self.latencies_us.len() as f64).ceil() as usize).max(1);
        let i = rank.min(self.latencies_us.len()) - 1;
        f64::from(self.latencies_us[i]) / 1000.0
    }

    pub fn max_ms(&self) -> f64 {
        self.latencies_us
            .last()
            .map_or(f64::NAN, |v| f64::from(*v) / 1000.0)
    }
}

/// When a run ends.
#[derive(Debug, Clone, Copy)]
enum Until {
    /// At this instant (requests under way finish).
    Deadline(Instant),
    /// Once this many requests were sent, across all clients.
    Sent(u64),
}

/// Runs `concurrency` closed-loop clients for `duration`: each sends its next request
/// as soon as the previous answer arrived. Only answers with `expect` status count.
pub async fn run(
    addr: SocketAddr,
    concurrency: usize,
    duration: Duration,
    expect: u16,
    make: RequestMaker,
    server_pid: u32,
) -> anyhow::Result<RunResult> {
    let until = Until::Deadline(Instant::now() + duration);
    run_until(addr, concurrency, until, expect, make, server_pid).await
}

/// Like [`run`], but sends exactly `total` requests (spread over the clients as they
/// become free) instead of running for a time.
pub async fn run_count(
    addr: SocketAddr,
    concurrency: usize,
    total: u64,
    expect: u16,
    make: RequestMaker,
    server_pid: u32,
) -> anyhow::Result<RunResult> {
    run_until(
        addr,
        concurrency,
        Until::Sent(total),
        expect,
        make,
        server_pid,
    )
    .await
}

async fn run_until(
    addr: SocketAddr,
    concurrency: usize,
    until: Until,
    expect: u16,
    make: RequestMaker,
    server_pid: u32,
) -> anyhow::Result<RunResult> {
    let cpu_before = crate::procstat::snapshot(server_pid)?;
    let started = Instant::now();
    let sent = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::with_capacity(concurrency);
    for client in 0..concurrency {
        let make = make.clone();
        let sent = sent.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::new(addr);
            let mut lat = Vec::with_capacity(16 * 1024);
            let mut errors = 0u64;
            let mut first_error = None;
            let mut seq = 0u64;
            loop {
                let more = match until {
                    Until::Deadline(deadline) => Instant::now() < deadline,
                    Until::Sent(total) => sent.fetch_add(1, Ordering::Relaxed) < total,
                };
                if !more {
                    break;
                }
                let req = make(client, seq);
                seq += 1;
                let t = Instant::now();
                let res = conn.roundtrip(&req).await;
                let us = t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
                match res {
                    Ok(r) if r.status == expect => lat.push(us),
                    Ok(r) => {
                        errors += 1;
                        first_error.get_or_insert_with(|| format!("{} {}", r.status, r.text()));
                    }
                    Err(e) => {
                        errors += 1;
                        first_error.get_or_insert_with(|| format!("{e:#}"));
                        // Do not spin on a dead server.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            (lat, errors, first_error)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    for t in tasks {
        let (lat, e, fe) = t.await.context("a load task panicked")?;
        latencies.extend(lat);
        errors += e;
        if first_error.is_none() {
            first_error = fe;
        }
    }
    let elapsed = started.elapsed();
    let cpu = crate::procstat::snapshot(server_pid)?.since(&cpu_before, elapsed);
    latencies.sort_unstable();
    Ok(RunResult {
        concurrency,
        elapsed,
        ok: latencies.len() as u64,
        errors,
        first_error,
        latencies_us: latencies,
        cpu,
    })
}
