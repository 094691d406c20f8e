//! `tern`: the daemon and its command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use tern::cli::{self, Endpoint};
use tern::config::{Config, DEFAULT_PATH};
use tern::status::{AdjRouteView, PeerView, RouteView};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "tern",
    version,
    about = "BGP speaker and route-policy daemon for Kubernetes nodes running Cilium"
)]
struct Args {
    /// Configuration file.
    #[arg(long, short, global = true, default_value = DEFAULT_PATH)]
    config: PathBuf,
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Log level or filter (RUST_LOG syntax), e.g. "info" or "tern=debug".
    #[arg(long, global = true, default_value = "info")]
    log_level: String,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Copy, Clone, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon (the default).
    Run,
    /// Validate a configuration file and report every error as file:line:col.
    CheckConfig {
        /// The file to check (default: --config).
        path: Option<PathBuf>,
    },
    /// Show the state of a running daemon.
    Show {
        #[command(subcommand)]
        what: Show,
        /// Print the API's JSON instead of a table.
        #[arg(long, global = true)]
        json: bool,
        /// API address or Unix socket (default: from the configuration).
        #[arg(long, global = true)]
        api: Option<String>,
    },
    /// Make a running daemon re-read its configuration (like SIGHUP).
    Reload {
        #[arg(long)]
        api: Option<String>,
    },
    /// Drain the node (RFC 8326 graceful shutdown): every route goes out
    /// again with the GRACEFUL_SHUTDOWN community and the lowest
    /// preference, so traffic moves to other nodes; kept across restarts
    /// until `tern undrain`.
    Drain {
        #[arg(long)]
        api: Option<String>,
    },
    /// End a drain: routes go out as usual.
    Undrain {
        #[arg(long)]
        api: Option<String>,
    },
    /// Check this node's routing: sessions, BFD, routes in the kernel,
    /// forwarding sysctls; each PASS, WARN or FAIL with evidence and fix.
    /// Exits 1 when a check fails.
    Doctor {
        /// Print the API's JSON instead.
        #[arg(long)]
        json: bool,
        #[arg(long)]
        api: Option<String>,
    },
}

#[derive(Subcommand)]
enum Show {
    /// Sessions: state, negotiated AS, prefix counts, last error; with a
    /// name, everything about that peer.
    Peers { name: Option<String> },
    /// Everything about one peer: session, capabilities, last error,
    /// counts per family.
    Peer { name: String },
    /// Loc-RIB routes.
    Routes {
        /// A prefix: it and the prefixes inside it. An address: the most
        /// specific route that covers it.
        prefix: Option<String>,
        #[arg(long)]
        peer: Option<String>,
        /// ipv4-unicast or ipv6-unicast.
        #[arg(long)]
        family: Option<String>,
        /// Only best and equal-cost paths.
        #[arg(long)]
        best: bool,
    },
    /// What a peer sent (Adj-RIB-In, before import policy), and what
    /// became of each path: accepted, filtered (by which policy and
    /// statement), invalid (why).
    Received {
        peer: String,
        /// A prefix: it and the prefixes inside it; an address: the
        /// prefixes that cover it.
        prefix: Option<String>,
        /// ipv4-unicast or ipv6-unicast.
        #[arg(long)]
        family: Option<String>,
        /// Only what was not accepted.
        #[arg(long)]
        filtered: bool,
    },
    /// What a peer was sent (Adj-RIB-Out), with the attributes sent.
    Advertised {
        peer: String,
        prefix: Option<String>,
        #[arg(long)]
        family: Option<String>,
    },
    /// Router ID, AS, peer counts and RIB size.
    Summary,
    /// Kernel routes: installed, VIP routes, unresolved, repairs.
    Fib,
    /// BFD sessions: state, the peer's state, diagnostic, timers, flaps.
    Bfd,
    /// Health checks: verdict, last probe, and what a failure holds back.
    Health,
}

/// The runtime's workers: a core fewer than tern may use, at least one,
/// at most four. The thread that writes to the kernel (`tern-netlink`)
/// takes the core left over: while a table loads it is the slowest stage,
/// and with as many busy threads as cores it never waits for a CPU behind
/// the RIB and the FIB task. On two cores the one worker runs the
/// sessions, the RIB and the FIB task in turn, and 200,000 IPv6 routes
/// reach the kernel about a tenth sooner than with two; ten peers' worth
/// of paths for 100,000 prefixes a quarter later (docs/benchmarks.md).
fn workers() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get().saturating_sub(1))
        .clamp(1, 4)
}

