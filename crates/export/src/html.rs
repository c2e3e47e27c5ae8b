//! `index.html`: the bundle as a person reads it, in Chinese and in English.
//!
//! Self-contained: inline CSS only, no script, no external resource, and a Content-Security-Policy
//! that forbids them anyway. Every value that comes from outside (identifiers, names, purposes,
//! reasons, file names) goes through [`html_escape`]; every link through [`href`].

use std::collections::HashMap;
use std::fmt::Write as _;

use chrono::{FixedOffset, Utc};

use crate::manifest::ManifestSource;
use crate::model::{BundleMeta, Lang, SourceStatus};
use crate::names::{href, html_escape as e};

const STYLE: &str = "body{font-family:system-ui,-apple-system,'PingFang SC','Microsoft YaHei',sans-serif;\
line-height:1.5;margin:0 auto;max-width:60rem;padding:1rem 1.5rem;color:#1a1a1a}\
nav{text-align:right}h1{margin-top:.5rem}h2{border-bottom:1px solid #ccc;padding-bottom:.2rem;margin-top:2rem}\
section.lang{margin-bottom:4rem}section.source{margin:1.5rem 0;padding:.5rem 1rem;border-left:4px solid #4a6fa5;background:#f7f9fc}\
section.source.none{border-left-color:#999}section.source.failed{border-left-color:#c0392b}\
table{border-collapse:collapse;width:100%;margin:.5rem 0}th,td{border:1px solid #d0d7de;padding:.3rem .5rem;text-align:left;vertical-align:top}\
th{background:#eef2f7}td.n{text-align:right;white-space:nowrap}table.facts th{width:14rem}\
.notice{padding:.8rem 1rem;background:#fff8e1;border:1px solid #f0c36d;font-weight:600}\
.key{color:#666;font-weight:normal;font-size:.85em}code{font-size:.9em}";

/// The words of one language.
struct Words {
    lang: Lang,
    id: &'static str,
    title: &'static str,
    lead: &'static str,
    reference: &'static str,
    kind: &'static str,
    created: &'static str,
    identifiers: &'static str,
    sources: &'static str,
    sources_lead: &'static str,
    owner: &'static str,
    status: &'static str,
    category: &'static str,
    purpose: &'static str,
    rows: &'static str,
    files: &'static str,
    attachments: &'static str,
    none: &'static str,
    empty: &'static str,
    no_sources: &'static str,
    verify_title: &'static str,
    verify_text: &'static str,
}

const ZH: Words = Words {
    lang: Lang::ZhCn,
    id: "zh-CN",
    title: "您的个人信息",
    lead: "本文件包是我们对您的个人信息权利请求的答复：它列出了我们查询过的系统，并包含在这些系统中找到的关于您的个人信息。",
    reference: "请求编号",
    kind: "请求类型",
    created: "生成时间",
    identifiers: "查询所依据的身份标识",
    sources: "数据来源",
    sources_lead: "每个数据类别都提供两种格式：JSON（便于程序读取和转移）和 CSV（可用 Excel 等表格软件打开）。",
    owner: "负责部门",
    status: "状态",
    category: "数据类别",
    purpose: "处理目的",
    rows: "记录数",
    files: "文件",
    attachments: "附件",
    none: "无",
    empty: "我们在这些系统中没有找到关于您的个人信息。",
    no_sources: "本次请求没有需要查询的系统。",
    verify_title: "如何核对本文件包",
    verify_text: "manifest.json 列出了本文件包中其他每个文件的路径、大小和 SHA-256 校验值。解压后可用 <code>sha256sum</code> 等工具计算各文件的校验值并与之比对，以确认文件完整、未被改动。",
};

const EN: Words = Words {
    lang: Lang::En,
    id: "en",
    title: "Your personal information",
    lead: "This bundle answers your personal-information rights request: it lists the systems we searched, and holds the personal data about you that we found in them.",
    reference: "Reference",
    kind: "Request",
    created: "Made",
    identifiers: "Identifiers the search was made with",
    sources: "Systems searched",
    sources_lead: "Each category of data comes in two formats: JSON (for programs, and to move the data elsewhere) and CSV (opens in Excel and other spreadsheets).",
    owner: "Responsible",
    status: "Status",
    category: "Category",
    purpose: "Purpose",
    rows: "Records",
    files: "Files",
    attachments: "Attachments",
    none: "none",
    empty: "We found no personal data about you in these systems.",
    no_sources: "No system had to be searched for this request.",
    verify_title: "How to check this bundle",
    verify_text: "manifest.json lists the path, size and SHA-256 of every other file in this bundle. After unpacking it, compute each file's SHA-256 (for example with <code>sha256sum</code>) and compare: equal values show the file is complete and unchanged.",
};

