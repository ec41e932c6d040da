//! The DevTools-protocol connection: one WebSocket to the browser carrying
//! commands, their answers and events for every attached page (the
//! "flattened" sessions), with a deadline on every wait and the answers to
//! the browser's interception and login questions given as they arrive.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

/// One event the browser sent: `method` and `params`, and the page session
/// it belongs to (`None`: the browser itself).
#[derive(Debug, Clone)]
pub struct Event {
    pub session: Option<String>,
    pub method: String,
    pub params: Value,
}

/// A user name and password, given when a page's server asks for them.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

/// What one page answers to HTTP authentication challenges.
#[derive(Debug, Default)]
struct Login {
    credentials: Option<Credentials>,
    /// The requests already answered with the credentials: a second challenge
    /// for one of them means the server refused them.
    tried: HashSet<String>,
}

/// The WebSocket and what has arrived on it but not been asked for yet.
pub struct Conn {
    ws: WebSocket<TcpStream>,
    next_id: u64,
    events: VecDeque<Event>,
    logins: HashMap<String, Login>,
}

/// One message read: the answer to a command (its result or the browser's
/// error), or an event.
enum Incoming {
    Answer { id: u64, result: Result<Value> },
    Event(Event),
}

impl Conn {
    /// Opens the WebSocket at `url` over `stream` (already connected to its
    /// host and port).
    pub fn open(stream: TcpStream, url: &str) -> Result<Conn> {
        stream.set_nodelay(true)?;
        let (ws, _) = tungstenite::client(url, stream)
            .map_err(|e| anyhow!("WebSocket handshake with {url}: {e}"))?;
        Ok(Conn {
            ws,
            next_id: 1,
            events: VecDeque::new(),
            logins: HashMap::new(),
        })
    }

