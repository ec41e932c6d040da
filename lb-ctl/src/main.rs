//! `lb-ctl`: see `lb-ctl --help`.

use std::{io, path::PathBuf, process::ExitCode};

use clap::{CommandFactory as _, Parser, Subcommand};
use lb_agent::agent::Outcome;
use lb_api::client::Client;
use lb_config::DEFAULT_BPFFS;
use lb_ctl::{
    cli::{
        self, Exit, Output, backend::BackendCommand, block_on, frontend::FrontendCommand,
        pool::PoolCommand, service::ServiceCommand, vrrp::VrrpCommand,
    },
    netns,
};

/// lb: an XDP load balancer (LVS-DR data path) with its control plane.
/// Where `--help` lists the options every command takes.
const GLOBAL: &str = "Global options";

#[derive(Parser)]
#[command(
    name = "lb-ctl",
    version,
    about,
    propagate_version = true,
    after_help = "Exit status: 0 done; 1 failed (no agent, agent error, timeout); \
                  2 bad input (usage, invalid configuration, unknown service, pool or backend, \
                  a change the agent refused)."
)]
struct Cli {
    /// Run in this network namespace (`ip netns` name or path), keeping the
    /// host's mount namespace so pins under /sys/fs/bpf stay shared.
    #[arg(long, global = true, value_name = "NAME", help_heading = GLOBAL)]
    netns: Option<String>,
    /// The agent's control socket [env: LB_SOCKET] [default: /run/lb/lb.sock].
    #[arg(long, global = true, value_name = "PATH", help_heading = GLOBAL)]
    socket: Option<PathBuf>,
    /// Output format.
    #[arg(short, long, global = true, value_enum, default_value_t = Output::Table, help_heading = GLOBAL)]
    output: Output,
    /// More log output (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, help_heading = GLOBAL)]
    verbose: u8,
    /// Less log output.
    #[arg(short, long, global = true, conflicts_with = "verbose", help_heading = GLOBAL)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the agent: own the data path, serve the control API, reload on SIGHUP.
    Agent {
        /// The configuration file.
        #[arg(short, long, default_value = "/etc/lb/lb.yaml")]
        config: PathBuf,
    },
    /// The agent's state: config and state files, interfaces, reloads, every pool's
    /// backends, every service.
    Status,
    /// Traffic counters per service and backend (ipvsadm -L -n --stats).
    Stats {
        /// Per-second rates instead of totals (ipvsadm --rate).
        #[arg(long)]
        rate: bool,
    },
    /// Services (address:port/protocol served from a pool): list, add, remove.
    #[command(subcommand)]
    Service(ServiceCommand),
    /// Pools (named groups of backends): list, add, remove.
    #[command(subcommand)]
    Pool(PoolCommand),
    /// A pool's backends: list, add, remove, enable, drain, maint, set-weight.
    #[command(subcommand)]
    Backend(BackendCommand),
    /// The L7 proxy's frontends: list (sessions, requests, responses, refusals).
    #[command(subcommand)]
    Frontend(FrontendCommand),
    /// Which backend a client lands on, and why.
    Explain {
        /// The service's name or ADDRESS:PORT/PROTOCOL.
        service: String,
        /// The client, `IP` or `IP:PORT` (`[IPv6]:PORT`); with a port, the flow table is checked too.
        #[arg(value_name = "CLIENT_IP[:PORT]", value_parser = cli::explain::parse_client)]
        client: String,
    },
    /// What the agent did and why (state changes, reloads, ...), oldest first.
    Events {
        /// Then print every new event as it happens, until the agent stops.
        #[arg(short, long)]
        follow: bool,
    },
    /// Make the agent re-read its configuration file; an invalid file changes nothing (exit 2).
    Reload,
    /// Load or adopt the data path, attach it, and make it match a config file; then exit
    /// (the data path keeps forwarding). Without an agent.
    Apply {
        /// The configuration file.
        #[arg(short, long, default_value = "/etc/lb/lb.yaml")]
        config: PathBuf,
    },
    /// Detach the XDP programs and remove every pinned map and link: through the agent
    /// (which then stops) if one runs, else directly.
    Teardown {
        /// Pin directory of the data path, when no agent runs.
        #[arg(long, default_value = DEFAULT_BPFFS)]
        bpffs: PathBuf,
    },
    /// VRRP instances (keepalived's vrrp_instance): status; release their addresses.
    #[command(subcommand)]
    Vrrp(VrrpCommand),
    /// Configuration file tools.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print a shell completion script to stdout.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Check this host for what lb needs and what is in its way, each problem with its fix.
    ///
    /// Kernel, BTF, bpffs, each interface's XDP support and attached program,
    /// rp_filter, memory, keepalived and HAProxy, sockets on lb's addresses, a
    /// second data-path writer; the commands direct-routing backends need.
    /// Exit status 0: no problem (warnings allowed); 1: a problem; 2: the
    /// configuration is unusable.
    Doctor {
        /// The configuration to check the host against.
        #[arg(short, long, default_value = "/etc/lb/lb.yaml")]
        config: PathBuf,
    },
    /// Write the manual pages (lb-ctl.8 and one per subcommand) into DIR.
    #[command(hide = true)]
    Manpages { dir: PathBuf },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Check a configuration file: every problem as file:line:col, exit 2 if any.
    Check {
        /// The file to check.
        file: PathBuf,
    },
    /// Print the reference configuration: every key, its default and what it replaces.
    Defaults,
}

