//! The commands of the command line, each returning the process exit code: `run` (the agent)
//! and the one-shot ones.

mod status;

use std::path::Path;

use crate::config::{Config, ConfigError};
use crate::shutdown::Shutdown;
use crate::store::{self, Store};
use crate::sync::odoo::OdooSync;
use crate::sync::scheduler;
use crate::sync::sicantik::SicantikSync;

/// Exit code for a configuration error (sysexits' EX_CONFIG); the unit does not restart on it.
pub(crate) const EXIT_CONFIG: u8 = 78;
pub const EXIT_FAILURE: u8 = 1;

/// Which upstream `sync --once` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Source {
    Odoo,
    Sicantik,
    All,
}

fn load(path: &Path) -> Result<Config, u8> {
    Config::load(path).map_err(|e| report_config(path, &e))
}

fn report_config(path: &Path, e: &ConfigError) -> u8 {
    eprintln!("linegate: {}: {e}", path.display());
    EXIT_CONFIG
}

/// The agent, until `shutdown`.
pub async fn run(path: &Path, shutdown: Shutdown) -> u8 {
    let config = match load(path) {
        Ok(config) => config,
        Err(code) => return code,
    };
    match crate::app::run(config, shutdown).await {
        Ok(()) => 0,
        Err(crate::app::AppError::Config(e)) => report_config(path, &e),
        Err(e) => {
            tracing::error!(error = %e, "linegate failed");
            EXIT_FAILURE
        }
    }
}

pub fn check_config(path: &Path) -> u8 {
    match Config::load(path).and_then(|c| c.validate_secrets().map(|()| c)) {
        Ok(config) => {
            let odoo = config
                .odoo
                .as_ref()
                .map_or("no Odoo".to_string(), |o| format!("Odoo at {}", o.url));
            println!("{}: ok ({odoo}, store {})", path.display(), config.store.path.display());
            0
        }
        Err(e) => report_config(path, &e),
    }
}

pub async fn sync_once(path: &Path, source: Source) -> u8 {
    let config = match load(path) {
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
            Ok(mut sync) => code = code.max(once(&mut sync, &store, &config.store.path).await),
            Err(e) => return report_config(path, &e),
        }
    }
    if let Some(sicantik) = sicantik {
        match SicantikSync::new(sicantik, store.clone()) {
            Ok(mut sync) => {
                // Reminders this run produces wait in the outbox for the running agent's broker.
                sync.mqtt = config.mqtt.is_some();
                code = code.max(once(&mut sync, &store, &config.store.path).await)
            }
            Err(e) => return report_config(path, &e),
        }
    }
    // Its close-time checkpoint before the process exits: the WAL is left empty.
    store.close().await;
    code
}

/// One run of one source, with its one-line summary.
async fn once<S: scheduler::Source>(sync: &mut S, store: &Store, db: &Path) -> u8 {
    let name = sync.name();
    match scheduler::run_once(sync, store, db, &Shutdown::never()).await {
        Ok(report) => {
            println!("{name}: ok: {report}");
            0
        }
        Err(e) => {
            println!("{name}: FAILED: {e}");
            EXIT_FAILURE
        }
    }
}

/// Prints what the store knows. It only reads: no migration, no write, so it is safe beside a
/// running agent and on a database this binary does not know (it says so instead).
pub async fn status(config_path: &Path, json: bool) -> u8 {
    let config = match load(config_path) {
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
    match read {
        Ok(status) if json => {
            println!("{}", serde_json::to_string_pretty(&status).expect("status serializes"));
            0
        }
        Ok(status) => {
            print!("{}", status::render(&status, &path));
            0
        }
        Err(e) => {
            eprintln!("linegate: {e}");
            EXIT_FAILURE
        }
    }
}
