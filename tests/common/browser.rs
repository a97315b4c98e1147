//! A real browser for the floor's screens: Debian's Chromium, headless, driven over WebDriver
//! by its chromedriver (the `chromium` and `chromium-driver` packages), one per screen — a TV
//! showing a line, a tablet at a workstation. Nothing it loads may leave the machine: its
//! background networking is off, and the pages' own policy allows only the gateway.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

/// How long a test waits for what a screen should show.
pub(crate) const SHOWN: Duration = Duration::from_secs(15);

pub(crate) struct Browser {
    pub(crate) client: Client,
    driver: Child,
    /// chromedriver's port, and the session to end there (None once ended).
    port: u16,
    session: Option<String>,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The session ends as `close` ends it — chromedriver quits its Chromium — also when a
        // test fails before `close`: killing chromedriver alone leaves Chromium running.
        if let Some(session) = self.session.take() {
            end_session(self.port, &session);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// `DELETE /session/<id>` to chromedriver, waiting (a while) for its answer.
fn end_session(port: u16, session: &str) {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let request = format!("DELETE /session/{session} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\nconnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_ok() {
        let _ = stream.read_to_end(&mut Vec::new());
    }
}

/// The character WebDriver types as the Enter key: a barcode scanner ends every code with it.
pub(crate) const ENTER: char = '\u{E007}';

impl Browser {
    /// A headless Chromium with a `width`×`height` window.
    pub(crate) async fn start(width: u32, height: u32) -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver runs (apt-get install chromium chromium-driver)");
        let profile = tempfile::tempdir().unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "chromedriver did not listen within 20 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let args = vec![
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-quic".into(),
            "--hide-scrollbars".into(),
            "--force-device-scale-factor=1".into(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({"binary": "/usr/bin/chromium", "args": args}),
        );
        let mut client = None;
        // chromedriver may still be settling its port the first time.
        for _ in 0..20 {
            match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(caps.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
            {
                Ok(c) => {
                    client = Some(c);
                    break;
                }
                Err(e) => {
                    eprintln!("chromedriver: {e}; trying again");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
        }
        let client = client.expect("a Chromium session");
        let session = client.session_id().await.ok().flatten();
        let browser = Browser {
            client,
            driver,
            port,
            session,
            _profile: profile,
        };
        browser.resize(width, height).await;
        browser
    }

    /// The page's own viewport is `width`×`height` (what the screenshots show).
    pub(crate) async fn resize(&self, width: u32, height: u32) {
        self.client.set_window_size(width, height).await.unwrap();
        // The window's frame, if any, is added to make the viewport exact.
        let inner = self
            .client
            .execute("return [window.innerWidth, window.innerHeight]", vec![])
            .await
            .unwrap();
        let (w, h) = (
            inner[0].as_u64().unwrap_or(0) as u32,
            inner[1].as_u64().unwrap_or(0) as u32,
        );
        if (w, h) != (width, height) && w > 0 && h > 0 {
            self.client
                .set_window_size(width + (width - w.min(width)), height + (height - h.min(height)))
                .await
                .unwrap();
        }
    }

    pub(crate) async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    /// The text of the first element `css` finds, if there is one now.
    pub(crate) async fn text(&self, css: &str) -> Option<String> {
        let found = self.client.find(Locator::Css(css)).await.ok()?;
        found.text().await.ok()
    }

    /// Waits until the first element `css` finds has a text `check` likes, and returns it.
    pub(crate) async fn wait_text(&self, css: &str, what: &str, check: impl Fn(&str) -> bool) -> String {
        let deadline = tokio::time::Instant::now() + SHOWN;
        loop {
            let text = self.text(css).await;
            if let Some(text) = text.as_deref().filter(|t| check(t)) {
                return text.to_string();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out after {SHOWN:?} waiting for {what} ({css} shows {text:?})"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until `css` finds an element, and returns it.
    pub(crate) async fn wait_for(&self, css: &str) -> Element {
        let deadline = tokio::time::Instant::now() + SHOWN;
        loop {
            if let Ok(found) = self.client.find(Locator::Css(css)).await {
                return found;
            }
            assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {css}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until `script` (a JavaScript expression) is true.
    pub(crate) async fn wait_until(&self, script: &str, what: &str) {
        let deadline = tokio::time::Instant::now() + SHOWN;
        loop {
            let value = self.client.execute(&format!("return !!({script})"), vec![]).await;
            if matches!(value, Ok(Value::Bool(true))) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out after {SHOWN:?} waiting for {what}: {script}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub(crate) async fn click(&self, css: &str) {
        self.wait_for(css).await.click().await.unwrap();
    }

    /// Types into whatever has the focus, as a keyboard or a barcode scanner does.
    pub(crate) async fn type_keys(&self, keys: &str) {
        let focused = self.client.active_element().await.unwrap();
        focused.send_keys(keys).await.unwrap();
    }

    /// A code scanned into the focused field: its digits, then Enter.
    pub(crate) async fn scan(&self, code: &str) {
        self.type_keys(&format!("{code}{ENTER}")).await;
    }

    pub(crate) async fn eval(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.unwrap()
    }

    /// A PNG of the page, written to `path` (its directory is made).
    pub(crate) async fn screenshot(&self, path: &std::path::Path) {
        let png = self.client.screenshot().await.unwrap();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, png).unwrap();
    }

    pub(crate) async fn close(mut self) {
        if self.session.take().is_some() {
            let _ = self.client.clone().close().await;
        }
    }
}

/// Where screenshots go: `$LINEGATE_SCREENS` (the README's pictures: `docs/screens`), else
/// under target/.
pub(crate) fn screens_dir() -> std::path::PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    match std::env::var_os("LINEGATE_SCREENS") {
        Some(dir) => root.join(dir),
        None => root.join("target/screens"),
    }
}
