//! `cargo xtask rig up|down`: the demo's lab left up to try lb by hand. Unlike
//! a test lab it must outlive this process, so the backends' HTTP servers are
//! processes of their own, the veth peer's pass program is pinned, and a
//! ready-to-run configuration is written next to them.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{Context as _, Result, bail};
use lb_dataplane::{Dataplane, Options};

use crate::{
    lab::{Lab, LabSpec, RIG_PREFIX},
    lb::MODE,
};

/// Where the rig keeps its configuration, state and socket.
pub const RIG_DIR: &str = "/run/lb-rig";
/// Where the agent pins its data path in the rig.
pub const RIG_BPFFS: &str = "/sys/fs/bpf/lb-rig";
/// Where the veth peer's pass program is pinned.
pub const RIG_PEER_PIN: &str = "/sys/fs/bpf/lb-rig-peer";

/// A backend: answers every HTTP request with its name (Python's standard library).
const HTTP_SERVER: &str = r#"
import http.server, sys
name = sys.argv[1].encode() + b"\n"
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(name)))
        self.send_header("X-Backend", sys.argv[1])
        self.end_headers()
        self.wfile.write(name)
    def log_message(self, *a): pass
class S(http.server.ThreadingHTTPServer):
    address_family = __import__("socket").AF_INET6
http.server.ThreadingHTTPServer.allow_reuse_address = True
S(("::", 80), H).serve_forever()
"#;

fn config(lab: &Lab, dir: &Path) -> String {
    format!(
        "# Written by `cargo xtask rig up`: the rig's LB, services and backends.\nagent:\n  bpffs: {RIG_BPFFS}\n  state_dir: {}\n  socket: {}\n{}",
        dir.join("state").display(),
        dir.join("lb.sock").display(),
        crate::demo::config_body(lab)
    )
}

/// Builds the rig, starts its backends and writes `lb.yaml`; prints what to try.
pub fn up(backends: usize) -> Result<()> {
    down()?;
    let lab = Lab::up_persistent(
        RIG_PREFIX,
        LabSpec {
            backends,
            client_aliases: 20,
            ipv6: true,
        },
    )?;
    for b in lab.backends() {
        Command::new("ip")
            .args([
                "netns",
                "exec",
                b.ns.name(),
                "python3",
                "-c",
                HTTP_SERVER,
                &b.name,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting the HTTP server of {} (needs python3)", b.name))?;
    }
    let mut dp = Dataplane::open(&Options {
        flow_table_size: 1024,
        ..Options::default()
    })?;
    let (sw, peer) = lab.lb_peer();
    let peer = peer.to_owned();
    crate::netns::NetNs::open(sw.name())?
        .try_run(|| dp.attach_pass_pinned(&peer, MODE, Path::new(RIG_PEER_PIN)))??;
    let dir = PathBuf::from(RIG_DIR);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {RIG_DIR}"))?;
    let cfg = dir.join("lb.yaml");
    std::fs::write(&cfg, config(&lab, &dir))
        .with_context(|| format!("writing {}", cfg.display()))?;
    let lb = lab.lb().ns.name();
    let client = lab.client().ns.name();
    println!("rig up: namespaces {}", lab.namespaces().join(" "));
    println!("config: {}", cfg.display());
    println!("try:");
    println!("  lb-ctl --netns {lb} agent --config {} &", cfg.display());
    println!("  export LB_SOCKET={}/lb.sock", RIG_DIR);
    println!("  lb-ctl status");
    println!("  ip netns exec {client} curl -s http://{}/", lab.vip4());
    println!(
        "  ip netns exec {client} curl -s --interface {} http://{}/",
        lab.client_aliases4()[0],
        lab.vip4()
    );
    println!("  lb-ctl backend drain web b2 && lb-ctl stats");
    println!("then: cargo xtask rig down");
    Ok(())
}

/// Stops an agent running on the rig, unpins everything and removes the namespaces.
pub fn down() -> Result<()> {
    let bin = crate::agent::lb_ctl_bin();
    let torn = Command::new(&bin)
        .args(["teardown", "--bpffs", RIG_BPFFS, "--socket"])
        .arg(Path::new(RIG_DIR).join("lb.sock"))
        .output();
    if let Ok(o) = &torn
        && !o.status.success()
    {
        bail!("lb-ctl teardown: {}", String::from_utf8_lossy(&o.stderr));
    }
    let _ = std::fs::remove_file(RIG_PEER_PIN);
    let gone = Lab::down(RIG_PREFIX)?;
    let _ = std::fs::remove_dir_all(RIG_DIR);
    if !gone.is_empty() {
        println!("rig down: removed {} namespaces", gone.len());
    }
    Ok(())
}
