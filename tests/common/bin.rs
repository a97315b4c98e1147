//! The `linegate` binary as a test runs it: a command with a config, its output, signals.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use linegate_sim::odoo::SimOdoo;

pub(crate) fn linegate(config: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_linegate"));
    cmd.arg("--config").arg(config).args(args);
    // The tests' secrets come from the files they write, never from the caller's environment.
    cmd.env_remove("LINEGATE_ODOO_API_KEY")
        .env_remove("LINEGATE_ODOO_PASSWORD")
        .env_remove("CREDENTIALS_DIRECTORY");
    cmd.env("RUST_LOG", "warn");
    cmd
}

/// Runs the command off the async threads, so the simulated Odoo keeps answering.
pub(crate) async fn output(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().expect("linegate runs"))
        .await
        .unwrap()
}

pub(crate) fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A config for `sim` with its key in a private file, in `dir`.
pub(crate) fn write_config(dir: &Path, sim: &SimOdoo, extra: &str) -> PathBuf {
    let key = dir.join("odoo-api-key");
    std::fs::write(&key, format!("{}\n", sim.config().api_key)).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = dir.join("linegate.toml");
    let text = format!(
        "[store]\npath = {:?}\n[odoo]\nurl = {:?}\ndatabase = \"mes\"\napi_key_file = {:?}\nrequest_timeout = \"5s\"\n{extra}",
        dir.join("linegate.db"),
        sim.url(),
        key
    );
    std::fs::write(&config, text).unwrap();
    config
}

/// SIGTERM, as systemd stops the agent.
pub(crate) fn sigterm(child: &std::process::Child) {
    signal(child, libc::SIGTERM);
}

#[allow(unsafe_code, reason = "kill(2) has no safe binding in std")]
pub(crate) fn signal(child: &std::process::Child, signal: libc::c_int) {
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, signal) }, 0);
}
