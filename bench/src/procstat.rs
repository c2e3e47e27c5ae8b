//! Reading /proc: the server's resident memory and where the CPU time of a run went
//! (server process, this load generator, everything else — mostly PostgreSQL).

use std::sync::OnceLock;
use std::time::Duration;

use anyhow::Context;

/// Clock ticks per second of the times in /proc (`getconf CLK_TCK`, nearly always 100).
fn ticks_per_sec() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|t| *t > 0.0)
            .unwrap_or(100.0)
    })
}

/// Resident memory of a process: now and peak, in KiB.
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    pub rss_kib: u64,
    pub hwm_kib: u64,
}

impl Memory {
    pub fn rss_mib(&self) -> f64 {
        self.rss_kib as f64 / 1024.0
    }

    pub fn hwm_mib(&self) -> f64 {
        self.hwm_kib as f64 / 1024.0
    }
}

pub fn memory(pid: u32) -> anyhow::Result<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok(Memory {
        rss_kib: field("VmRSS:"),
        hwm_kib: field("VmHWM:"),
    })
}

/// Cumulative CPU counters at one instant, in clock ticks.
#[derive(Debug, Clone, Copy)]
pub struct CpuSnapshot {
    machine_busy: u64,
    machine_total: u64,
    server: u64,
    bench: u64,
}

/// Average CPU use over a run, in cores (2.0 = both cores of this machine busy).
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuSample {
    pub server_cores: f64,
    pub bench_cores: f64,
    /// Everything else that ran: PostgreSQL backends, the kernel's own threads.
    pub other_cores: f64,
    /// Share of the machine's CPU time left idle (0–1).
    pub idle: f64,
}

fn process_ticks(pid: &str) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // The command name is in parentheses and may hold spaces; fields follow the last ')'.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("unexpected /proc/<pid>/stat format")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line; `rest` starts at field 3.
    let utime: u64 = fields.get(11).context("no utime")?.parse()?;
    let stime: u64 = fields.get(12).context("no stime")?.parse()?;
    Ok(utime + stime)
}

pub fn snapshot(server_pid: u32) -> anyhow::Result<CpuSnapshot> {
    machine_snapshot(process_ticks(&server_pid.to_string())?)
}

/// A snapshot taken before the server process is spawned: it has used no CPU yet, so
/// a later [`snapshot`] of it, `.since()` this one, covers its whole life.
pub fn snapshot_before_spawn() -> anyhow::Result<CpuSnapshot> {
    machine_snapshot(0)
}

/// CPU time `pid` has used so far (user + system), in seconds.
pub fn process_cpu_secs(pid: u32) -> anyhow::Result<f64> {
    Ok(process_ticks(&pid.to_string())? as f64 / ticks_per_sec())
}

/// CPU time `pid` and its children that exited and were waited for have used so far
/// (user + system), in seconds: a server that forks a process per connection (Dovecot's
/// `imap`, PostgreSQL's backends) keeps the time of the closed ones this way.
pub fn process_tree_cpu_secs(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("unexpected /proc/<pid>/stat format")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime, stime, cutime, cstime: fields 14 to 17 of the line; `rest` starts at field 3.
    let mut ticks = 0u64;
    for i in 11..=14 {
        ticks += fields
            .get(i)
            .context("a short /proc/<pid>/stat")?
            .parse::<i64>()?
            .max(0) as u64;
    }
    Ok(ticks as f64 / ticks_per_sec())
}

fn machine_snapshot(server_ticks: u64) -> anyhow::Result<CpuSnapshot> {
    let stat = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    let cpu = stat
        .lines()
        .find(|l| l.starts_with("cpu "))
        .context("no cpu line in /proc/stat")?;
    let v: Vec<u64> = cpu
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let total: u64 = v.iter().sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    Ok(CpuSnapshot {
        machine_busy: total - idle,
        machine_total: total,
        server: server_ticks,
        bench: process_ticks("self")?,
    })
}

impl CpuSnapshot {
    pub fn since(&self, before: &CpuSnapshot, elapsed: Duration) -> CpuSample {
        let secs = elapsed.as_secs_f64().max(1e-9);
        let tps = ticks_per_sec();
        let cores = |t: u64| t as f64 / tps / secs;
        let busy = self.machine_busy.saturating_sub(before.machine_busy);
        let total = self.machine_total.saturating_sub(before.machine_total);
        let server = self.server.saturating_sub(before.server);
        let bench = self.bench.saturating_sub(before.bench);
        CpuSample {
            server_cores: cores(server),
            bench_cores: cores(bench),
            other_cores: cores(busy.saturating_sub(server + bench)),
            idle: if total == 0 {
                f64::NAN
            } else {
                1.0 - busy as f64 / total as f64
            },
        }
    }
}

/// Share of the machine's CPU left idle over `window` (0–1), measured before a phase
/// to see whether something else is running.
pub async fn machine_idle(window: std::time::Duration) -> anyhow::Result<f64> {
    let read = || -> anyhow::Result<(u64, u64)> {
        let stat = std::fs::read_to_string("/proc/stat")?;
        let cpu = stat
            .lines()
            .find(|l| l.starts_with("cpu "))
            .context("no cpu line in /proc/stat")?;
        let v: Vec<u64> = cpu
            .split_whitespace()
            .skip(1)
            .take(8)
            .map(|x| x.parse().unwrap_or(0))
            .collect();
        let total: u64 = v.iter().sum();
        let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
        Ok((idle, total))
    };
    let (i0, t0) = read()?;
    tokio::time::sleep(window).await;
    let (i1, t1) = read()?;
    Ok(if t1 > t0 {
        (i1 - i0) as f64 / (t1 - t0) as f64
    } else {
        f64::NAN
    })
}
