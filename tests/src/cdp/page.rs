//! One page (tab) of the browser, driven as a user would: go to a URL, read
//! the document, click, wait for the page that follows, take a screenshot.

use std::path::Path;

use anyhow::{Context as _, Result, bail};
use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::TIMEOUT;
use super::browser::Browser;

/// The widest screenshot [`Page::screenshot`] takes, in CSS pixels.
pub const MAX_SHOT_WIDTH: u64 = 4096;

/// A page in a browser context of its own; closed, with its context, on drop.
pub struct Page<'b> {
    browser: &'b Browser,
    context: String,
    target: String,
    session: String,
}

impl<'b> Page<'b> {
    pub(super) fn new(
        browser: &'b Browser,
        context: String,
        target: String,
        session: String,
    ) -> Self {
        Page {
            browser,
            context,
            target,
            session,
        }
    }

    /// Page events (loads), and every request of the page paused for
    /// [`super::conn::Conn`] to answer: that is how the browser hands us its
    /// HTTP authentication challenges.
    pub(super) fn enable(&self) -> Result<()> {
        self.call("Page.enable", json!({}))?;
        self.call(
            "Fetch.enable",
            json!({"handleAuthRequests": true, "patterns": [{"urlPattern": "*"}]}),
        )?;
        Ok(())
    }

    /// Goes to `url` and waits for its load event. A page the server
    /// answered with an error status is loaded all the same (see
    /// [`Self::status`]); only a failure to get any answer is an error.
    pub fn navigate(&self, url: &str) -> Result<()> {
        self.forget_loads();
        let nav = self.call("Page.navigate", json!({"url": url}))?;
        if let Some(err) = nav["errorText"].as_str().filter(|e| !e.is_empty()) {
            bail!("navigating to {url}: {err}");
        }
        self.wait_load()
            .with_context(|| format!("navigating to {url}"))
    }

    /// Clicks the element `selector` finds (`element.click()`, which submits
    /// a form from its button as a user's click does) and waits for the page
    /// that loads next.
    pub fn click_and_wait(&self, selector: &str) -> Result<()> {
        self.forget_loads();
        self.click(selector)?;
        self.wait_load()
            .with_context(|| format!("the page after clicking {selector}"))
    }

    /// Clicks the element `selector` finds; an error if it finds none.
    pub fn click(&self, selector: &str) -> Result<()> {
        let sel = json!(selector);
        let js = format!(
            "(() => {{ const e = document.querySelector({sel}); if (!e) return false; e.click(); return true; }})()"
        );
        if !self.eval_as::<bool>(&js)? {
            bail!("no element matches {selector} at {}", self.url()?);
        }
        Ok(())
    }

    /// How many elements `selector` finds.
    pub fn count(&self, selector: &str) -> Result<usize> {
        let sel = json!(selector);
        self.eval_as(&format!("document.querySelectorAll({sel}).length"))
    }

    /// `attribute` of each element `selector` finds, in document order
    /// (`null` where an element lacks it).
    pub fn attributes(&self, selector: &str, attribute: &str) -> Result<Vec<Option<String>>> {
        let (sel, attr) = (json!(selector), json!(attribute));
        self.eval_as(&format!(
            "Array.from(document.querySelectorAll({sel}), e => e.getAttribute({attr}))"
        ))
    }

    /// The document's title.
    pub fn title(&self) -> Result<String> {
        self.eval_as("document.title")
    }

    /// The document's URL.
    pub fn url(&self) -> Result<String> {
        self.eval_as("location.href")
    }

    /// The visible text of the document.
    pub fn text(&self) -> Result<String> {
        self.eval_as("document.body ? document.body.innerText : ''")
    }

    /// The HTTP status the document was served with (the browser's
    /// navigation timing entry).
    pub fn status(&self) -> Result<u16> {
        self.eval_as("performance.getEntriesByType('navigation')[0].responseStatus")
    }

    /// How many HTTP authentication challenges this page has answered so far
    /// (as of the last thing waited for).
    pub fn auth_challenges(&self) -> usize {
        self.browser
            .conn
            .borrow()
            .count(Some(&self.session), "Fetch.authRequired")
    }

    /// Evaluates `js` in the page and returns its value (promises awaited);
    /// an exception it throws is an error quoting it.
    pub fn eval(&self, js: &str) -> Result<Value> {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": js, "returnByValue": true, "awaitPromise": true}),
        )?;
        if let Some(ex) = r.get("exceptionDetails") {
            let what = ex["exception"]["description"]
                .as_str()
                .or(ex["text"].as_str())
                .unwrap_or("an exception");
            bail!("evaluating {js:.120}: {what}");
        }
        Ok(r["result"]["value"].clone())
    }

    /// [`Self::eval`], its value read as a `T`.
    pub fn eval_as<T: DeserializeOwned>(&self, js: &str) -> Result<T> {
        let v = self.eval(js)?;
        serde_json::from_value(v.clone())
            .with_context(|| format!("evaluating {js:.120}: unexpected value {v}"))
    }

    /// Writes a PNG of the whole page to `path`: the window is first widened
    /// (up to [`MAX_SHOT_WIDTH`]) so that a table in a scrolling box shows
    /// whole, and the shot is as long as the page.
    pub fn screenshot(&self, path: &Path) -> Result<()> {
        // The window, wider by the most any box hides to its right.
        let widest = "innerWidth + Math.max(0, ...Array.from(document.querySelectorAll('*'), \
            e => e.scrollWidth - e.clientWidth))";
        let width = self.eval_as::<u64>(widest)?.min(MAX_SHOT_WIDTH);
        let metrics = json!({"width": width, "height": 0, "deviceScaleFactor": 1, "mobile": false});
        self.call("Emulation.setDeviceMetricsOverride", metrics)?;
        let size = &self.call("Page.getLayoutMetrics", json!({}))?["cssContentSize"];
        let clip = json!({
            "x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1,
        });
        let shot = self.call(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true, "clip": clip}),
        );
        self.call("Emulation.clearDeviceMetricsOverride", json!({}))?;
        let r = shot?;
        let data = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().context("a screenshot without data")?)
            .context("a screenshot that is not base64")?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(path, data).with_context(|| format!("writing {}", path.display()))
    }

    fn call(&self, method: &str, params: Value) -> Result<Value> {
        self.browser
            .conn
            .borrow_mut()
            .call(Some(&self.session), method, params, TIMEOUT)
            .with_context(|| self.browser.describe())
    }

    fn forget_loads(&self) {
        self.browser
            .conn
            .borrow_mut()
            .forget(Some(&self.session), "Page.loadEventFired");
    }

    fn wait_load(&self) -> Result<()> {
        self.browser
            .conn
            .borrow_mut()
            .wait_event(
                Some(&self.session),
                "the load event",
                |e| e.method == "Page.loadEventFired",
                TIMEOUT,
            )
            .with_context(|| self.browser.describe())?;
        Ok(())
    }
}

impl Drop for Page<'_> {
    fn drop(&mut self) {
        // Best effort: the browser may be gone already.
        let _ = self
            .browser
            .call("Target.closeTarget", json!({"targetId": self.target}));
        let _ = self.browser.call(
            "Target.disposeBrowserContext",
            json!({"browserContextId": self.context}),
        );
        self.browser.conn.borrow_mut().forget_session(&self.session);
    }
}