impl Words {
    fn zh(&self) -> bool {
        self.lang == Lang::ZhCn
    }
}

fn kind_label(kind: &str, zh: bool) -> String {
    let label = match (kind, zh) {
        ("access", true) => "查阅",
        ("access", false) => "access",
        ("copy", true) => "复制",
        ("copy", false) => "copy",
        ("portability", true) => "转移",
        ("portability", false) => "transfer (portability)",
        ("next_of_kin", true) => "近亲属行权",
        ("next_of_kin", false) => "exercise of rights by a next of kin",
        _ => return e(kind),
    };
    label.to_owned()
}

fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// What the page needs to know about the whole bundle.
struct Totals {
    rows: u64,
    attachments: usize,
    failed: usize,
}

/// Renders `index.html`. `sizes` maps attachment paths to their sizes.
pub(crate) fn render_index(
    meta: &BundleMeta,
    sources: &[ManifestSource],
    sizes: &HashMap<String, u64>,
) -> String {
    let totals = Totals {
        rows: sources
            .iter()
            .flat_map(|s| &s.categories)
            .map(|c| c.rows)
            .sum(),
        attachments: sources.iter().map(|s| s.attachments.len()).sum(),
        failed: sources
            .iter()
            .filter(|s| matches!(s.status, SourceStatus::Failed { .. }))
            .count(),
    };
    let order = match meta.language {
        Lang::ZhCn => [&ZH, &EN],
        Lang::En => [&EN, &ZH],
    };
    let mut html = String::with_capacity(16 * 1024);
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"{}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"referrer\" content=\"no-referrer\">\n\
         <title>{} · {} · {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <nav><a href=\"#zh-CN\">中文</a> · <a href=\"#en\">English</a></nav>\n<main>\n",
        order[0].id,
        e(&meta.reference),
        order[0].title,
        order[1].title,
    );
    for words in order {
        section(&mut html, words, meta, sources, sizes, &totals);
    }
    html.push_str("</main>\n</body>\n</html>\n");
    html
}

fn section(
    html: &mut String,
    w: &Words,
    meta: &BundleMeta,
    sources: &[ManifestSource],
    sizes: &HashMap<String, u64>,
    totals: &Totals,
) {
    let zh = w.zh();
    let beijing = FixedOffset::east_opt(8 * 3600).map(|tz| meta.created_at.with_timezone(&tz));
    let created = match (zh, beijing) {
        (true, Some(t)) => format!("{}（北京时间）", t.format("%Y-%m-%d %H:%M:%S")),
        (false, Some(t)) => format!(
            "{} UTC ({} Beijing time)",
            meta.created_at
                .with_timezone(&Utc)
                .format("%Y-%m-%d %H:%M:%S"),
            t.format("%H:%M:%S")
        ),
        (_, None) => meta.created_at.to_rfc3339(),
    };
    let _ = write!(
        html,
        "<section class=\"lang\" id=\"{id}\" lang=\"{id}\">\n<h1>{title}</h1>\n<p>{lead}</p>\n\
         <table class=\"facts\">\n<tr><th>{reference}</th><td>{r}</td></tr>\n\
         <tr><th>{kind}</th><td>{k}</td></tr>\n<tr><th>{created_h}</th><td>{created}</td></tr>\n\
         <tr><th>{identifiers}</th><td>",
        id = w.id,
        title = w.title,
        lead = w.lead,
        reference = w.reference,
        r = e(&meta.reference),
        kind = w.kind,
        k = kind_label(&meta.request_kind, zh),
        created_h = w.created,
        identifiers = w.identifiers,
    );
    if meta.subject_identifiers.is_empty() {
        html.push_str(w.none);
    } else {
        html.push_str("<ul>");
        for id in &meta.subject_identifiers {
            let _ = write!(
                html,
                "<li>{}{}{}</li>",
                id.kind.label(zh),
                if zh { "：" } else { ": " },
                e(&id.value)
            );
        }
        html.push_str("</ul>");
    }
    html.push_str("</td></tr>\n</table>\n");

    if totals.rows == 0 && totals.attachments == 0 {
        let text = if sources.is_empty() {
            w.no_sources.to_owned()
        } else if totals.failed == 0 {
            w.empty.to_owned()
        } else if zh {
            format!(
                "在完成查询的系统中，我们没有找到关于您的个人信息；另有 {} 个系统未能完成查询，详见下文。",
                totals.failed
            )
        } else {
            format!(
                "We found no personal data about you in the systems we could search; {} {} could not be searched (see below).",
                totals.failed,
                if totals.failed == 1 {
                    "system"
                } else {
                    "systems"
                }
            )
        };
        let _ = writeln!(html, "<p class=\"notice\">{text}</p>");
    }

    if !sources.is_empty() {
        let _ = writeln!(html, "<h2>{}</h2>\n<p>{}</p>", w.sources, w.sources_lead);
    }
    for source in sources {
        source_block(html, w, source, sizes);
    }
    let _ = writeln!(
        html,
        "<h2>{}</h2>\n<p>{}</p>\n</section>",
        w.verify_title, w.verify_text
    );
}

