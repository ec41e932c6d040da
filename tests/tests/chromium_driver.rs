//! The headless-Chromium driver (`lb_tests::cdp`) against a tiny site served
//! here on loopback: a page behind HTTP basic authentication with a POST form
//! whose button leads, through a 303, back to the page. Proves the login
//! (accepted and refused), the click, the navigation that follows, the
//! screenshot, and that nothing of the browser outlives it.

use std::io::{BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd as _;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use lb_tests::cdp::{Browser, Credentials, processes_mentioning};
use lb_tests::http::read_head;

/// `admin:secret`, base64-encoded as basic authentication sends it.
const GOOD_AUTH: &str = "Basic YWRtaW46c2VjcmV0";
const CSRF: &str = "t0k3n";

/// What the site saw.
#[derive(Default)]
struct Seen {
    /// `Authorization` headers that were present but wrong.
    wrong_auth: Vec<String>,
    /// Bodies of the POSTs with the right credentials.
    posts: Vec<String>,
    /// The state the form's button sets.
    state: String,
}

/// The site: one thread per connection (the browser opens spare ones);
/// stops on drop.
struct Site {
    addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
    listener: Arc<TcpListener>,
    accept: Option<JoinHandle<()>>,
}

impl Site {
    fn start() -> Site {
        let listener = Arc::new(TcpListener::bind("127.0.0.1:0").expect("binding loopback"));
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Seen {
            state: "up".into(),
            ..Seen::default()
        }));
        let (l, s) = (listener.clone(), seen.clone());
        let accept = std::thread::spawn(move || {
            while let Ok((stream, _)) = l.accept() {
                let s = s.clone();
                std::thread::spawn(move || serve(stream, &s));
            }
        });
        Site {
            addr,
            seen,
            listener,
            accept: Some(accept),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        // Wakes the accept(2) the thread is blocked in (EINVAL), which ends its loop.
        // SAFETY: the descriptor belongs to the listener, alive here; no pointers.
        unsafe { libc::shutdown(self.listener.as_raw_fd(), libc::SHUT_RDWR) };
        let _ = self.accept.take().map(JoinHandle::join);
    }
}

/// Answers one request and closes.
fn serve(stream: TcpStream, seen: &Mutex<Seen>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let Ok(Some(head)) = read_head(&mut reader) else {
        return;
    };
    let header = |name: &str| {
        head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    };
    let length: u64 = header("content-length").map_or(0, |v| v.parse().unwrap());
    let mut body = String::new();
    let _ = reader.take(length).read_to_string(&mut body);
    let request_line = head.lines().next().unwrap_or_default().to_owned();
    let response = respond(&request_line, header("authorization"), body, seen);
    let _ = (&stream).write_all(response.as_bytes());
}

fn respond(request_line: &str, auth: Option<String>, body: String, seen: &Mutex<Seen>) -> String {
    let mut seen = seen.lock().unwrap();
    match auth {
        Some(a) if a == GOOD_AUTH => {}
        other => {
            seen.wrong_auth.extend(other);
            let page = "<html><head><title>refused</title></head><body>401 refused</body></html>";
            return answer(
                "401 Unauthorized",
                "WWW-Authenticate: Basic realm=\"driver test\"\r\n",
                page,
            );
        }
    }
    if request_line.starts_with("POST / ") {
        if body.contains(&format!("csrf={CSRF}")) && body.contains("action=drain") {
            seen.state = "drain".into();
        }
        seen.posts.push(body);
        return answer("303 See Other", "Location: /?done=1\r\n", "");
    }
    if !request_line.starts_with("GET / ") && !request_line.starts_with("GET /?") {
        return answer("404 Not Found", "", "not here");
    }
    let page = format!(
        "<html><head><title>driver test</title></head><body>\
         <p id=state>{}</p>\
         <form method=post class=admin action=/>\
         <input type=hidden name=csrf value={CSRF}>\
         <button type=submit name=action value=drain data-server=b1>Drain b1</button>\
         </form></body></html>",
        seen.state
    );
    answer("200 OK", "", &page)
}

fn answer(status: &str, headers: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\n{headers}Content-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn login(password: &str) -> Option<Credentials> {
    Some(Credentials {
        username: "admin".into(),
        password: password.into(),
    })
}

#[test]
fn a_refused_password_is_tried_once_and_the_401_page_shows() {
    let site = Site::start();
    let browser = Browser::launch().expect("starting chromium");

    let page = browser.new_page(login("wrong")).unwrap();
    page.navigate(&site.url("/")).unwrap();
    assert_eq!(page.status().unwrap(), 401);
    assert_eq!(page.title().unwrap(), "refused");
    assert_eq!(page.count("form").unwrap(), 0);
    // Asked, answered with the password, asked again, gave up: once, not a loop.
    assert_eq!(page.auth_challenges(), 2);
    assert_eq!(
        site.seen.lock().unwrap().wrong_auth,
        ["Basic YWRtaW46d3Jvbmc="],
        "admin:wrong, sent once"
    );
    drop(page);

    let anonymous = browser.new_page(None).unwrap();
    anonymous.navigate(&site.url("/")).unwrap();
    assert_eq!(anonymous.status().unwrap(), 401);
    assert_eq!(anonymous.auth_challenges(), 1);
    assert_eq!(site.seen.lock().unwrap().wrong_auth.len(), 1);
}

#[test]
fn a_login_a_click_and_the_page_after_the_303() {
    let site = Site::start();
    let browser = Browser::launch().expect("starting chromium");
    let page = browser.new_page(login("secret")).unwrap();
    page.navigate(&site.url("/")).unwrap();
    assert_eq!(page.status().unwrap(), 200);
    assert_eq!(page.title().unwrap(), "driver test");
    assert_eq!(page.text().unwrap().lines().next(), Some("up"));
    assert_eq!(
        page.attributes("button", "data-server").unwrap(),
        [Some("b1".into())]
    );

    page.click_and_wait("button[name=action][value=drain][data-server=b1]")
        .unwrap();
    assert_eq!(page.url().unwrap(), site.url("/?done=1"));
    assert_eq!(page.status().unwrap(), 200);
    assert_eq!(
        page.eval_as::<String>("document.getElementById('state').textContent")
            .unwrap(),
        "drain"
    );
    let seen = site.seen.lock().unwrap();
    assert_eq!(seen.posts, [format!("csrf={CSRF}&action=drain")]);
    assert!(seen.wrong_auth.is_empty(), "{:?}", seen.wrong_auth);
    drop(seen);
    assert!(page.click("#nothing").is_err());
    assert!(
        page.eval("throw new Error('boom')")
            .unwrap_err()
            .to_string()
            .contains("boom")
    );

    let dir = std::env::temp_dir().join(format!("lb-chromium-shot-{}", std::process::id()));
    let png = dir.join("page.png");
    page.screenshot(&png).unwrap();
    let bytes = std::fs::read(&png).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(bytes.len() > 1000, "a {}-byte PNG", bytes.len());
}

#[test]
fn nothing_of_the_browser_outlives_it() {
    let browser = Browser::launch().expect("starting chromium");
    let profile = browser.profile().to_owned();
    let page = browser.new_page(None).unwrap();
    page.navigate("about:blank").unwrap();
    drop(page);
    let mine = || processes_mentioning(&profile.to_string_lossy());
    assert!(
        mine().len() > 1,
        "the browser and its helpers: {:?}",
        mine()
    );
    drop(browser);
    assert_eq!(mine(), Vec::<u32>::new());
    assert!(!profile.exists(), "{} is left", profile.display());
}
