//! Writes a sample bundle of N synthetic rows, verifies it, and prints the time taken and the peak
//! resident memory: the starting point for measuring the writer.
//!
//! ```text
//! cargo run --release -p rightsdesk-export --example bundle -- 1000000 /tmp/sample.zip [--encrypt]
//! ```

use std::path::PathBuf;
use std::time::Instant;

use chrono::Utc;
use rightsdesk_export::{
    BundleMeta, BundleWriter, CategoryInfo, ExportError, Identifier, IdentifierKind, Lang,
    SourceInfo, SourceStatus, generate_password, verify,
};
use serde_json::{Map, json};

fn main() -> Result<(), ExportError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rows: u64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let out = PathBuf::from(
        args.get(1)
            .cloned()
            .unwrap_or_else(|| "sample-bundle.zip".to_owned()),
    );
    let password = args
        .iter()
        .any(|a| a == "--encrypt")
        .then(generate_password);
    let work = std::env::temp_dir();

    let started = Instant::now();
    let mut writer = BundleWriter::create(
        &work,
        BundleMeta {
            reference: "PR-2026-000123".into(),
            request_kind: "copy".into(),
            subject_identifiers: vec![Identifier::new(IdentifierKind::Email, "li.lei@example.cn")],
            created_at: Utc::now(),
            language: Lang::ZhCn,
        },
    )?;
    writer.add_source(SourceInfo {
        name: "website".into(),
        display_name_zh: "官网".into(),
        display_name_en: "Website".into(),
        owner: "运维部 / Operations".into(),
        status: SourceStatus::Answered,
        categories: vec![CategoryInfo {
            key: "access_log".into(),
            title_zh: "访问日志及设备与网络信息".into(),
            title_en: "Access logs, device and network information".into(),
            purpose_zh: "保障网页安全稳定运行、排查故障、统计和优化服务体验".into(),
            purpose_en: "To keep the site secure and stable, troubleshoot, and measure and improve the service".into(),
            columns: vec!["time".into(), "ip".into(), "page".into()],
        }],
    })?;
    let mut record = Map::new();
    for i in 0..rows {
        record.insert(
            "time".into(),
            json!(format!("2026-02-{:02}T08:00:00Z", i % 28 + 1)),
        );
        record.insert(
            "ip".into(),
            json!(format!("10.{}.{}.{}", i >> 16 & 255, i >> 8 & 255, i & 255)),
        );
        record.insert("page".into(), json!(format!("/下载/产品手册/{}", i % 977)));
        record.insert(
            "agent".into(),
            json!("Mozilla/5.0 (Windows NT 10.0; Win64; x64)"),
        );
        writer.add_record("website", "access_log", &record)?;
    }
    let spooled = started.elapsed();
    let manifest = writer.finish(&out, password.as_ref())?;
    let written = started.elapsed();
    let report = verify(&out, password.as_ref().map(|p| p.expose()))?;
    let verified = started.elapsed();

    println!("rows            {rows}");
    println!(
        "bundle          {} ({} bytes)",
        out.display(),
        std::fs::metadata(&out)?.len()
    );
    println!("entries         {}", manifest.files.len() + 1);
    if let Some(p) = &password {
        println!("password        {}", p.expose());
    }
    println!("spooled in      {spooled:.2?}");
    println!("written in      {:.2?}", written - spooled);
    println!(
        "verified in     {:.2?} (ok: {})",
        verified - written,
        report.is_ok()
    );
    if let Ok(status) = std::fs::read_to_string("/proc/self/status")
        && let Some(line) = status.lines().find(|l| l.starts_with("VmHWM:"))
    {
        println!(
            "peak RSS        {}",
            line.trim_start_matches("VmHWM:").trim()
        );
    }
    Ok(())
}
