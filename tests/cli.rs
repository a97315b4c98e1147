//! The `linegate` binary as a person on the gateway uses it: check-config, sync --once, status,
//! and a `kill -9` in the middle of a sync.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::bin::{linegate, output, sigterm, text, write_config};
use common::{mo_count, reader, sim, wait_until};

#[test]
fn check_config_accepts_the_shipped_example() {
    // Given the example the package installs, with its secret from the environment
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/linegate.example.toml");
    let mut cmd = linegate(&example, &["check-config"]);
    cmd.env("LINEGATE_ODOO_API_KEY", "from-the-environment");
    // When it is checked, then it passes
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("ok (Odoo at https://odoo.example.com"),
        "{}",
        text(&out)
    );
}

#[test]
fn the_shipped_examples_web_section_once_uncommented_passes_and_starts_the_screens_unit() {
    // Given the example with its [web] section uncommented, as an administrator would
    let example =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/linegate.example.toml")).unwrap();
    let start = example.find("# [web]").expect("the example has a [web] section");
    let end = start + example[start..].find("\n[").unwrap();
    let section: String = example[start..end]
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            // TLS needs a certificate of the plant's: left as it ships.
            Some(setting) if setting.starts_with("tls_") => l.to_string(),
            Some(setting) if setting.starts_with('[') || setting.contains(" = ") => setting.to_string(),
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("web-display-password");
    std::fs::write(&password, "secret\n").unwrap();
    std::fs::set_permissions(&password, std::fs::Permissions::from_mode(0o600)).unwrap();
    let section = section.replace("/etc/linegate/web-display-password", &password.display().to_string());
    assert!(section.contains("\n[web]") || section.starts_with("[web]"), "{section}");
    let config = dir.path().join("linegate.toml");
    std::fs::write(&config, format!("{}{section}{}", &example[..start], &example[end..])).unwrap();
    // When it is checked, then it passes and says what the screens serve
    let mut cmd = linegate(&config, &["check-config"]);
    cmd.env("LINEGATE_ODOO_API_KEY", "from-the-environment");
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("screens: linegate web on 0.0.0.0:8080 in Bahasa Indonesia, panels for ws-1 on L1"),
        "{}",
        text(&out)
    );
    // And the screens' unit would start (its ExecCondition), where without [web] it waits
    let configured = linegate(&config, &["web", "--configured"]).output().unwrap();
    assert_eq!(configured.status.code(), Some(0), "{}", text(&configured));
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/linegate.example.toml");
    let waits = linegate(&shipped, &["web", "--configured"]).output().unwrap();
    assert_eq!(waits.status.code(), Some(1), "{}", text(&waits));
}

