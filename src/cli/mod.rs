//! The commands of the command line, each returning the process exit code: `run` (the agent)
//! and the one-shot ones. The configuration file is read once ([`ConfigFile`]): `/dev/stdin`
//! works too.

mod check;
pub mod outbox;
mod setup;
mod status;

pub use check::check_config;
pub use setup::{odoo_setup, SetupArgs};

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};

use crate::config::{Config, ConfigError};
use crate::shutdown::Shutdown;
use crate::store::{self, Store};
use crate::sync::odoo::OdooSync;
use crate::sync::runs::Runs;
use crate::sync::scheduler;
use crate::sync::sicantik::SicantikSync;

/// Exit code for a configuration error (sysexits' EX_CONFIG); the unit does not restart on it.
pub(crate) const EXIT_CONFIG: u8 = 78;
pub const EXIT_FAILURE: u8 = 1;

/// The signal that stopped a one-shot command (0: none), set by the binary's signal handler;
/// such a command exits 128 + the signal's number, as a shell reports a process it killed.
pub static STOPPED_BY: AtomicI32 = AtomicI32::new(0);

/// The configuration file, read once.
pub struct ConfigFile {
    path: PathBuf,
    loaded: Result<Config, ConfigError>,
}

impl ConfigFile {
    pub fn read(path: &Path) -> ConfigFile {
        ConfigFile {
            path: path.to_path_buf(),
            loaded: Config::load(path),
        }
    }

    /// The configured log level, when the file can be read (its errors are reported by the
    /// command itself).
    pub fn log_level(&self) -> String {
        self.loaded
            .as_ref()
            .map_or_else(|_| "info".into(), |c| c.log.level.clone())
    }

    fn config(&self) -> Result<&Config, u8> {
        self.loaded.as_ref().map_err(|e| report_config(&self.path, e))
    }

    /// The `[mqtt]` section, for a command that is nothing without one (`without`: what is
    /// missing then).
    fn mqtt(&self, without: &str) -> Result<&crate::config::MqttConfig, u8> {
        self.config()?.mqtt.as_ref().ok_or_else(|| {
            eprintln!("linegate: {}: no [mqtt] section, so {without}", self.path.display());
            EXIT_CONFIG
        })
    }
}

/// Which upstream `sync --once` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Source {
    Odoo,
    Sicantik,
    All,
}

fn report_config(path: &Path, e: &ConfigError) -> u8 {
    eprintln!("linegate: {}: {e}", path.display());
    EXIT_CONFIG
}

/// `linegate watch`: what the displays see, until `shutdown` (Ctrl-C).
pub async fn watch(file: &ConfigFile, args: crate::watch::WatchArgs, shutdown: Shutdown) -> u8 {
    let mqtt = match file.mqtt("no displays to watch") {
        Ok(mqtt) => mqtt,
        Err(code) => return code,
    };
    match crate::watch::run(mqtt, &args, shutdown, std::io::stdout()).await {
        Ok(()) => 0,
        Err(e) => report_config(&file.path, &e),
    }
}

/// `linegate web`: the floor's screens until `shutdown` (SIGTERM). With `configured`, only
/// whether the file has a `[web]` section: 0 when it has, 1 when not — systemd's
/// `ExecCondition`, so the unit waits, not fails, until the screens are configured.
pub async fn web(file: &ConfigFile, configured: bool, shutdown: Shutdown) -> u8 {
    let config = match file.config() {
        Ok(config) => config,
        Err(code) => return code,
    };
    if configured {
        return if config.web.is_some() { 0 } else { EXIT_FAILURE };
    }
    match crate::web::run(config, shutdown, None).await {
        Ok(()) => 0,
        Err(crate::web::WebError::Config(e)) => report_config(&file.path, &e),
        Err(e @ crate::web::WebError::Tls(_)) => {
            eprintln!("linegate web: {}: {e}", file.path.display());
            EXIT_CONFIG
        }
        Err(e) => {
            tracing::error!(error = %e, "linegate web failed");
            EXIT_FAILURE
        }
    }
}

/// Exit code when no reply came in time (sysexits' EX_TEMPFAIL: trying again may work).
const EXIT_NO_REPLY: u8 = 75;