fn source_block(
    html: &mut String,
    w: &Words,
    source: &ManifestSource,
    sizes: &HashMap<String, u64>,
) {
    let zh = w.zh();
    let rows: u64 = source.categories.iter().map(|c| c.rows).sum();
    let files = source.attachments.len();
    let (class, status) = match &source.status {
        SourceStatus::Failed { reason } => (
            "source failed",
            if zh {
                format!("查询未能完成：{}。以下内容（如有）可能不完整。", e(reason))
            } else {
                format!(
                    "The search could not be completed: {}. What is shown below, if anything, may be incomplete.",
                    e(reason)
                )
            },
        ),
        _ if rows == 0 && files == 0 => (
            "source none",
            if zh {
                "已查询，未发现关于您的个人信息。".to_owned()
            } else {
                "Searched: no personal data about you was found.".to_owned()
            },
        ),
        _ => (
            "source",
            match (zh, files) {
                (true, 0) => format!("已查询，共 {rows} 条记录。"),
                (true, n) => format!("已查询，共 {rows} 条记录、{n} 个附件。"),
                (false, 0) => format!("Searched: {rows} {}.", plural(rows, "record", "records")),
                (false, n) => format!(
                    "Searched: {rows} {} and {n} {}.",
                    plural(rows, "record", "records"),
                    plural(n as u64, "attachment", "attachments")
                ),
            },
        ),
    };
    let (name, other) = if zh {
        (&source.display_name_zh, &source.display_name_en)
    } else {
        (&source.display_name_en, &source.display_name_zh)
    };
    let _ = write!(
        html,
        "<section class=\"{class}\">\n<h3>{} <span class=\"key\">{} · {}</span></h3>\n\
         <p>{}{}{}<br>{}{}{}</p>\n",
        e(name),
        e(other),
        e(&source.name),
        w.owner,
        if zh { "：" } else { ": " },
        e(&source.owner),
        w.status,
        if zh { "：" } else { ": " },
        status,
    );
    if !source.categories.is_empty() {
        let _ = write!(
            html,
            "<table>\n<thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead>\n<tbody>\n",
            w.category, w.purpose, w.rows, w.files
        );
        for c in &source.categories {
            let (title, purpose) = if zh {
                (&c.title_zh, &c.purpose_zh)
            } else {
                (&c.title_en, &c.purpose_en)
            };
            let links = match (&c.json, &c.csv) {
                (Some(json), Some(csv)) => format!(
                    "<a href=\"{}\">JSON</a> · <a href=\"{}\">CSV</a>",
                    e(&href(json)),
                    e(&href(csv))
                ),
                _ => w.none.to_owned(),
            };
            let _ = writeln!(
                html,
                "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td>{links}</td></tr>",
                e(title),
                e(purpose),
                c.rows
            );
        }
        html.push_str("</tbody>\n</table>\n");
    }
    if !source.attachments.is_empty() {
        let _ = write!(html, "<h4>{}</h4>\n<ul>\n", w.attachments);
        for path in &source.attachments {
            let shown = path.rsplit('/').next().unwrap_or(path);
            let size = sizes.get(path).copied().unwrap_or(0);
            let _ = writeln!(
                html,
                "<li><a href=\"{}\">{}</a> ({})</li>",
                e(&href(path)),
                e(shown),
                human_size(size)
            );
        }
        html.push_str("</ul>\n");
    }
    html.push_str("</section>\n");
}

fn plural(n: u64, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 { one } else { many }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_a_file_manager() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1536), "1.5 KB");
        assert_eq!(human_size(5 * 1024 * 1024), "5.0 MB");
    }

    #[test]
    fn known_kinds_are_named_and_others_escaped() {
        assert_eq!(kind_label("copy", true), "复制");
        assert_eq!(kind_label("portability", false), "transfer (portability)");
        assert_eq!(kind_label("<b>", false), "&lt;b&gt;");
    }
}