#[test]
fn check_config_names_the_key_at_fault_and_exits_78() {
    let dir = tempfile::tempdir().unwrap();
    let odoo = "[odoo]\nurl = \"http://x\"\ndatabase = \"mes\"\napi_key = \"k\"\n";
    let cases = [
        ("[store]\npathh = \"/tmp/x.db\"\n".to_string(), "store.pathh"),
        (
            "[odoo]\nurl = \"not a url\"\ndatabase = \"mes\"\napi_key = \"k\"\n".to_string(),
            "odoo.url",
        ),
        (
            "[odoo]\nurl = \"http://x\"\ndatabase = \"mes\"\n".to_string(),
            "odoo.api_key",
        ),
        (format!("{odoo}sync_interval = \"often\"\n"), "odoo.sync_interval"),
        (format!("{odoo}page_size = \"abc\"\n"), "odoo.page_size"),
        (format!("{odoo}page_size = -1\n"), "odoo.page_size"),
        (format!("{odoo}[odoo.fields]\nfoo = \"x_foo\"\n"), "odoo.fields.foo"),
        (
            format!("{odoo}line_group_fields = [\"x_line; drop\"]\n"),
            "odoo.line_group_fields",
        ),
        (format!("{odoo}[mqtt]\ngateway_id = \"line/1\"\n"), "mqtt.gateway_id"),
        (format!("{odoo}[mqtt]\ngateway_id = \"gw'1\"\n"), "mqtt.gateway_id"),
        (format!("{odoo}[web]\nlanguage = \"fr\"\n[mqtt]\n"), "web.language"),
        (format!("{odoo}[web]\nlisten = \"nowhere\"\n[mqtt]\n"), "web.listen"),
        (
            format!("{odoo}[web]\nstations = {{ \"ws/1\" = \"L1\" }}\n[mqtt]\n"),
            "web.stations.ws/1",
        ),
        (
            format!("{odoo}[web]\nstations = {{ salvage = \"L1\" }}\n[mqtt]\n"),
            "web.stations.salvage",
        ),
        (
            format!("{odoo}[web]\ntls_cert_file = \"/x.pem\"\n[mqtt]\n"),
            "web.tls_key_file",
        ),
        (format!("{odoo}[web]\nsession_days = 0\n[mqtt]\n"), "web.session_days"),
        (format!("{odoo}[web]\n"), "web"),
    ];
    for (config, key) in cases {
        // Given a configuration with one mistake, readable only by its owner (inline key)
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, &config).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        // When it is checked, then it exits 78 naming the dotted key to fix
        let out = linegate(&path, &["check-config"]).output().unwrap();
        assert_eq!(out.status.code(), Some(78), "{config}: {}", text(&out));
        assert!(text(&out).contains(&format!(": {key}: ")), "{config}: {}", text(&out));
    }
}