/// `linegate send`: one command as a station's panel sends it; prints the agent's reply.
pub async fn send(file: &ConfigFile, args: crate::panel::SendArgs, shutdown: Shutdown) -> u8 {
    use crate::panel::{Got, SendError, Sent};
    let mqtt = match file.mqtt("no broker to send to") {
        Ok(mqtt) => mqtt,
        Err(code) => return code,
    };
    match crate::panel::run(mqtt, &args, shutdown).await {
        Ok(Sent::Reply(reply)) => {
            // JSON as it came (serde escapes control characters); the summary is text from
            // the broker, so nothing in it may drive the terminal.
            println!("{reply}");
            if reply["ok"] == true {
                return 0;
            }
            let text = |v: &serde_json::Value| -> String {
                v.as_str()
                    .unwrap_or("?")
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(500)
                    .collect()
            };
            eprintln!(
                "linegate send: refused: {}: {}",
                text(&reply["error"]["code"]),
                text(&reply["error"]["message"])
            );
            EXIT_FAILURE
        }
        Ok(Sent::NoReply {
            request_id,
            got,
            trouble,
        }) => {
            let seconds = args.timeout.as_secs();
            let broker = format!("{}:{}", mqtt.host, mqtt.port);
            match (got, trouble) {
                (Got::Broker, _) => eprintln!(
                    "linegate send: no reply within {seconds} s (is the agent running?). The broker \
                     keeps the command for the agent: send it again with \"request_id\":{request_id:?} \
                     to learn how it went"
                ),
                (_, Some(t)) => eprintln!("linegate send: not sent within {seconds} s: the broker {broker}: {t}"),
                (_, None) => {
                    eprintln!("linegate send: not sent within {seconds} s: the broker {broker} did not take it")
                }
            }
            EXIT_NO_REPLY
        }
        Ok(Sent::Refused(what)) => {
            eprintln!("linegate send: the broker refused {what} (its ACL: is this the station's login?)");
            EXIT_FAILURE
        }
        Ok(Sent::Stopped) => 128u8.saturating_add(u8::try_from(STOPPED_BY.load(Ordering::Relaxed)).unwrap_or(0)),
        Err(SendError::Config(e)) => report_config(&file.path, &e),
        Err(e @ SendError::Body(_)) => {
            eprintln!("linegate send: {e}");
            EXIT_USAGE
        }
    }
}

/// Exit code for a bad command line (sysexits' EX_USAGE).
const EXIT_USAGE: u8 = 64;

/// The agent, until `shutdown`.
pub async fn run(file: &ConfigFile, shutdown: Shutdown) -> u8 {
    let config = match file.config() {
        Ok(config) => config.clone(),
        Err(code) => return code,
    };
    match crate::app::run(config, shutdown).await {
        Ok(()) => 0,
        Err(crate::app::AppError::Config(e)) => report_config(&file.path, &e),
        // The configuration's gateway_id is another agent's: systemd must not restart us.
        Err(e @ crate::app::AppError::Twin(_)) => {
            eprintln!("linegate: {}: {e}", file.path.display());
            EXIT_CONFIG
        }
        Err(e) => {
            tracing::error!(error = %e, "linegate failed");
            EXIT_FAILURE
        }
    }
}

