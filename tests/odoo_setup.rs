//! `linegate odoo-setup` as a plant's Odoo administrator runs it against the simulated Odoo:
//! on a bare Odoo it makes the fields `[odoo.push.fields]` maps and a page on the MO form, and
//! the floor's results then land in them; a second run changes nothing; `--remove` leaves Odoo
//! as it was; what cannot be made is refused with a line saying why, and nothing half-made.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use common::bin::{linegate, output, text, write_config};
use common::{count, mo_count, odoo_config_as, sim, wait_until, Agent, Mosquitto, Panel};
use linegate::config::{MqttConfig, PushFields};
use linegate_sim::odoo::{Fault, SimOdoo};
use serde_json::{json, Value};

/// The agent's own key: an internal user with the rights its steps need, not an administrator.
const AGENT_KEY: &str = "a9e47c1d0b3f5a6e7d8c9b0a1f2e3d4c5b6a7980";
const GATEWAY: &str = "gw-setup";
const PREFIX: &str = "linegate/gw-setup";

/// Every floor value mapped, as the shipped example maps them.
fn every_value() -> String {
    let example =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/linegate.example.toml")).unwrap();
    let section = example.split("[odoo.push.fields]\n").nth(1).unwrap();
    let mapped: Vec<&str> = section.lines().take_while(|l| !l.starts_with('[')).collect();
    format!("[odoo.push.fields]\n{}\n", mapped.join("\n"))
}

