//! nginx from Debian, twice: as the servers behind every proxy (two
//! `server` blocks, the seed's `web1` and `web2`, answering a short body),
//! and as a proxy in front of them, the other proxy SREs compare with.
//! Each runs in the foreground on a generated file; stops on drop.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

/// One nginx master process with its workers.
pub struct Nginx {
    child: Child,
    dir: PathBuf,
}

/// The `events`/`http` preamble both files share: `workers` processes, no
/// logs, keep-alive clients kept as long as the run.
fn preamble(dir: &std::path::Path, workers: u32) -> String {
    format!(
        "worker_processes {workers};\ndaemon off;\npid {pid};\nerror_log stderr error;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n  access_log off;\n  keepalive_requests 1000000;\n  keepalive_timeout 60s;\n\
         \x20 client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
         \x20 fastcgi_temp_path {d}/fcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n",
        pid = dir.join("nginx.pid").display(),
        d = dir.display(),
    )
}

impl Nginx {
    /// The servers: each of `addrs` answers `200 ok` to everything.
    pub fn servers(addrs: &[SocketAddr], workers: u32) -> Result<Nginx> {
        let dir = super::workdir("nginx-servers")?;
        let mut conf = preamble(&dir, workers);
        for a in addrs {
            conf.push_str(&format!(
                "  server {{ listen {a} reuseport; location / {{ return 200 \"ok\\n\"; }} }}\n"
            ));
        }
        conf.push_str("}\n");
        Nginx::start(dir, &conf, addrs)
    }

    /// A proxy on `bind` balancing over `upstream` by round robin; with
    /// `keepalive`, idle server connections are kept (`keepalive 64`),
    /// otherwise each request closes its server connection, as HAProxy's
    /// `http-server-close`.
    pub fn proxy(
        bind: SocketAddr,
        upstream: &[SocketAddr],
        workers: u32,
        keepalive: bool,
    ) -> Result<Nginx> {
        let dir = super::workdir("nginx-proxy")?;
        let mut conf = preamble(&dir, workers);
        conf.push_str("  upstream web {\n");
        for a in upstream {
            conf.push_str(&format!("    server {a};\n"));
        }
        if keepalive {
            conf.push_str("    keepalive 64;\n");
        }
        let conn = if keepalive { "\"\"" } else { "close" };
        conf.push_str(&format!(
            "  }}\n  server {{ listen {bind} reuseport; location / {{ proxy_pass http://web; \
             proxy_http_version 1.1; proxy_set_header Connection {conn}; }} }}\n}}\n"
        ));
        Nginx::start(dir, &conf, &[bind])
    }

    fn start(dir: PathBuf, conf: &str, listens: &[SocketAddr]) -> Result<Nginx> {
        let file = dir.join("nginx.conf");
        std::fs::write(&file, conf)?;
        let log = std::fs::File::create(dir.join("nginx.log"))?;
        let child = Command::new("nginx")
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&file)
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .context("starting nginx (apt-get install nginx)")?;
        let mut n = Nginx { child, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !listens
            .iter()
            .all(|a| std::net::TcpStream::connect_timeout(a, Duration::from_millis(200)).is_ok())
        {
            if let Some(st) = n.child.try_wait()? {
                let log = std::fs::read_to_string(n.dir.join("nginx.log")).unwrap_or_default();
                bail!("nginx exited ({st}) on {}:\n{log}", file.display());
            }
            if Instant::now() > deadline {
                bail!("nginx not listening on {listens:?} within 10 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(n)
    }

    /// The master's pid (its workers are its children).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: nginx's fast stop (master and workers).
        // SAFETY: kill(2) on our own child; no pointers.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