/// One sync per source; `shutdown` (SIGTERM, SIGINT) stops it between requests, keeping what
/// was committed, and the command exits 128 + the signal's number.
pub async fn sync_once(file: &ConfigFile, source: Source, shutdown: Shutdown) -> u8 {
    let path = &file.path;
    let config = match file.config() {
        Ok(config) => config,
        Err(code) => return code,
    };
    if let Err(e) = config.validate_secrets() {
        return report_config(path, &e);
    }
    let odoo = config.odoo.as_ref().filter(|_| source != Source::Sicantik);
    let sicantik = config.sicantik.as_ref().filter(|_| source != Source::Odoo);
    if odoo.is_none() && sicantik.is_none() {
        eprintln!("linegate: nothing to sync: the configuration has no section for {source:?}");
        return EXIT_CONFIG;
    }
    let store = match Store::open(&config.store.path) {
        Ok(store) => store,
        Err(e) => {
            eprintln!("linegate: {e}");
            return EXIT_FAILURE;
        }
    };
    let mut code = 0;
    if let Some(odoo) = odoo {
        let retention = std::time::Duration::from_secs(u64::from(config.store.retention_days) * 86_400);
        match OdooSync::new(odoo, store.clone(), retention) {
            Ok(mut sync) => code = code.max(once(&mut sync, &store, &config.store.path, &shutdown).await),
            Err(e) => return report_config(path, &e),
        }
    }
    if let Some(sicantik) = sicantik {
        match SicantikSync::new(sicantik, store.clone()) {
            Ok(mut sync) => {
                // Reminders this run produces wait in the outbox for the running agent's broker.
                sync.mqtt = config.mqtt.is_some();
                if !shutdown.is_set() {
                    code = code.max(once(&mut sync, &store, &config.store.path, &shutdown).await)
                }
            }
            Err(e) => return report_config(path, &e),
        }
    }
    // Its close-time checkpoint before the process exits: the WAL is left empty.
    store.close().await;
    match STOPPED_BY.load(Ordering::Relaxed) {
        0 => code,
        signal => 128u8.saturating_add(u8::try_from(signal).unwrap_or(0)),
    }
}

/// One run of one source, with its one-line summary.
async fn once<S: scheduler::Source>(sync: &mut S, store: &Store, db: &Path, shutdown: &Shutdown) -> u8 {
    let name = sync.name();
    // At once, not at the run's next request: a call may be retrying for a minute. What it
    // committed stays; the store finishes the page it was writing.
    let mut runs = Runs::every_run();
    let outcome = tokio::select! {
        outcome = scheduler::run_once(sync, store, db, &mut runs, shutdown) => outcome,
        _ = shutdown.wait() => Err(crate::sync::SyncError::Cancelled),
    };
    match outcome {
        Ok(report) => {
            println!("{name}: ok: {report}");
            0
        }
        Err(crate::sync::SyncError::Cancelled) => {
            println!("{name}: stopped: what was committed before stays");
            EXIT_FAILURE
        }
        Err(e) => {
            println!("{name}: FAILED: {e}");
            EXIT_FAILURE
        }
    }
}

/// Prints what the store knows. It only reads: no migration, no write, so it is safe beside a
/// running agent and on a database this binary does not know (it says so instead).
pub async fn status(file: &ConfigFile, json: bool) -> u8 {
    let config = match file.config() {
        Ok(config) => config,
        Err(code) => return code,
    };
    let path = config.store.path.clone();
    if !path.exists() {
        eprintln!("linegate: no database at {} yet: the agent has not run", path.display());
        return EXIT_FAILURE;
    }
    let db = path.clone();
    let read = tokio::task::spawn_blocking(move || -> Result<_, store::sync::ReadOnlyError> {
        let db = store::sync::open_read_only(&db)?;
        Ok(store::sync::status(&db)?)
    })
    .await
    .expect("the status read does not panic");
    // The running agent's wear on the card, when it can be seen from here (its user, root).
    let agent = crate::lock::holder_pid(&path, crate::lock::AGENT)
        .and_then(|pid| Some((pid, crate::wear::written_bytes_of(pid)?)));
    match read {
        Ok(status) if json => {
            let mut value = serde_json::to_value(&status).expect("status serializes");
            value["store"] = serde_json::to_value(store::StoreHealth::inspect(&path)).expect("health serializes");
            value["agent"] = match agent {
                Some((pid, written)) => serde_json::json!({"pid": pid, "written_bytes": written}),
                None => serde_json::Value::Null,
            };
            println!("{}", serde_json::to_string_pretty(&value).expect("status serializes"));
            0
        }
        Ok(status) => {
            print!(
                "{}",
                status::render(&status, &path, &store::StoreHealth::inspect(&path), agent)
            );
            0
        }
        Err(e) => {
            eprintln!("linegate: {e}");
            EXIT_FAILURE
        }
    }
}