#[test]
fn check_config_warns_when_the_mo_domain_leaves_the_gateways_mos_open_to_others() {
    let dir = tempfile::tempdir().unwrap();
    let state = r#"["state", "in", ["confirmed", "progress"]]"#;
    let cases = [
        // The default: every MO of the Odoo
        (String::new(), None),
        (format!("mo_domain = '[{state}]'\n"), None),
        // A line group OR anything is no line group
        (
            format!(r#"mo_domain = '["|", ["picking_type_id", "=", 7], {state}]'"#) + "\n",
            None,
        ),
        (
            format!(r#"mo_domain = '[{state}, ["workorder_ids.workcenter_id", "in", [1, 2]]]'"#) + "\n",
            Some(r#"["workorder_ids.workcenter_id","in",[1,2]]"#),
        ),
        (
            format!(r#"mo_domain = '[{state}, ["x_line_group", "=", "press"]]'"#) + "\n",
            None,
        ),
        (
            format!(r#"mo_domain = '[{state}, ["x_line_group", "=", "press"]]'"#)
                + "\nline_group_fields = [\"x_line_group\"]\n",
            Some(r#"["x_line_group","=","press"]"#),
        ),
    ];
    for (domain, restricted_by) in cases {
        // Given a configuration with this MO domain
        let path = dir.path().join("linegate.toml");
        let config = format!("[odoo]\nurl = \"http://x\"\ndatabase = \"mes\"\napi_key = \"k\"\n{domain}");
        std::fs::write(&path, &config).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        // When it is checked, then it passes, and says what keeps the MOs to this gateway, or
        // warns that nothing does
        let out = linegate(&path, &["check-config"]).output().unwrap();
        let said = text(&out);
        assert_eq!(out.status.code(), Some(0), "{config}: {said}");
        match restricted_by {
            Some(term) => {
                assert!(
                    said.contains(&format!("MOs: this gateway's line group, by {term}")),
                    "{config}: {said}"
                );
                assert!(!said.contains("warning"), "{config}: {said}");
            }
            None => assert!(
                said.contains("warning: odoo.mo_domain does not restrict by a line-group field"),
                "{config}: {said}"
            ),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_world_readable_key_file_is_refused() {
    let sim = sim(19, 1).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim, "");
    std::fs::set_permissions(dir.path().join("odoo-api-key"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = output(linegate(&config, &["check-config"])).await;
    assert_eq!(out.status.code(), Some(78));
    assert!(
        text(&out).contains("odoo.api_key_file") && text(&out).contains("readable by every user"),
        "{}",
        text(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_once_with_nothing_changed_and_a_recent_reconcile_asks_three_times() {
    // Given 5,000 MOs last written long ago, synced once by `sync --once` (which reconciled)
    let sim = sim(19, 5_000).await;
    for id in sim.mo_ids() {
        sim.backdate_write(id, 600 + id);
    }
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim, "");
    let first = output(linegate(&config, &["sync", "--once", "odoo"])).await;
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));

    // When another `sync --once` runs with nothing changed, within the reconcile interval
    sim.reset_requests();
    let again = output(linegate(&config, &["sync", "--once", "odoo"])).await;

    // Then it asks Odoo's version, its fields, and what changed: three requests, no MO read
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    let said = String::from_utf8_lossy(&again.stdout);
    assert!(said.starts_with("odoo: ok: fetched 0,"), "{said}");
    assert!(said.contains(", 3 requests,"), "{said}");
    assert_eq!(sim.requests().len(), 3);
    // And it exits only once the store is closed: its checkpoint done, the WAL left empty
    let wal = dir.path().join("linegate.db-wal");
    assert!(
        !wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0,
        "the WAL was left behind"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_once_then_status_offline() {
    // Given an Odoo with 25 MOs
    let sim = sim(19, 25).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim, "");

    // When one sync runs in the foreground
    let out = output(linegate(&config, &["sync", "--once", "odoo"])).await;

    // Then it exits 0 with a one-line summary
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with("odoo: ok: fetched 25, inserted 25, updated 0, unchanged 0, gone 0"),
        "{stdout}"
    );

    // When Odoo is gone, a sync fails with a clear error and a non-zero exit
    sim.shutdown();
    drop(sim);
    let out = output(linegate(&config, &["sync", "--once"])).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("FAILED: cannot reach Odoo"), "{}", text(&out));

    // And status still answers from the store alone, showing both runs
    let out = output(linegate(&config, &["status"])).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let shown = text(&out);
    assert!(shown.contains("MOs       25 in Odoo's domain, 0 gone"), "{shown}");
    assert!(shown.contains("FAILED: cannot reach Odoo"), "{shown}");
    assert!(shown.contains("last good"), "{shown}");
    let out = output(linegate(&config, &["status", "--json"])).await;
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status --json is JSON");
    assert_eq!(json["mos"], 25);
    assert_eq!(json["schema_version"], linegate::store::SCHEMA_VERSION);
    assert_eq!(json["sources"][0]["last_ok"]["inserted"], 25);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reads_an_older_database_without_migrating_or_writing_it() {
    // Given a database at schema version 1, as an older linegate left it
    let sim = sim(19, 1).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim, "");
    let db = dir.path().join("linegate.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.execute_batch(include_str!("../migrations/0001_init.sql")).unwrap();
    conn.pragma_update(None, "user_version", 1).unwrap();
    drop(conn);
    let modified = std::fs::metadata(&db).unwrap().modified().unwrap();

    // When status runs
    let out = output(linegate(&config, &["status"])).await;

    // Then it says which schema it found and which it knows, and fails
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let known = linegate::store::SCHEMA_VERSION;
    assert!(
        text(&out).contains(&format!("schema version 1, older than this linegate's ({known})")),
        "{}",
        text(&out)
    );
    // And the database is untouched: not written, not migrated
    assert_eq!(std::fs::metadata(&db).unwrap().modified().unwrap(), modified);
    let version: u32 = reader(&db).query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_sync_page_leaves_a_sound_database() {
    // Given a slow Odoo with 2000 MOs, synced in pages of 100
    let sim = sim(19, 2000).await;
    sim.set_latency(Duration::from_millis(30));
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim, "page_size = 100\n");
    let db = dir.path().join("linegate.db");

    // When the sync is killed with SIGKILL after some pages committed
    let mut child = linegate(&config, &["sync", "--once"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("some committed pages", Duration::from_secs(30), || mo_count(&db) >= 300).await;
    child.kill().unwrap();
    child.wait().unwrap();

    // Then the database is sound and holds whole pages only
    let conn = reader(&db);
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
    let stored = mo_count(&db);
    assert!(stored % 100 == 0 && stored < 2000, "{stored} MOs");
    drop(conn);

    // And the next sync completes
    sim.set_latency(Duration::ZERO);
    let out = output(linegate(&config, &["sync", "--once"])).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(mo_count(&db), 2000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_stops_cleanly_on_sigterm() {
    // Given `linegate run` syncing against an Odoo with 30 MOs
    let sim = sim(19, 30).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim, "sync_interval = \"1s\"\n");
    let db = dir.path().join("linegate.db");
    let child = linegate(&config, &["run"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the first sync", Duration::from_secs(15), || mo_count(&db) == 30).await;

    // When systemd sends SIGTERM
    // SAFETY: kill(2) on our own child's pid.
    sigterm(&child);
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();

    // Then it exits 0, saying so, and leaves a sound database
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("SIGTERM: stopping") && text(&out).contains("linegate stopped"),
        "{}",
        text(&out)
    );
    let check: String = reader(&db)
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_tells_systemd_ready_feeds_the_watchdog_and_says_stopping() {
    // Given `linegate run` under a (fake) systemd: a notify socket and a 2 s watchdog
    let sim = sim(19, 3).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim, "");
    let socket_path = dir.path().join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let started = std::time::Instant::now();
    let child = linegate(&config, &["run"])
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "2000000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let messages = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink = messages.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let give_up = std::time::Instant::now() + Duration::from_secs(30);
        while std::time::Instant::now() < give_up {
            if let Ok(n) = socket.recv(&mut buf) {
                sink.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&buf[..n]).to_string());
            }
        }
    });
    let saw = |what: &str| {
        messages
            .lock()
            .unwrap()
            .iter()
            .any(|m| m.lines().any(|l| l.starts_with(what)))
    };

    // Then it says READY=1, feeds the watchdog, and reports a status line
    wait_until("READY=1", Duration::from_secs(15), || saw("READY=1")).await;
    eprintln!("start to READY=1: {:?}", started.elapsed());
    wait_until("WATCHDOG=1", Duration::from_secs(15), || saw("WATCHDOG=1")).await;
    wait_until("a status line", Duration::from_secs(15), || saw("STATUS=MOs")).await;

    // When systemd stops it, it says STOPPING=1 and exits 0
    // SAFETY: kill(2) on our own child's pid.
    sigterm(&child);
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    wait_until("STOPPING=1", Duration::from_secs(5), || saw("STOPPING=1")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_beside_a_running_agent_says_what_it_wrote_to_the_card() {
    // Given an agent running on a store, synced once
    let sim = sim(19, 50).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim, "");
    let db = dir.path().join("linegate.db");
    let mut agent = linegate(&config, &["run"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the first sync", Duration::from_secs(30), || mo_count(&db) == 50).await;

    // When `status` is asked beside it
    let shown = output(linegate(&config, &["status"])).await;
    let json = output(linegate(&config, &["status", "--json"])).await;
    agent.kill().unwrap();
    let _ = agent.wait();

    // Then it names the agent and what it wrote to storage since it started
    let said = text(&shown);
    assert!(
        said.contains(&format!("agent     running (pid {}), wrote ", agent.id())),
        "{said}"
    );
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(value["agent"]["pid"], agent.id());
    assert!(value["agent"]["written_bytes"].as_u64().is_some(), "{value}");
    // And with no agent running, it says nothing of one
    let alone = output(linegate(&config, &["status", "--json"])).await;
    let value: serde_json::Value = serde_json::from_slice(&alone.stdout).unwrap();
    assert!(value["agent"].is_null(), "{value}");
}
