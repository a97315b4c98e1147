//! A real mosquitto, from the system's package, on a free loopback port: for `linegate demo`,
//! the tests and the benchmarks. Killed when dropped.

use std::io;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Mosquitto {
    child: Option<Child>,
    pub port: u16,
    dir: PathBuf,
}

/// How a test broker is set up beyond the defaults (anonymous, no persistence).
#[derive(Debug, Clone, Default)]
pub struct BrokerOptions {
    /// Keep retained messages and sessions across restarts (in the broker's own directory).
    pub persistence: bool,
    /// Accounts (user, password); when any is given, anonymous clients are refused.
    pub accounts: Vec<(String, String)>,
    /// The ACL file's text, when access is controlled.
    pub acl: Option<String>,
    /// Keep the broker's log (see [`Mosquitto::log`]): what it denied, whom it dropped.
    pub log: bool,
    /// Messages queued for one client at most (mosquitto's default is 1,000: a display that
    /// subscribes late to thousands of retained MOs gets only part of them).
    pub max_queued_messages: Option<u32>,
    /// More of mosquitto's configuration, as written in its file (a bridge, say).
    pub extra: Option<String>,
}

/// The broker: `$LINEGATE_MOSQUITTO` when set (empty: none, as on a machine without it), else
/// on the PATH, else where Debian puts it (/usr/sbin is not on a user's PATH).
fn binary() -> io::Result<PathBuf> {
    let missing = || io::Error::new(io::ErrorKind::NotFound, "mosquitto is not installed");
    if let Some(named) = std::env::var_os("LINEGATE_MOSQUITTO") {
        let named = PathBuf::from(named);
        return if named.is_file() { Ok(named) } else { Err(missing()) };
    }
    let on_path = std::env::var_os("PATH")
        .map(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join("mosquitto"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain(["/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"].map(PathBuf::from))
        .find(|p| p.is_file())
        .ok_or_else(missing)
}

impl Mosquitto {
    /// Starts a broker without persistence (a restart forgets retained messages and sessions).
    pub fn start() -> io::Result<Mosquitto> {
        Mosquitto::start_with(BrokerOptions::default())
    }

    pub fn start_with(options: BrokerOptions) -> io::Result<Mosquitto> {
        binary()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let dir = std::env::temp_dir().join(format!("linegate-mosquitto-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        // mosquitto drops root privileges; it must still be able to read its config.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
        // set_tcp_nodelay: without it, Nagle adds 40-90 ms to every request/reply.
        let mut conf = format!("listener {port} 127.0.0.1\nset_tcp_nodelay true\n");
        if options.log {
            let log = dir.join("mosquitto.log");
            std::fs::write(&log, "")?;
            std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o666))?;
            conf.push_str(&format!("log_dest file {}\nlog_type all\n", log.display()));
        } else {
            conf.push_str("log_dest none\n");
        }
        if let Some(max) = options.max_queued_messages {
            conf.push_str(&format!("max_queued_messages {max}\n"));
        }
        if options.persistence {
            let store = dir.join("persistence");
            std::fs::create_dir_all(&store)?;
            // Written by the broker after it drops root.
            std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o777))?;
            conf.push_str(&format!(
                "persistence true\npersistence_location {}/\n",
                store.display()
            ));
        } else {
            conf.push_str("persistence false\n");
        }
        if options.accounts.is_empty() {
            conf.push_str("allow_anonymous true\n");
        } else {
            let passwd = dir.join("passwd");
            std::fs::write(&passwd, "")?;
            for (user, password) in &options.accounts {
                let status = Command::new("mosquitto_passwd")
                    .arg("-b")
                    .arg(&passwd)
                    .args([user, password])
                    .status()?;
                if !status.success() {
                    return Err(io::Error::other(format!("mosquitto_passwd failed for {user}")));
                }
            }
            std::fs::set_permissions(&passwd, std::fs::Permissions::from_mode(0o644))?;
            conf.push_str(&format!("allow_anonymous false\npassword_file {}\n", passwd.display()));
        }
        if let Some(acl) = &options.acl {
            let file = dir.join("acl");
            std::fs::write(&file, acl)?;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644))?;
            conf.push_str(&format!("acl_file {}\n", file.display()));
        }
        if let Some(extra) = &options.extra {
            conf.push_str(extra);
            conf.push('\n');
        }
        std::fs::write(dir.join("mosquitto.conf"), conf)?;
        let mut broker = Mosquitto { child: None, port, dir };
        broker.spawn()?;
        Ok(broker)
    }

    fn spawn(&mut self) -> io::Result<()> {
        let binary = binary()?;
        let child = Command::new(&binary)
            .arg("-c")
            .arg(self.dir.join("mosquitto.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", binary.display())))?;
        self.child = Some(child);
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "mosquitto did not start listening",
        ))
    }

    /// The broker's log so far (empty unless [`BrokerOptions::log`]).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("mosquitto.log")).unwrap_or_default()
    }

    /// Kills the broker (SIGKILL: it saves nothing).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the broker as systemd would (SIGTERM: with persistence, it saves its state).
    pub fn terminate(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
            for _ in 0..200 {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(25));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the stopped broker again on the same port.
    pub fn resume(&mut self) -> io::Result<()> {
        self.spawn()
    }

    /// Kills and starts the broker again on the same port; it remembers nothing.
    pub fn restart(&mut self) -> io::Result<()> {
        self.stop();
        self.spawn()
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The bridge linegate ships (packaging/examples/mosquitto-bridge.conf), for `gateway`, to the
/// plant broker on 127.0.0.1:`plant`: logging in with `password` as the gateway (else
/// anonymous), and retrying every second or two rather than up to 30 s.
pub fn shipped_bridge(gateway: &str, plant: u16, password: Option<&str>) -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../packaging/examples/mosquitto-bridge.conf"
    );
    let shipped = std::fs::read_to_string(path).expect("the shipped bridge example");
    assert!(
        shipped.contains("restart_timeout 2 30"),
        "the example's backoff changed"
    );
    shipped
        .replace("line-gw-1", gateway)
        .replace("plant-broker.example:1883", &format!("127.0.0.1:{plant}"))
        .replace("restart_timeout 2 30", "restart_timeout 1 2")
        .replace(
            "remote_password change-me",
            &format!("remote_password {}", password.unwrap_or_default()),
        )
        .lines()
        .filter(|l| password.is_some() || !(l.starts_with("remote_username") || l.starts_with("remote_password")))
        .collect::<Vec<_>>()
        .join("\n")
}