/// Prints, one JSON object a line, the operator data of every MO a damaged database that was
/// kept aside still holds; what could not be read is said on stderr. Never writes the file.
/// With `restore`, puts that data back into the configured store instead (see [`restore`]).
pub async fn salvage(config: &ConfigFile, kept: &Path, restore: bool) -> u8 {
    if restore {
        return match config.config() {
            Ok(config) => self::restore(&config.store.path, kept).await,
            Err(code) => code,
        };
    }
    match read_salvage(kept).await {
        Some(mos) => {
            for mo in &mos {
                println!("{}", serde_json::to_string(mo).expect("salvaged rows serialize"));
            }
            0
        }
        None => EXIT_FAILURE,
    }
}

/// What the kept file still holds, saying on stderr how much and what could not be read.
async fn read_salvage(kept: &Path) -> Option<Vec<store::salvage::Salvaged>> {
    let path = kept.to_path_buf();
    let read = tokio::task::spawn_blocking(move || store::salvage::operator_data(&path))
        .await
        .expect("the salvage read does not panic");
    let salvage = match read {
        Ok(salvage) => salvage,
        Err(e) => {
            eprintln!("linegate: {e}");
            return None;
        }
    };
    for damage in &salvage.damage {
        eprintln!("linegate: {}: unreadable: {damage}", kept.display());
    }
    eprintln!(
        "linegate: {}: {} MOs with operator data read{}",
        kept.display(),
        salvage.mos.len(),
        if salvage.damage.is_empty() {
            ""
        } else {
            "; some of the file could not be read"
        }
    );
    Some(salvage.mos)
}

/// Writes salvaged operator data into the store at `db`, MO by MO, as commands of the station
/// `salvage`: only onto MOs no operator has written to since the fresh start, and once (a
/// second restore from the same file writes nothing). The agent must be stopped, so that no
/// panel's command meets a restore and its displays show the result when it starts again.
async fn restore(db: &Path, kept: &Path) -> u8 {
    let same = |a: &Path, b: &Path| a.canonicalize().ok().is_some_and(|a| b.canonicalize().ok() == Some(a));
    if same(db, kept) {
        eprintln!("linegate: {} is the store itself, not a kept file", kept.display());
        return EXIT_FAILURE;
    }
    if !db.exists() {
        eprintln!(
            "linegate: no database at {}: start the agent once, so that it re-pulls from Odoo, then restore",
            db.display()
        );
        return EXIT_FAILURE;
    }
    let _agent_lock = match crate::lock::FileLock::try_acquire(db, crate::lock::AGENT) {
        Ok(Some(held)) => held,
        Ok(None) => {
            eprintln!(
                "linegate: the agent is running on {}: stop it (systemctl stop linegate), restore, start it again",
                db.display()
            );
            return EXIT_FAILURE;
        }
        Err(e) => {
            eprintln!("linegate: cannot lock {}: {e}", db.display());
            return EXIT_FAILURE;
        }
    };
    let Some(mos) = read_salvage(kept).await else {
        return EXIT_FAILURE;
    };
    let store = match Store::open(db) {
        Ok(store) => store,
        Err(e) => {
            eprintln!("linegate: {e}");
            return EXIT_FAILURE;
        }
    };
    let source = kept
        .file_name()
        .unwrap_or(kept.as_os_str())
        .to_string_lossy()
        .into_owned();
    let outcome = crate::command::restore(&store, &source, mos).await;
    store.close().await;
    match outcome {
        Ok(restored) => {
            for mo in &restored {
                match (&mo.why_not, mo.before) {
                    (None, false) => println!("MO {}: restored", mo.id),
                    (None, true) => println!("MO {}: restored before, from this file", mo.id),
                    (Some(why), _) => println!("MO {}: kept as it is: {why}", mo.id),
                }
            }
            let written = restored.iter().filter(|r| r.ok && !r.before).count();
            eprintln!(
                "linegate: {written} of {} MOs restored into {}",
                restored.len(),
                db.display()
            );
            if restored.iter().any(|r| !r.ok) {
                eprintln!("linegate: an MO kept as it is can be restored by a later run once the reason is gone (one not synced yet, say)");
            }
            0
        }
        Err(e) => {
            eprintln!("linegate: restoring stopped: {e}; what was restored stays, run it again");
            EXIT_FAILURE
        }
    }
}