/// Logs to stderr. The level: `LB_LOG` (an env-filter) if set, else `-q`/`-v`,
/// else `default` (the agent's `agent.log_level`; `warn` for commands). Under
/// systemd (`$JOURNAL_STREAM`) no colours and no timestamps: journald adds its own.
///
/// `extra` adds directives, e.g. the data path's aya-log records (their target
/// is the eBPF crate, `lb_ebpf`), which come at the level `agent.ebpf_log` asks.
fn init_logging(verbose: u8, quiet: bool, default: &str, extra: &str) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => default,
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("LB_LOG")
        .unwrap_or_else(|_| format!("{level}{extra}").into());
    let journal = std::env::var_os("JOURNAL_STREAM").is_some();
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(!journal && io::IsTerminal::is_terminal(&io::stderr()));
    if journal {
        fmt.without_time().init();
    } else {
        fmt.init();
    }
}

fn run(cli: Cli) -> anyhow::Result<Exit> {
    if let Some(ns) = &cli.netns {
        netns::enter_netns(ns)?;
    }
    let out = cli.output;
    let client = Client::new(cli::socket_path(cli.socket));
    match cli.command {
        Command::Agent { config } => Ok(match lb_agent::agent::run(&config)? {
            Outcome::Stopped => Exit::Ok,
            Outcome::InvalidConfig => Exit::BadInput,
            Outcome::Failed => Exit::Failed,
        }),
        Command::Status => block_on(cli::status::run(&client, out)),
        Command::Stats { rate } => block_on(cli::stats::run(&client, out, rate)),
        Command::Service(cmd) => block_on(cli::service::run(cmd, &client, out)),
        Command::Pool(cmd) => block_on(cli::pool::run(cmd, &client, out)),
        Command::Backend(cmd) => block_on(cli::backend::run(cmd, &client, out)),
        Command::Frontend(cmd) => block_on(cli::frontend::run(cmd, &client, out)),
        Command::Explain {
            service,
            client: who,
        } => block_on(cli::explain::run(&client, out, &service, &who)),
        Command::Events { follow } => block_on(cli::events::run(&client, out, follow)),
        Command::Reload => block_on(cli::reload::run(&client, out)),
        Command::Vrrp(cmd) => cli::vrrp::run(cmd, &client, out),
        Command::Apply { config } => cli::apply::run(&config, out),
        Command::Teardown { bpffs } => cli::teardown::run(&client, &bpffs, out),
        Command::Config(ConfigCommand::Check { file }) => Ok(cli::config_check::run(&file, out)),
        Command::Config(ConfigCommand::Defaults) => {
            print!("{}", lb_config::DEFAULTS_DOC);
            Ok(Exit::Ok)
        }
        Command::Doctor { config } => Ok(cli::doctor::run(&config, out)),
        Command::Manpages { dir } => {
            cli::manpages::write_all(Cli::command(), &dir)?;
            Ok(Exit::Ok)
        }
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "lb-ctl", &mut io::stdout());
            Ok(Exit::Ok)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The agent logs at its configured level; a config that does not load is
    // reported by the agent itself.
    let (default, extra) = match &cli.command {
        Command::Agent { config } => match lb_config::load(config) {
            Ok(c) => {
                let ebpf = c.config.agent.ebpf_log;
                let extra = if ebpf == lb_config::LogLevel::Off {
                    String::new()
                } else {
                    format!(",lb_ebpf={}", ebpf.as_str())
                };
                (c.config.agent.log_level.as_str(), extra)
            }
            Err(_) => ("info", String::new()),
        },
        _ => ("warn", String::new()),
    };
    init_logging(cli.verbose, cli.quiet, default, &extra);
    match run(cli) {
        Ok(e) => e.into(),
        Err(e) => {
            cli::print_error(&e);
            cli::exit_for(&e).into()
        }
    }
}