/// An Odoo 19 with an MO and the agent's user beside its administrator, and a configuration
/// with the agent's own key.
struct Site {
    sim: SimOdoo,
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Site {
    /// The Odoo as `prepare` leaves it, the configuration with `extra`.
    async fn new(prepare: impl FnOnce(&SimOdoo), extra: &str) -> Site {
        let sim = sim(19, 1).await;
        sim.add_api_user("gateway@example.com", AGENT_KEY, false);
        prepare(&sim);
        let dir = tempfile::tempdir().unwrap();
        let config = Site::configure(dir.path(), &sim, extra);
        Site { sim, dir, config }
    }

    fn configure(dir: &Path, sim: &SimOdoo, extra: &str) -> PathBuf {
        let config = write_config(dir, sim, extra);
        std::fs::write(dir.join("odoo-api-key"), AGENT_KEY).unwrap();
        config
    }

    /// `linegate odoo-setup ARGS` with the administrator's key.
    async fn setup(&self, args: &[&str]) -> Output {
        odoo_setup(&self.config, Some(&self.sim.config().api_key), args).await
    }
}

/// `linegate odoo-setup ARGS` with `admin_key` in the environment (none: not set).
async fn odoo_setup(config: &Path, admin_key: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = linegate(config, &[&["odoo-setup"], args].concat());
    cmd.env_remove("LINEGATE_ODOO_ADMIN_KEY");
    if let Some(key) = admin_key {
        cmd.env("LINEGATE_ODOO_ADMIN_KEY", key);
    }
    output(cmd).await
}

/// What an administrator would see of what odoo-setup touches: the custom fields, the views
/// made through the API, the MO form, the fields an MO has.
fn odoo_side(sim: &SimOdoo) -> (Vec<Value>, Vec<Value>, String, Vec<String>) {
    let mo = sim.mo(1).unwrap();
    let names = mo.as_object().unwrap().keys().cloned().collect();
    (sim.made_fields(), sim.made_views(), sim.mo_form(), names)
}

/// Asserts the exit code, and that the output says each of `lines`; the output.
fn says(out: &Output, code: i32, lines: &[&str]) -> String {
    let said = text(out);
    assert_eq!(out.status.code(), Some(code), "{said}");
    for line in lines {
        assert!(said.contains(line), "{line:?} is not in:\n{said}");
    }
    said
}

/// The methods called that change something in Odoo.
fn changes(sim: &SimOdoo) -> Vec<String> {
    let requests = sim.requests().into_iter();
    let changing = requests.filter(|r| matches!(r.method.as_deref(), Some("create" | "write" | "unlink")));
    changing
        .map(|r| format!("{}.{}", r.model.unwrap_or_default(), r.method.unwrap_or_default()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_bare_odoo_setup_makes_the_fields_and_the_page_and_the_floors_values_land_in_them() {
    // Given a bare Odoo, and a configuration mapping every floor value, labels in Bahasa
    // Indonesia, with the agent's own key
    let language = format!("[odoo.push]\nlanguage = \"id\"\n{}", every_value());
    let site = Site::new(|_| {}, &language).await;
    let sim = &site.sim;

    // When the administrator runs odoo-setup with their key
    let made = site.setup(&[]).await;

    // Then it says what it made, field by field, and the page
    says(
        &made,
        0,
        &[
            "field x_auth_first (char, \"Kode stiker pertama\") for odoo.push.fields.auth_first: made",
            "field x_produced (integer, \"Jumlah diproduksi di lantai produksi\") for odoo.push.fields.produced: made",
            "page \"Lantai produksi\" on the MO form (view 843): made (view 899), showing 9 fields",
        ],
    );
    // And Odoo has the nine fields with their types and labels, made by odoo-setup
    let fields = sim.made_fields();
    let kinds: Vec<(&str, &str)> = fields
        .iter()
        .map(|f| (f["name"].as_str().unwrap(), f["ttype"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("x_auth_first", "char"),
            ("x_auth_last", "char"),
            ("x_roll_number", "char"),
            ("x_leader_id", "char"),
            ("x_line", "char"),
            ("x_operator", "char"),
            ("x_floor_start", "datetime"),
            ("x_floor_finished", "datetime"),
            ("x_produced", "integer"),
        ]
    );
    assert_eq!(fields[2]["field_description"], "Nomor rol");
    assert!(fields
        .iter()
        .all(|f| f["help"].as_str().unwrap().contains("linegate odoo-setup")));
    // And the MO form shows them on its own page, in the notebook, before the chatter
    let form = sim.mo_form();
    let page = form
        .find("<page string=\"Lantai produksi\" name=\"linegate\">")
        .expect(&form);
    let notebook_end = form.find("</notebook>").unwrap();
    assert!(
        page < notebook_end && notebook_end < form.find("<chatter/>").unwrap(),
        "{form}"
    );
    for (name, _) in &kinds {
        let shown = form.find(&format!("<field name=\"{name}\"/>")).expect(name);
        assert!(shown > page && shown < notebook_end, "{name}: {form}");
    }

    // When the floor registers, starts and ends the MO, through the agent (its own key)
    // and a real broker
    let broker = Mosquitto::start().await;
    let db = site.dir.path().join("floor.db");
    let mut odoo = odoo_config_as(sim, AGENT_KEY);
    odoo.push.fields = PushFields {
        auth_first: Some("x_auth_first".into()),
        auth_last: Some("x_auth_last".into()),
        roll_number: Some("x_roll_number".into()),
        leader_id: Some("x_leader_id".into()),
        line: Some("x_line".into()),
        operator: Some("x_operator".into()),
        date_start: Some("x_floor_start".into()),
        date_finished: Some("x_floor_finished".into()),
        produced: Some("x_produced".into()),
    };
    let mut floor = common::config(odoo, &db);
    floor.mqtt = Some(MqttConfig::new("127.0.0.1", broker.port(), GATEWAY));
    let agent = Agent::start_online(floor, broker.port(), PREFIX).await;
    let panel = Panel::start(broker.port(), PREFIX, "ws-1").await;
    wait_until("the first sync", Duration::from_secs(10), || mo_count(&db) == 1).await;
    let steps = [
        (
            "register-mo",
            json!({"auth_first": "000100", "roll_number": "R-1", "line": "L1"}),
        ),
        ("start-production", json!({"leader_id": "0042"})),
        ("end-production", json!({"authenticity": "000220"})),
    ];
    for (n, (action, fields)) in steps.into_iter().enumerate() {
        let mut body = json!({"request_id": format!("setup-{n}"), "operator": "ana", "mo": 1});
        body.as_object_mut()
            .unwrap()
            .extend(fields.as_object().unwrap().clone());
        let reply = panel.send(action, body).await;
        assert_eq!(reply["ok"], true, "{action}: {reply}");
    }

    // Then every value lands in its field, in the field's shape
    let undelivered = "SELECT count(*) FROM outbox WHERE channel = 'odoo' AND delivered_at IS NULL";
    wait_until("the results in Odoo", Duration::from_secs(20), || {
        count(&db, undelivered) == 0
    })
    .await;
    let mo = sim.mo(1).unwrap();
    let texts = [
        "x_auth_first",
        "x_auth_last",
        "x_roll_number",
        "x_leader_id",
        "x_line",
        "x_operator",
    ];
    assert_eq!(
        texts.map(|f| mo[f].clone()),
        ["000100", "000219", "R-1", "0042", "L1", "ana"].map(|v| json!(v)),
        "{mo}"
    );
    assert_eq!(mo["x_produced"], json!(120), "{mo}");
    for time in ["x_floor_start", "x_floor_finished"] {
        let at = mo[time].as_str().unwrap_or_else(|| panic!("{time}: {mo}"));
        assert!(at.len() == 19 && at.as_bytes()[10] == b' ', "{time}: {at}");
    }
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_changes_nothing_and_remove_leaves_odoo_as_it_was() {
    // Given an Odoo whose administrator made x_roll_number by hand, and every value mapped
    let site = Site::new(|sim| sim.add_custom_field("x_roll_number"), &every_value()).await;
    let sim = &site.sim;
    let before = odoo_side(sim);

    // When it is run with --dry-run, then it says what it would make and changes nothing
    let dry = site.setup(&["--dry-run"]).await;
    says(
        &dry,
        0,
        &[
            "field x_auth_first (char, \"First sticker code\") for odoo.push.fields.auth_first: to make",
            "dry run: nothing was changed in Odoo",
        ],
    );
    assert_eq!(odoo_side(sim), before);
    assert_eq!(changes(sim), Vec::<String>::new());

    // When it is run, then it makes the eight missing fields and keeps the one there
    let made = site.setup(&[]).await;
    says(
        &made,
        0,
        &["field x_roll_number (char) for odoo.push.fields.roll_number: there, Odoo's own (kept as it is)"],
    );
    assert_eq!(sim.made_fields().len(), 8);
    assert_eq!(changes(sim), ["ir.model.fields.create", "ir.ui.view.create"]);
    let after_setup = odoo_side(sim);

    // When it is run again, then it finds what it made, says so, and changes nothing
    sim.reset_requests();
    let again = site.setup(&[]).await;
    says(
        &again,
        0,
        &[
            "field x_auth_first (char) for odoo.push.fields.auth_first: there, made by linegate odoo-setup",
            "page \"Shop floor\" on the MO form (view 843): there (view 899), showing 9 fields",
            "nothing to change",
        ],
    );
    assert_eq!(changes(sim), Vec::<String>::new());
    assert_eq!(odoo_side(sim), after_setup);

    // When a value is mapped no more, then the page stops showing it and its field stays
    let fewer = every_value().replace("produced = \"x_produced\"\n", "");
    Site::configure(site.dir.path(), sim, &fewer);
    let updated = site.setup(&[]).await;
    says(
        &updated,
        0,
        &[
            "field x_produced (integer): made by linegate odoo-setup, mapped no more: kept with its values",
            "page \"Shop floor\" on the MO form (view 843): updated (view 899), to show 8 fields",
        ],
    );
    assert_eq!(changes(sim), ["ir.ui.view.write"]);
    assert!(!sim.mo_form().contains("x_produced"), "{}", sim.mo_form());
    let after_update = odoo_side(sim);

    // When --remove runs dry, then it says what would go and changes nothing
    let dry = site.setup(&["--remove", "--dry-run"]).await;
    says(&dry, 0, &["page \"Shop floor\" on the MO form (view 899): to remove"]);
    assert_eq!(odoo_side(sim), after_update);

    // When --remove runs (the configuration mapping x_produced no more), then the page and
    // the eight fields it made go, the administrator's stays, and Odoo is as it was
    let removed = site.setup(&["--remove"]).await;
    says(
        &removed,
        0,
        &[
            "fields x_auth_first, x_auth_last, x_leader_id, x_line, x_operator, x_floor_start, x_floor_finished, \
             x_produced: removed, with their values on every MO",
            "field x_roll_number for odoo.push.fields.roll_number: not made by linegate odoo-setup, kept as it is",
        ],
    );
    assert_eq!(odoo_side(sim), before);
    let after = site.setup(&["--dry-run"]).await;
    says(
        &after,
        0,
        &["x_roll_number (char) for odoo.push.fields.roll_number: there, Odoo's own"],
    );
    // And once more, there is nothing to remove
    let nothing = site.setup(&["--remove"]).await;
    says(&nothing, 0, &["nothing to remove"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_answer_was_lost_is_finished_by_the_next() {
    // Given a bare Odoo that makes the fields but loses its answer
    let site = Site::new(|sim| sim.lose_answer_to("create"), &every_value()).await;
    let sim = &site.sim;

    // When odoo-setup runs, then it stops, says the answer was lost, and exits 1
    let lost = site.setup(&[]).await;
    says(
        &lost,
        1,
        &["FAILED making the fields: cannot reach Odoo", "Odoo's answer was lost"],
    );
    assert_eq!((sim.made_fields().len(), sim.made_views().len()), (9, 0));

    // When it runs again, then it finds the fields as its own and makes the page
    let again = site.setup(&[]).await;
    says(
        &again,
        0,
        &["field x_produced (integer) for odoo.push.fields.produced: there, made by linegate odoo-setup"],
    );
    assert_eq!((sim.made_fields().len(), sim.made_views().len()), (9, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fields_made_for_a_page_odoo_does_not_take_are_taken_away_again() {
    // Given a bare Odoo whose proxy answers 503 to the call after the fields are made
    let site = Site::new(|_| {}, &every_value()).await;
    let sim = &site.sim;
    let dry = site.setup(&["--dry-run"]).await;
    says(&dry, 0, &[]);
    let asking = sim.requests().len();
    sim.reset_requests();
    sim.fail_next(asking + 1, Fault::Stall(Duration::ZERO));
    sim.fail_next(1, Fault::Status503);

    // When odoo-setup runs
    let out = site.setup(&[]).await;

    // Then the page failed, the fields made for it were taken away again, and it says so
    says(
        &out,
        1,
        &[
            "FAILED making the page: Odoo is unavailable (HTTP 503)",
            "nothing was left half-made in Odoo",
        ],
    );
    assert_eq!(changes(sim), ["ir.model.fields.create", "ir.model.fields.unlink"]);
    assert!(sim.made_fields().is_empty() && sim.made_views().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_that_is_not_an_administrators_is_refused_and_nothing_is_made() {
    // Given a bare Odoo and every value mapped
    let site = Site::new(|_| {}, &every_value()).await;
    let (sim, config) = (&site.sim, &site.config);
    let before = odoo_side(sim);

    // When odoo-setup is given the agent's own key, no key, or a key Odoo does not know
    let agents = odoo_setup(config, Some(AGENT_KEY), &[]).await;
    let none = odoo_setup(config, None, &[]).await;
    let unknown = odoo_setup(config, Some("0000000000000000000000000000000000000000"), &[]).await;

    // Then each is refused with 78, naming the reason, and nothing was asked to change
    let unchanged = "nothing was changed in Odoo";
    let not_admin = "REFUSED: the key is not an administrator's: Odoo says its user may not create ir.model.fields \
                     records (custom fields). Give the API key of a user in Administration: Settings";
    says(&agents, 78, &[not_admin, unchanged]);
    let no_key = "REFUSED: no administrator's API key: set LINEGATE_ODOO_ADMIN_KEY";
    says(&none, 78, &[no_key, unchanged]);
    says(&unknown, 78, &["Invalid apikey", unchanged]);
    assert_eq!(changes(sim), Vec::<String>::new());
    assert_eq!(odoo_side(sim), before);

    // And --remove with the agent's key is refused too
    let remove = odoo_setup(config, Some(AGENT_KEY), &["--remove"]).await;
    says(&remove, 78, &["may not unlink ir.model.fields records"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_field_of_another_type_or_a_name_without_x_is_refused_and_nothing_is_made() {
    // Given an Odoo whose x_produced is a text field, and every value mapped
    let site = Site::new(|sim| sim.add_custom_field("x_produced"), &every_value()).await;
    let sim = &site.sim;
    let before = odoo_side(sim);

    // When odoo-setup runs
    let clash = site.setup(&[]).await;

    // Then it is refused naming the key, both types and the way out, and none of the other
    // eight fields was made
    let why = "REFUSED: odoo.push.fields.produced: Odoo's `x_produced` is a char field, where linegate writes an \
               integer: map produced to another x_ name, or remove or change that field in Odoo";
    says(&clash, 78, &[why, "nothing was changed in Odoo"]);
    assert_eq!(changes(sim), Vec::<String>::new());
    assert_eq!(odoo_side(sim), before);

    // When a value is mapped to a name without x_
    let unprefixed = "[odoo.push.fields]\nroll_number = \"roll\"\nline = \"x_line\"\n";
    let config = Site::configure(site.dir.path(), sim, unprefixed);
    sim.reset_requests();
    let bare = odoo_setup(&config, Some(&sim.config().api_key), &[]).await;

    // Then it is refused before Odoo is even asked
    let why = "REFUSED: odoo.push.fields.roll_number: `roll` does not start with x_, as Odoo requires of a field \
               made over the API: name it x_roll";
    says(&bare, 78, &[why]);
    assert!(sim.requests().is_empty(), "{:?}", sim.requests());
    assert_eq!(odoo_side(sim), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_says_to_run_odoo_setup_where_fields_are_missing_and_an_unreachable_odoo_is_1() {
    // Given every value mapped on a bare Odoo, checked with the agent's own key
    let site = Site::new(|_| {}, &every_value()).await;
    let (sim, config) = (&site.sim, &site.config);

    // When the configuration is checked against Odoo, then it points at odoo-setup
    let asked = output(linegate(config, &["check-config", "--odoo"])).await;
    let missing = "results to Odoo, fields: REFUSED: odoo.push.fields.auth_first: Odoo has no field `x_auth_first` \
                   on mrp.production: run `linegate odoo-setup`";
    says(&asked, 78, &[missing]);

    // When odoo-setup has run, then the agent's key finds every field
    let made = site.setup(&[]).await;
    says(&made, 0, &[]);
    let asked = output(linegate(config, &["check-config", "--odoo"])).await;
    says(
        &asked,
        0,
        &["results to Odoo, fields: ok: auth_first → x_auth_first (char)"],
    );

    // And odoo-setup exits 1 when Odoo cannot be reached
    sim.set_down(true);
    let down = site.setup(&[]).await;
    says(&down, 1, &["FAILED connecting: cannot reach Odoo"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_odoo_17_setup_speaks_jsonrpc_with_the_administrators_login() {
    // Given an Odoo 17 (no JSON-2, no has_access), and the administrator's key in a file
    let sim = sim(17, 1).await;
    let dir = tempfile::tempdir().unwrap();
    let mapped = "[odoo.push.fields]\nroll_number = \"x_roll_number\"\n";
    let config = write_config(dir.path(), &sim, mapped);
    let key_file = dir.path().join("admin-key");
    std::fs::write(&key_file, &sim.config().api_key).unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let file = key_file.to_str().unwrap();

    // When it runs without the administrator's login, then it asks for it
    let no_login = odoo_setup(&config, None, &["--admin-key-file", file]).await;
    says(&no_login, 78, &["give --admin-login"]);

    // When it runs with it, then the field and the page are made over /jsonrpc
    let made = odoo_setup(&config, None, &["--admin-key-file", file, "--admin-login", "admin"]).await;
    says(&made, 0, &["Odoo 17 (/jsonrpc)"]);
    assert_eq!(sim.made_fields()[0]["name"], "x_roll_number");
    assert!(sim.mo_form().contains("<field name=\"x_roll_number\"/>"));
    let asked = sim.requests().into_iter().filter_map(|r| r.method);
    assert!(asked.into_iter().any(|m| m == "check_access_rights"));
}
