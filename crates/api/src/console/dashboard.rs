//! The dashboard (`/console/dashboard`): how the promise to answer in time is kept —
//! open, due this week and overdue now; over the last 30 and 90 days, the on-time rate,
//! the median time to close, and the requests by kind and channel and the refusals by
//! reason as bar charts drawn in inline SVG (no script).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, get, web};
use askama::Template;
use askama_web::WebTemplate;
use rightsdesk_core::Services;
use rightsdesk_core::dashboard::Window;

use super::{Chrome, Page, html, signed_in, status_of};

pub(super) fn router(cfg: &mut web::ServiceConfig) {
    cfg.service(dashboard);
}

/// The widest bar, in SVG units.
const BAR_WIDTH: f64 = 320.0;
/// One bar's height and the gap after it.
const BAR_HEIGHT: u32 = 18;
const BAR_GAP: u32 = 6;
/// Room for the labels left of the bars.
const LABEL_WIDTH: u32 = 190;

/// A horizontal bar chart.
struct Chart {
    /// The `id` of its heading (the SVG is labelled by it).
    id: String,
    title: &'static str,
    bars: Vec<Bar>,
    height: u32,
    width: u32,
    /// Where the bars start (after the labels), and their height.
    bar_x: u32,
    bar_height: u32,
}

struct Bar {
    label: String,
    value: u64,
    y: u32,
    /// The label's baseline.
    text_y: u32,
    width: u32,
    /// Where the value is written, after the bar.
    value_x: u32,
}

impl Chart {
    fn new(id: String, title: &'static str, values: &[(String, u64)]) -> Self {
        let max = values.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1) as f64;
        let bars: Vec<Bar> = values
            .iter()
            .enumerate()
            .map(|(i, (label, value))| {
                let y = i as u32 * (BAR_HEIGHT + BAR_GAP);
                let width = ((*value as f64 / max) * BAR_WIDTH).round() as u32;
                Bar {
                    label: label.clone(),
                    value: *value,
                    y,
                    text_y: y + BAR_HEIGHT - 4,
                    width: width.max(u32::from(*value > 0)),
                    value_x: LABEL_WIDTH + width + 6,
                }
            })
            .collect();
        Self {
            id,
            title,
            height: (bars.len() as u32 * (BAR_HEIGHT + BAR_GAP)).max(BAR_HEIGHT),
            width: LABEL_WIDTH + BAR_WIDTH as u32 + 60,
            bar_x: LABEL_WIDTH,
            bar_height: BAR_HEIGHT,
            bars,
        }
    }
}

/// One window (30 or 90 days) as the page shows it.
struct WindowView {
    days: u32,
    received: u64,
    answered: u64,
    on_time: u64,
    /// `87.5 %`, or `—` when nothing was answered.
    on_time_rate: String,
    /// The rate as the width of its bar (0–100).
    on_time_pct: u32,
    median_days: String,
    withdrawn_or_expired: u64,
    charts: Vec<Chart>,
}

#[derive(Template, WebTemplate)]
#[template(path = "console/dashboard.html")]
struct DashboardPage {
    chrome: Chrome,
    as_of: String,
    open: u64,
    due_this_week: u64,
    overdue: u64,
    windows: Vec<WindowView>,
}

fn window_view(chrome: &Chrome, w: Window) -> WindowView {
    let t = chrome.t;
    let pairs = |m: &std::collections::BTreeMap<String, u64>| {
        let mut v: Vec<(String, u64)> = m.iter().map(|(k, n)| (k.clone(), *n)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v
    };
    WindowView {
        days: w.days,
        received: w.received,
        answered: w.answered,
        on_time: w.on_time,
        on_time_rate: w
            .on_time_rate
            .map_or_else(|| "—".to_owned(), |r| format!("{:.1} %", r * 100.0)),
        on_time_pct: w.on_time_rate.map_or(0, |r| (r * 100.0).round() as u32),
        median_days: w
            .median_days_to_close
            .map_or_else(|| "—".to_owned(), |d| format!("{d:.1}")),
        withdrawn_or_expired: w.withdrawn_or_expired,
        charts: vec![
            Chart::new(format!("by-kind-{}", w.days), t.by_kind, &pairs(&w.by_kind)),
            Chart::new(
                format!("by-channel-{}", w.days),
                t.by_channel,
                &pairs(&w.by_channel),
            ),
            Chart::new(
                format!("refusals-{}", w.days),
                t.refusal_reasons,
                &pairs(&w.refusals),
            ),
        ],
    }
}

/// `/console/dashboard`.
#[get("/dashboard")]
async fn dashboard(req: HttpRequest, services: web::Data<Services>) -> Page {
    let (officer, csrf) = signed_in(&req, &services).await?;
    let chrome = Chrome::new(&req, &officer, csrf, "dashboard");
    let t = chrome.t;
    let d = match services.dashboard(&officer).await {
        Ok(d) => d,
        Err(e) => {
            let body = super::message_page(&chrome, &e.message);
            return Ok(html(&req, t, status_of(&e), body));
        }
    };
    let windows = d
        .windows
        .into_iter()
        .map(|w| window_view(&chrome, w))
        .collect();
    let body = DashboardPage {
        as_of: d.at.format("%Y-%m-%d %H:%M UTC").to_string(),
        open: d.open,
        due_this_week: d.due_this_week,
        overdue: d.overdue,
        windows,
        chrome,
    }
    .render()
    .unwrap_or_default();
    Ok(html(&req, t, StatusCode::OK, body))
}
