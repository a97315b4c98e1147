//! The `linegate` binary: parse the command line, start logging, hand over to the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use linegate::cli::{self, Source};

#[derive(Parser)]
#[command(
    name = "linegate",
    version,
    about = "Shop-floor gateway agent: Odoo MOs in a local store, for displays and panels"
)]
struct Cli {
    /// The configuration file.
    #[arg(long, global = true, default_value = linegate::config::DEFAULT_PATH)]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the agent (what systemd starts).
    Run,
    /// Validate the configuration; exit 78 naming the key at fault.
    CheckConfig {
        /// Also ask the configured Odoo whether it has the fields and grants the access the
        /// sync and the results pushed back need (78 when it refuses, 1 when unreachable).
        #[arg(long)]
        odoo: bool,
    },
    /// Make the fields [odoo.push.fields] maps, and a "Shop floor" page on the MO form showing
    /// them, in the configured Odoo, with an administrator's API key from
    /// $LINEGATE_ODOO_ADMIN_KEY (0 done, 78 refused: nothing changed, 1 Odoo unreachable).
    OdooSetup {
        /// Say what would change; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Take away what this command made (the page, then the fields, with their values).
        #[arg(long)]
        remove: bool,
        /// The administrator's key from this file (only its owner and group may read it), or
        /// from stdin with `-`, instead of $LINEGATE_ODOO_ADMIN_KEY.
        #[arg(long, value_name = "FILE")]
        admin_key_file: Option<PathBuf>,
        /// The administrator's login: Odoo 16-18 (/jsonrpc) need it with the key.
        #[arg(long, value_name = "LOGIN")]
        admin_login: Option<String>,
    },
    /// Run one sync cycle in the foreground and print a summary.
    Sync {
        #[arg(long, required = true)]
        once: bool,
        #[arg(value_enum, default_value = "all")]
        source: Source,
    },
    /// What the store knows, without the network.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Print the operator data a damaged database (kept aside by the agent) still holds, or
    /// put it back into the store (--restore, with the agent stopped).
    Salvage {
        /// The kept file, e.g. /var/lib/linegate/linegate.db.damaged-20261201T080000Z.
        file: PathBuf,
        /// Write it onto the MOs of the store that no operator has written to since.
        #[arg(long)]
        restore: bool,
    },
    /// Operator results waiting for Odoo: list them, retry parked ones, drop one.
    Outbox {
        #[command(subcommand)]
        action: OutboxAction,
    },
    /// What the line displays see, live, from the broker's retained topics (Ctrl-C ends it).
    Watch {
        /// Only this line and its MOs.
        #[arg(long)]
        line: Option<String>,
        /// One JSON object per change (`topic`, `payload`) instead of the board.
        #[arg(long)]
        json: bool,
    },
    /// Send one command as a station's panel does and print the agent's reply (exit 0 when
    /// applied, 1 when refused, 75 when no reply came).
    Send {
        /// The station it comes from, e.g. ws-1.
        station: String,
        /// register-mo, start-production, changeover, end-production, … (docs/mqtt.md).
        action: String,
        /// The command as JSON; a request_id is added when it has none.
        body: String,
        /// Seconds to wait for the reply.
        #[arg(long, default_value_t = 10)]
        timeout: u64,
    },
    /// The floor's screens in a browser: line displays, workstation panels, an index
    /// (`[web]`; what linegate-web.service starts).
    Web {
        /// Only say whether the configuration has a [web] section (exit 0) or not (exit 1).
        #[arg(long)]
        configured: bool,
    },
    /// The agent against a built-in simulated Odoo, with a local database: see MOs flow.
    #[cfg(feature = "demo")]
    Demo(linegate::demo::DemoArgs),
}

#[derive(Subcommand)]
enum OutboxAction {
    /// Every result not yet in Odoo, oldest first, with why it waits.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Parked results due again at once (the agent tries them within a minute).
    Retry {
        /// The results' ids (from `list`).
        #[arg(required_unless_present = "all")]
        ids: Vec<i64>,
        /// Every parked result.
        #[arg(long, conflicts_with = "ids")]
        all: bool,
    },
    /// Drops a result Odoo will never get; it is logged in full and counted.
    Drop {
        id: i64,
        /// Yes, drop it.
        #[arg(long)]
        yes: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Read once: the file may be a pipe (`--config /dev/stdin`).
    let file = cli::ConfigFile::read(&cli.config);
    // The configuration's level, when it can be read (RUST_LOG wins).
    init_logging(&file.log_level());
    let runtime = tokio::runtime::Runtime::new().expect("starting the tokio runtime");
    let code = runtime.block_on(async {
        match cli.command {
            Command::CheckConfig { odoo } => cli::check_config(&file, odoo).await,
            Command::OdooSetup {
                dry_run,
                remove,
                admin_key_file,
                admin_login,
            } => {
                let args = cli::SetupArgs {
                    dry_run,
                    remove,
                    admin_key_file,
                    admin_login,
                };
                cli::odoo_setup(&file, args).await
            }
            Command::Run => cli::run(&file, stop_signal()).await,
            Command::Sync { once: _, source } => cli::sync_once(&file, source, stop_signal()).await,
            Command::Status { json } => cli::status(&file, json).await,
            Command::Salvage { file: kept, restore } => cli::salvage(&file, &kept, restore).await,
            Command::Outbox { action } => match action {
                OutboxAction::List { json } => cli::outbox::list(&file, json).await,
                OutboxAction::Retry { ids, all } => cli::outbox::retry(&file, (!all).then_some(ids)).await,
                OutboxAction::Drop { id, yes } => cli::outbox::drop(&file, id, yes).await,
            },
            Command::Watch { line, json } => {
                cli::watch(&file, linegate::watch::WatchArgs { line, json }, stop_signal()).await
            }
            Command::Send {
                station,
                action,
                body,
                timeout,
            } => {
                let args = linegate::panel::SendArgs {
                    station,
                    action,
                    body,
                    timeout: std::time::Duration::from_secs(timeout),
                };
                cli::send(&file, args, stop_signal()).await
            }
            Command::Web { configured } => cli::web(&file, configured, stop_signal()).await,
            #[cfg(feature = "demo")]
            Command::Demo(args) => linegate::demo::run(args, stop_signal()).await,
        }
    });
    ExitCode::from(code)
}

/// Structured fields to the journal when systemd runs us (it sets JOURNAL_STREAM), readable
/// lines on stderr otherwise. The level comes from RUST_LOG (default info).
fn init_logging(level: &str) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    // The demo's embedded broker logs every connection at info; only its trouble is news.
    let level = if cfg!(feature = "demo") {
        format!("{level},mqtt5=warn")
    } else {
        level.to_string()
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let journald = std::env::var_os("JOURNAL_STREAM").and_then(|_| tracing_journald::layer().ok());
    match journald {
        Some(journald) => tracing_subscriber::registry()
            .with(filter)
            .with(journald.with_syslog_identifier("linegate".into()))
            .init(),
        None => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
}

/// A shutdown signal fired by SIGTERM (systemd) or SIGINT (Ctrl-C).
fn stop_signal() -> linegate::shutdown::Shutdown {
    let (trigger, shutdown) = linegate::shutdown::channel();
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        let signal = tokio::select! {
            _ = term.recv() => {
                tracing::info!("SIGTERM: stopping");
                libc::SIGTERM
            }
            _ = tokio::signal::ctrl_c() => {
                tracing::info!("SIGINT: stopping");
                libc::SIGINT
            }
        };
        cli::STOPPED_BY.store(signal, std::sync::atomic::Ordering::Relaxed);
        trigger.fire();
    });
    shutdown
}
