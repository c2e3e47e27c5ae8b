//! A real headless Chromium for the console's tests: Debian's `chromium`, driven through
//! `chromedriver` on a free loopback port with the W3C WebDriver protocol (JSON over
//! HTTP). Each browser has a fresh profile and never reaches beyond loopback.
//!
//! The protocol is spoken here with the suite's own `reqwest`, in the dozen calls the
//! tests use: the WebDriver crates turn on `serde_json`'s `preserve_order` for the whole
//! workspace, which would test the service with a JSON map it does not ship with.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::{TempDir, free_port};

/// The key of an element reference in WebDriver answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver process and one browser session in it; both end on drop.
pub struct Browser {
    http: reqwest::Client,
    /// `http://127.0.0.1:<port>/session/<id>`.
    session: String,
    chromedriver: Child,
    _profile: TempDir,
}

/// An element of the current page.
#[derive(Debug, Clone)]
pub struct Element(String);

impl Browser {
    /// Starts chromedriver and a headless Chromium.
    pub async fn start() -> Self {
        let port = free_port();
        let chromedriver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian chromium-driver; scripts/test installs it)");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        for _ in 0..200 {
            if http
                .get(format!("{base}/status"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = TempDir::new();
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--no-first-run".to_owned(),
            "--window-size=1280,900".to_owned(),
            format!("--user-data-dir={}", profile.0.display()),
        ];
        let answer: Value = http
            .post(format!("{base}/session"))
            .json(&json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args},
            }}}))
            .send()
            .await
            .expect("chromedriver answers")
            .json()
            .await
            .expect("JSON");
        let id = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("a browser session: {answer}"))
            .to_owned();
        Self {
            http,
            session: format!("{base}/session/{id}"),
            chromedriver,
            _profile: profile,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.session));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let answer: Value = req
            .send()
            .await
            .expect("chromedriver answers")
            .json()
            .await
            .expect("JSON");
        if answer["value"]["error"].is_string() {
            panic!("WebDriver {path}: {}", answer["value"]);
        }
        answer["value"].clone()
    }

    /// Opens `url` and waits for the page to load.
    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    /// The path of the current page.
    pub async fn path(&self) -> String {
        path_of(&self.url().await)
    }

    /// The current page's URL.
    pub async fn url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Waits (up to 5 s) until the current page's full URL satisfies `done` (a click that
    /// submits a form returns before the next page is there); returns the URL reached.
    pub async fn wait_for_url(&self, done: impl Fn(&str) -> bool) -> String {
        let mut url = self.url().await;
        for _ in 0..100 {
            if done(&url) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            url = self.url().await;
        }
        url
    }

    /// Waits (up to 5 s) until the current page's path is `want`; returns the path reached.
    pub async fn wait_for_path(&self, want: &str) -> String {
        path_of(&self.wait_for_url(|url| path_of(url) == want).await)
    }

    /// The current page's HTML.
    pub async fn source(&self) -> String {
        self.call(reqwest::Method::GET, "/source", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The first element matching the CSS `selector`.
    pub async fn find(&self, selector: &str) -> Element {
        let v = self
            .call(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": selector})),
            )
            .await;
        Element(v[ELEMENT].as_str().expect("an element").to_owned())
    }

    /// Every element matching the CSS `selector`.
    pub async fn find_all(&self, selector: &str) -> Vec<Element> {
        let v = self
            .call(
                reqwest::Method::POST,
                "/elements",
                Some(json!({"using": "css selector", "value": selector})),
            )
            .await;
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e[ELEMENT].as_str().map(|id| Element(id.to_owned())))
            .collect()
    }

    pub async fn click(&self, e: &Element) {
        self.call(
            reqwest::Method::POST,
            &format!("/element/{}/click", e.0),
            Some(json!({})),
        )
        .await;
    }

    /// Clicks `e` — a submit button or a link — and waits (up to 5 s) until the next page
    /// has loaded: the old document is marked first, and the wait ends when a document
    /// without the mark is complete.
    pub async fn click_and_wait(&self, e: &Element) {
        self.script("document.documentElement.dataset.rdOld = '1'; return true;")
            .await;
        self.click(e).await;
        for _ in 0..100 {
            let fresh = self
                .script(
                    "return document.readyState === 'complete' && !document.documentElement.dataset.rdOld;",
                )
                .await;
            if fresh == Value::Bool(true) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no new page after the click");
    }

    /// Runs `script` in the page and returns its value.
    pub async fn script(&self, script: &str) -> Value {
        let answer: Value = self
            .http
            .post(format!("{}/execute/sync", self.session))
            .json(&json!({"script": script, "args": []}))
            .send()
            .await
            .expect("chromedriver answers")
            .json()
            .await
            .expect("JSON");
        // A page that is being replaced may answer with an error: not there yet.
        answer["value"].clone()
    }

    /// Types `text` into an input.
    pub async fn type_text(&self, e: &Element, text: &str) {
        self.call(
            reqwest::Method::POST,
            &format!("/element/{}/value", e.0),
            Some(json!({ "text": text })),
        )
        .await;
    }

    pub async fn attribute(&self, e: &Element, name: &str) -> Option<String> {
        self.call(
            reqwest::Method::GET,
            &format!("/element/{}/attribute/{name}", e.0),
            None,
        )
        .await
        .as_str()
        .map(str::to_owned)
    }

    /// The text an element shows.
    pub async fn text(&self, e: &Element) -> String {
        self.call(
            reqwest::Method::GET,
            &format!("/element/{}/text", e.0),
            None,
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    /// The cookie `name` as the browser holds it: `{name, value, httpOnly, sameSite, …}`.
    pub async fn cookie(&self, name: &str) -> Value {
        self.call(reqwest::Method::GET, &format!("/cookie/{name}"), None)
            .await
    }

    /// Saves what the window shows as `docs/screenshots/{name}.png`, for the docs (on
    /// the SQLite run only, so that one run of the suite writes each picture once).
    pub async fn screenshot(&self, name: &str) {
        use base64::Engine as _;
        if crate::backend() != crate::Backend::Sqlite {
            return;
        }
        // The whole page: the window is made as tall as the document for the picture.
        let height = self
            .script("return document.documentElement.scrollHeight;")
            .await
            .as_u64()
            .map_or(900, |h| h + 120)
            .clamp(900, 4000);
        self.call(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({"width": 1280, "height": height})),
        )
        .await;
        let png = self.call(reqwest::Method::GET, "/screenshot", None).await;
        self.call(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({"width": 1280, "height": 900})),
        )
        .await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().expect("a base64 PNG"))
            .expect("base64");
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots");
        std::fs::create_dir_all(&dir).expect("docs/screenshots");
        std::fs::write(dir.join(format!("{name}.png")), bytes).expect("the screenshot is written");
    }

    /// Ends the session and the driver.
    pub async fn stop(mut self) {
        let _ = self.http.delete(&self.session).send().await;
        self.chromedriver.kill().ok();
        self.chromedriver.wait().ok();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.chromedriver.kill().ok();
        self.chromedriver.wait().ok();
    }
}

/// The path of `url` (`/console` of `http://127.0.0.1:8080/console?q=…`).
fn path_of(url: &str) -> String {
    let after_host = url.splitn(4, '/').nth(3).unwrap_or_default();
    format!(
        "/{}",
        after_host.split(['?', '#']).next().unwrap_or_default()
    )
}
