//! A real headless Chromium for the console's tests: Debian's `chromium`, driven through
//! `chromedriver` on a free loopback port (WebDriver, with thirtyfour). Each browser has
//! a fresh profile and never reaches beyond loopback.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use thirtyfour::prelude::*;

use crate::{TempDir, free_port};

/// A chromedriver process and one browser session in it; both end on drop.
pub struct Browser {
    pub driver: WebDriver,
    chromedriver: Child,
    _profile: TempDir,
}

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
        let url = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        for _ in 0..100 {
            if client
                .get(format!("{url}/status"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = TempDir::new();
        let mut caps = DesiredCapabilities::chrome();
        caps.set_binary("/usr/bin/chromium").expect("a binary");
        for arg in [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--window-size=1280,900",
            &format!("--user-data-dir={}", profile.0.display()),
        ] {
            caps.add_arg(arg).expect("an argument");
        }
        let driver = WebDriver::new(&url, caps)
            .await
            .expect("a headless Chromium session");
        Self {
            driver,
            chromedriver,
            _profile: profile,
        }
    }

    /// Ends the session and the driver.
    pub async fn stop(mut self) {
        self.driver.clone().quit().await.ok();
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