    /// Sends `method` with `params` (to page `session`, or to the browser)
    /// and waits up to `timeout` for its answer; events read meanwhile are
    /// kept for [`Self::wait_event`].
    pub fn call(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Value> {
        let id = self.send(session, method, params)?;
        let deadline = Instant::now() + timeout;
        loop {
            match self
                .next(deadline)
                .with_context(|| format!("waiting for {method}"))?
            {
                Incoming::Answer { id: got, result } if got == id => {
                    return result.with_context(|| format!("{method} failed"));
                }
                // The answer to a command sent without waiting (the Fetch ones).
                Incoming::Answer { .. } => {}
                Incoming::Event(event) => self.events.push_back(event),
            }
        }
    }

    /// The first event of `session` that `matches`, among those kept or
    /// arriving within `timeout`; it is taken, the others stay.
    pub fn wait_event(
        &mut self,
        session: Option<&str>,
        what: &str,
        matches: impl Fn(&Event) -> bool,
        timeout: Duration,
    ) -> Result<Event> {
        let ours = |e: &Event| e.session.as_deref() == session && matches(e);
        if let Some(i) = self.events.iter().position(ours) {
            return Ok(self.events.remove(i).expect("index from position"));
        }
        let deadline = Instant::now() + timeout;
        loop {
            match self
                .next(deadline)
                .with_context(|| format!("waiting for {what}"))?
            {
                Incoming::Event(event) if ours(&event) => return Ok(event),
                Incoming::Event(event) => self.events.push_back(event),
                Incoming::Answer { .. } => {}
            }
        }
    }

    /// Forgets the kept events of `session` named `method`, so that a wait
    /// that follows sees only new ones.
    pub fn forget(&mut self, session: Option<&str>, method: &str) {
        self.events
            .retain(|e| e.session.as_deref() != session || e.method != method);
    }

    /// How many kept events of `session` are named `method`.
    pub fn count(&self, session: Option<&str>, method: &str) -> usize {
        self.events
            .iter()
            .filter(|e| e.session.as_deref() == session && e.method == method)
            .count()
    }

    /// From now on, page `session` answers authentication challenges with
    /// `credentials` (once per request: if the server asks again, it cancels,
    /// as a user does after a refused password), or cancels them (`None`).
    pub fn set_login(&mut self, session: &str, credentials: Option<Credentials>) {
        self.logins.insert(
            session.to_owned(),
            Login {
                credentials,
                tried: HashSet::new(),
            },
        );
    }

    /// Stops answering for a page that is gone, and drops its kept events.
    pub fn forget_session(&mut self, session: &str) {
        self.logins.remove(session);
        self.events
            .retain(|e| e.session.as_deref() != Some(session));
    }

    fn send(&mut self, session: Option<&str>, method: &str, params: Value) -> Result<u64> {
        let id = self.next_id;
        self.next_id += 1;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        self.ws
            .send(Message::text(msg.to_string()))
            .with_context(|| format!("sending {method}"))?;
        Ok(id)
    }

    /// The next answer or event, by `deadline`. Interception and login
    /// questions are answered here and never returned: a page is stuck until
    /// they are, whatever its caller happens to be waiting for.
    fn next(&mut self, deadline: Instant) -> Result<Incoming> {
        loop {
            let text = self.read_text(deadline)?;
            let msg: Value = serde_json::from_str(&text)
                .with_context(|| format!("a DevTools message that is not JSON: {text:.200}"))?;
            if let Some(id) = msg["id"].as_u64() {
                let result = match msg.get("error") {
                    Some(err) => Err(anyhow!("the browser said: {err}")),
                    None => Ok(msg["result"].clone()),
                };
                return Ok(Incoming::Answer { id, result });
            }
            let event = Event {
                session: msg["sessionId"].as_str().map(str::to_owned),
                method: msg["method"].as_str().unwrap_or_default().to_owned(),
                params: msg["params"].clone(),
            };
            if !self.answer_fetch(&event)? {
                return Ok(Incoming::Event(event));
            }
        }
    }

    /// Answers `Fetch.requestPaused` (let it go) and `Fetch.authRequired`
    /// (the page's login); false if `event` is neither.
    fn answer_fetch(&mut self, event: &Event) -> Result<bool> {
        let Some(session) = event.session.as_deref() else {
            return Ok(false);
        };
        let request = event.params["requestId"].as_str().unwrap_or_default();
        let params = match event.method.as_str() {
            "Fetch.requestPaused" => json!({"requestId": request}),
            "Fetch.authRequired" => {
                let login = self.logins.entry(session.to_owned()).or_default();
                let response = match &login.credentials {
                    Some(c) if login.tried.insert(request.to_owned()) => json!({
                        "response": "ProvideCredentials",
                        "username": c.username,
                        "password": c.password,
                    }),
                    _ => json!({"response": "CancelAuth"}),
                };
                json!({"requestId": request, "authChallengeResponse": response})
            }
            _ => return Ok(false),
        };
        let method = match event.method.as_str() {
            "Fetch.requestPaused" => "Fetch.continueRequest",
            _ => "Fetch.continueWithAuth",
        };
        // Its answer is skipped by whoever reads next.
        self.send(Some(session), method, params)?;
        // Kept, so that a test can tell the server did ask.
        if method == "Fetch.continueWithAuth" {
            self.events.push_back(event.clone());
        }
        Ok(true)
    }

    /// The next text message, by `deadline`; pings are answered by tungstenite.
    fn read_text(&mut self, deadline: Instant) -> Result<String> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!("timed out");
            }
            self.ws.get_mut().set_read_timeout(Some(left))?;
            match self.ws.read() {
                Ok(Message::Text(t)) => return Ok(t.to_string()),
                Ok(Message::Close(frame)) => bail!("the browser closed the connection: {frame:?}"),
                Ok(_) => {}
                // A read timeout; tungstenite keeps any partial frame for the next read.
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(e).context("reading from the browser"),
            }
        }
    }
}