fn main() -> ExitCode {
    let args = Args::parse();
    match args.command.unwrap_or(Command::Run) {
        Command::Run => {
            tern::memory::exec_with_tunables();
            tern::memory::tune();
            init_logging(args.log_format, &args.log_level);
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(workers())
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("tern: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(tern::daemon::run(&args.config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::CheckConfig { path } => {
            let path = path.unwrap_or(args.config);
            match Config::load(&path) {
                Ok(c) => {
                    println!(
                        "{}: ok ({} peers, {} policies)",
                        path.display(),
                        c.peers.len(),
                        c.policies.len()
                    );
                    ExitCode::SUCCESS
                }
                Err(errors) => {
                    eprintln!("{errors}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Show { what, json, api } => {
            let endpoint = Endpoint::resolve(api.as_deref(), &args.config);
            type Render = fn(serde_json::Value) -> Result<String, String>;
            let (path, render): (String, Render) = match what {
                Show::Peers { name: None } => ("/api/v1/peers".into(), |v| {
                    cli::render(v, |p: &Vec<PeerView>| cli::peers_table(p))
                }),
                Show::Peers { name: Some(name) } | Show::Peer { name } => {
                    (format!("/api/v1/peers/{}", cli::escape(&name)), |v| {
                        cli::render(v, cli::peer_text)
                    })
                }
                Show::Summary => ("/api/v1/summary".into(), |v| cli::render(v, cli::summary_text)),
                Show::Fib => ("/api/v1/fib".into(), |v| cli::render(v, cli::fib_text)),
                Show::Bfd => ("/api/v1/bfd".into(), |v| cli::render(v, cli::bfd_text)),
                Show::Health => ("/api/v1/health".into(), |v| {
                    cli::render(v, |c: &Vec<tern::health::HealthView>| cli::health_text(c))
                }),
                Show::Routes {
                    prefix,
                    peer,
                    family,
                    best,
                } => {
                    let q = cli::query(&[
                        ("prefix", prefix),
                        ("peer", peer),
                        ("family", family),
                        ("best", best.then(|| "true".into())),
                    ]);
                    (format!("/api/v1/routes{q}"), |v| {
                        cli::render(v, |r: &Vec<RouteView>| cli::routes_table(r))
                    })
                }
                Show::Received {
                    peer,
                    prefix,
                    family,
                    filtered,
                } => {
                    let q = cli::query(&[
                        ("prefix", prefix),
                        ("family", family),
                        ("filtered", filtered.then(|| "true".into())),
                    ]);
                    (format!("/api/v1/peers/{}/received{q}", cli::escape(&peer)), |v| {
                        cli::render(v, |r: &Vec<AdjRouteView>| cli::adj_rib_table(r))
                    })
                }
                Show::Advertised { peer, prefix, family } => {
                    let q = cli::query(&[("prefix", prefix), ("family", family)]);
                    (
                        format!("/api/v1/peers/{}/advertised{q}", cli::escape(&peer)),
                        |v| cli::render(v, |r: &Vec<AdjRouteView>| cli::adj_rib_table(r)),
                    )
                }
            };
            match endpoint.get_json(&path) {
                Ok(v) if json => {
                    println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
                    ExitCode::SUCCESS
                }
                Ok(v) => match render(v) {
                    Ok(text) => {
                        print!("{text}");
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("tern: {e}");
                        ExitCode::FAILURE
                    }
                },
                Err(e) => {
                    eprintln!("tern: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Reload { api } => {
            let endpoint = Endpoint::resolve(api.as_deref(), &args.config);
            match endpoint.reload() {
                Ok(changes) => {
                    println!("reloaded: {changes}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("tern: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Doctor { json, api } => {
            let endpoint = Endpoint::resolve(api.as_deref(), &args.config);
            let checks = endpoint.get_json("/api/v1/doctor").and_then(|v| {
                serde_json::from_value::<Vec<tern::status::Check>>(v)
                    .map_err(|e| format!("the API answered in a form this tern does not read: {e}"))
            });
            match checks {
                Ok(checks) => {
                    if json {
                        println!("{}", serde_json::to_string_pretty(&checks).unwrap_or_default());
                    } else {
                        print!("{}", cli::doctor_text(&checks));
                    }
                    if checks.iter().any(|c| c.status == tern::status::CheckStatus::Fail) {
                        ExitCode::FAILURE
                    } else {
                        ExitCode::SUCCESS
                    }
                }
                Err(e) => {
                    eprintln!("tern: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Drain { api } => drain(true, api.as_deref(), &args.config),
        Command::Undrain { api } => drain(false, api.as_deref(), &args.config),
    }
}

/// `tern drain` and `tern undrain`.
fn drain(on: bool, api: Option<&str>, config: &std::path::Path) -> ExitCode {
    match Endpoint::resolve(api, config).drain(on) {
        Ok(true) => {
            println!("drained: routes go out with GRACEFUL_SHUTDOWN until `tern undrain`");
            ExitCode::SUCCESS
        }
        Ok(false) => {
            println!("not drained: routes go out as usual");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tern: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat, level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    // Colour only on a terminal: never in a file, journald or Talos's log.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}
