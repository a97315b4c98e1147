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

/// An Odoo 19 with `mos` MOs and the agent's user beside its administrator.
async fn odoo(mos: usize) -> SimOdoo {
    let sim = sim(19, mos).await;
    sim.add_api_user("gateway@example.com", AGENT_KEY, false);
    sim
}

/// A configuration for `sim` in `dir` with the agent's own key, and `extra`.
fn agent_config(dir: &Path, sim: &SimOdoo, extra: &str) -> PathBuf {
    let config = write_config(dir, sim, extra);
    std::fs::write(dir.join("odoo-api-key"), AGENT_KEY).unwrap();
    config
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
    let sim = odoo(1).await;
    let dir = tempfile::tempdir().unwrap();
    let config = agent_config(
        dir.path(),
        &sim,
        &format!("[odoo.push]\nlanguage = \"id\"\n{}", every_value()),
    );

    // When the administrator runs odoo-setup with their key
    let made = odoo_setup(&config, Some(&sim.config().api_key), &[]).await;

    // Then it says what it made, field by field, and the page
    let said = text(&made);
    assert_eq!(made.status.code(), Some(0), "{said}");
    assert!(
        said.contains("field x_auth_first (char, \"Kode stiker pertama\") for odoo.push.fields.auth_first: made"),
        "{said}"
    );
    assert!(
        said.contains(
            "field x_produced (integer, \"Jumlah diproduksi di lantai produksi\") for odoo.push.fields.produced: made"
        ),
        "{said}"
    );
    assert!(
        said.contains("page \"Lantai produksi\" on the MO form (view 843): made (view 899), showing 9 fields"),
        "{said}"
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
    assert!(page < form.find("</notebook>").unwrap(), "{form}");
    for (name, _) in &kinds {
        let shown = form.find(&format!("<field name=\"{name}\"/>")).expect(name);
        assert!(
            shown > page && shown < form.find("</notebook>").unwrap(),
            "{name}: {form}"
        );
    }

    // When the floor registers, starts and ends the MO, through the agent (its own key)
    // and a real broker
    let broker = Mosquitto::start().await;
    let db = dir.path().join("floor.db");
    let mut odoo = odoo_config_as(&sim, AGENT_KEY);
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
    assert_eq!(
        [
            &mo["x_auth_first"],
            &mo["x_auth_last"],
            &mo["x_roll_number"],
            &mo["x_leader_id"],
            &mo["x_line"],
            &mo["x_operator"],
            &mo["x_produced"]
        ],
        [
            &json!("000100"),
            &json!("000219"),
            &json!("R-1"),
            &json!("0042"),
            &json!("L1"),
            &json!("ana"),
            &json!(120)
        ],
        "{mo}"
    );
    for time in ["x_floor_start", "x_floor_finished"] {
        let at = mo[time].as_str().unwrap_or_else(|| panic!("{time}: {mo}"));
        assert!(at.len() == 19 && at.as_bytes()[10] == b' ', "{time}: {at}");
    }
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_changes_nothing_and_remove_leaves_odoo_as_it_was() {
    // Given an Odoo whose administrator made x_roll_number by hand, and every value mapped
    let sim = odoo(1).await;
    sim.add_custom_field("x_roll_number");
    let dir = tempfile::tempdir().unwrap();
    let config = agent_config(dir.path(), &sim, &every_value());
    let admin = sim.config().api_key.clone();
    let before = odoo_side(&sim);

    // When it is run with --dry-run, then it says what it would make and changes nothing
    let dry = odoo_setup(&config, Some(&admin), &["--dry-run"]).await;
    assert_eq!(dry.status.code(), Some(0), "{}", text(&dry));
    assert!(
        text(&dry)
            .contains("field x_auth_first (char, \"First sticker code\") for odoo.push.fields.auth_first: to make"),
        "{}",
        text(&dry)
    );
    assert!(
        text(&dry).contains("dry run: nothing was changed in Odoo"),
        "{}",
        text(&dry)
    );
    assert_eq!(odoo_side(&sim), before);
    assert_eq!(changes(&sim), Vec::<String>::new());

    // When it is run, then it makes the eight missing fields and keeps the one there
    let made = odoo_setup(&config, Some(&admin), &[]).await;
    assert_eq!(made.status.code(), Some(0), "{}", text(&made));
    assert!(
        text(&made)
            .contains("field x_roll_number (char) for odoo.push.fields.roll_number: there, Odoo's own (kept as it is)"),
        "{}",
        text(&made)
    );
    assert_eq!(sim.made_fields().len(), 8);
    assert_eq!(changes(&sim), ["ir.model.fields.create", "ir.ui.view.create"]);
    let after_setup = odoo_side(&sim);

    // When it is run again, then it finds what it made, says so, and changes nothing
    sim.reset_requests();
    let again = odoo_setup(&config, Some(&admin), &[]).await;
    let said = text(&again);
    assert_eq!(again.status.code(), Some(0), "{said}");
    assert!(
        said.contains("field x_auth_first (char) for odoo.push.fields.auth_first: there, made by linegate odoo-setup"),
        "{said}"
    );
    assert!(
        said.contains("page \"Shop floor\" on the MO form (view 843): there (view 899), showing 9 fields"),
        "{said}"
    );
    assert!(said.contains("nothing to change"), "{said}");
    assert_eq!(changes(&sim), Vec::<String>::new());
    assert_eq!(odoo_side(&sim), after_setup);

    // When --remove runs dry, then it says what would go and changes nothing
    let dry = odoo_setup(&config, Some(&admin), &["--remove", "--dry-run"]).await;
    assert_eq!(dry.status.code(), Some(0), "{}", text(&dry));
    assert!(
        text(&dry).contains("page \"Shop floor\" on the MO form (view 899): to remove"),
        "{}",
        text(&dry)
    );
    assert_eq!(odoo_side(&sim), after_setup);

    // When --remove runs, then the page and the eight fields go, the administrator's stays,
    // and Odoo is as it was
    let removed = odoo_setup(&config, Some(&admin), &["--remove"]).await;
    let said = text(&removed);
    assert_eq!(removed.status.code(), Some(0), "{said}");
    assert!(said.contains("fields x_auth_first, x_auth_last, x_leader_id, x_line, x_operator, x_floor_start, x_floor_finished, x_produced: removed, with their values on every MO"), "{said}");
    assert!(
        said.contains(
            "field x_roll_number for odoo.push.fields.roll_number: not made by linegate odoo-setup, kept as it is"
        ),
        "{said}"
    );
    assert_eq!(odoo_side(&sim), before);
    let after = odoo_setup(&config, Some(&admin), &["--dry-run"]).await;
    assert!(
        text(&after).contains("x_roll_number (char) for odoo.push.fields.roll_number: there, Odoo's own"),
        "{}",
        text(&after)
    );
    // And once more, there is nothing to remove
    let nothing = odoo_setup(&config, Some(&admin), &["--remove"]).await;
    assert_eq!(nothing.status.code(), Some(0), "{}", text(&nothing));
    assert!(text(&nothing).contains("nothing to remove"), "{}", text(&nothing));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_answer_was_lost_is_finished_by_the_next() {
    // Given a bare Odoo that makes the fields but loses its answer
    let sim = odoo(1).await;
    let dir = tempfile::tempdir().unwrap();
    let config = agent_config(dir.path(), &sim, &every_value());
    let admin = sim.config().api_key.clone();
    sim.lose_answer_to("create");

    // When odoo-setup runs, then it stops, says the answer was lost, and exits 1
    let lost = odoo_setup(&config, Some(&admin), &[]).await;
    assert_eq!(lost.status.code(), Some(1), "{}", text(&lost));
    assert!(
        text(&lost).contains("FAILED making the fields: cannot reach Odoo"),
        "{}",
        text(&lost)
    );
    assert!(text(&lost).contains("Odoo's answer was lost"), "{}", text(&lost));
    assert_eq!((sim.made_fields().len(), sim.made_views().len()), (9, 0));

    // When it runs again, then it finds the fields as its own and makes the page
    let again = odoo_setup(&config, Some(&admin), &[]).await;
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(
        text(&again)
            .contains("field x_produced (integer) for odoo.push.fields.produced: there, made by linegate odoo-setup"),
        "{}",
        text(&again)
    );
    assert_eq!((sim.made_fields().len(), sim.made_views().len()), (9, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fields_made_for_a_page_odoo_does_not_take_are_taken_away_again() {
    // Given a bare Odoo whose proxy answers 503 to the call after the fields are made
    let sim = odoo(1).await;
    let dir = tempfile::tempdir().unwrap();
    let config = agent_config(dir.path(), &sim, &every_value());
    let admin = sim.config().api_key.clone();
    let dry = odoo_setup(&config, Some(&admin), &["--dry-run"]).await;
    assert_eq!(dry.status.code(), Some(0), "{}", text(&dry));
    let asking = sim.requests().len();
    sim.reset_requests();
    sim.fail_next(asking + 1, Fault::Stall(Duration::ZERO));
    sim.fail_next(1, Fault::Status503);

    // When odoo-setup runs
    let out = odoo_setup(&config, Some(&admin), &[]).await;

    // Then the page failed, the fields made for it were taken away again, and it says so
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("FAILED making the page: Odoo is unavailable (HTTP 503)"),
        "{said}"
    );
    assert!(said.contains("nothing was left half-made in Odoo"), "{said}");
    assert_eq!(changes(&sim), ["ir.model.fields.create", "ir.model.fields.unlink"]);
    assert!(sim.made_fields().is_empty() && sim.made_views().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_that_is_not_an_administrators_is_refused_and_nothing_is_made() {
    // Given a bare Odoo and every value mapped
    let sim = odoo(1).await;
    let dir = tempfile::tempdir().unwrap();
    let config = agent_config(dir.path(), &sim, &every_value());
    let before = odoo_side(&sim);

    // When odoo-setup is given the agent's own key, no key, or a key Odoo does not know
    let agents = odoo_setup(&config, Some(AGENT_KEY), &[]).await;
    let none = odoo_setup(&config, None, &[]).await;
    let unknown = odoo_setup(&config, Some("0000000000000000000000000000000000000000"), &[]).await;

    // Then each is refused with 78, naming the reason, and nothing was asked to change
    assert_eq!(agents.status.code(), Some(78), "{}", text(&agents));
    assert!(
        text(&agents).contains(
            "REFUSED: the key is not an administrator's: Odoo says its user may not create ir.model.fields records \
             (custom fields). Give the API key of a user in Administration: Settings"
        ),
        "{}",
        text(&agents)
    );
    assert_eq!(none.status.code(), Some(78), "{}", text(&none));
    assert!(
        text(&none).contains("REFUSED: no administrator's API key: set LINEGATE_ODOO_ADMIN_KEY"),
        "{}",
        text(&none)
    );
    assert_eq!(unknown.status.code(), Some(78), "{}", text(&unknown));
    assert!(text(&unknown).contains("Invalid apikey"), "{}", text(&unknown));
    for out in [&agents, &none, &unknown] {
        assert!(text(out).contains("nothing was changed in Odoo"), "{}", text(out));
    }
    assert_eq!(changes(&sim), Vec::<String>::new());
    assert_eq!(odoo_side(&sim), before);

    // And --remove with the agent's key is refused too
    let remove = odoo_setup(&config, Some(AGENT_KEY), &["--remove"]).await;
    assert_eq!(remove.status.code(), Some(78), "{}", text(&remove));
    assert!(
        text(&remove).contains("may not unlink ir.model.fields records"),
        "{}",
        text(&remove)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_field_of_another_type_or_a_name_without_x_is_refused_and_nothing_is_made() {
    // Given an Odoo whose x_produced is a text field, and every value mapped
    let sim = odoo(1).await;
    sim.add_custom_field("x_produced");
    let dir = tempfile::tempdir().unwrap();
    let config = agent_config(dir.path(), &sim, &every_value());
    let admin = sim.config().api_key.clone();
    let before = odoo_side(&sim);

    // When odoo-setup runs
    let clash = odoo_setup(&config, Some(&admin), &[]).await;

    // Then it is refused naming the key, both types and the way out, and none of the other
    // eight fields was made
    assert_eq!(clash.status.code(), Some(78), "{}", text(&clash));
    assert!(
        text(&clash).contains(
            "REFUSED: odoo.push.fields.produced: Odoo's `x_produced` is a char field, where linegate writes an \
             integer: map produced to another x_ name, or remove or change that field in Odoo"
        ),
        "{}",
        text(&clash)
    );
    assert!(text(&clash).contains("nothing was changed in Odoo"), "{}", text(&clash));
    assert_eq!(changes(&sim), Vec::<String>::new());
    assert_eq!(odoo_side(&sim), before);

    // When a value is mapped to a name without x_
    let config = agent_config(
        dir.path(),
        &sim,
        "[odoo.push.fields]\nroll_number = \"roll\"\nline = \"x_line\"\n",
    );
    sim.reset_requests();
    let bare = odoo_setup(&config, Some(&admin), &[]).await;

    // Then it is refused before Odoo is even asked
    assert_eq!(bare.status.code(), Some(78), "{}", text(&bare));
    assert!(
        text(&bare).contains("REFUSED: odoo.push.fields.roll_number: `roll` does not start with x_, as Odoo requires of a field made over the API: name it x_roll"),
        "{}",
        text(&bare)
    );
    assert!(sim.requests().is_empty(), "{:?}", sim.requests());
    assert_eq!(odoo_side(&sim), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_says_to_run_odoo_setup_where_fields_are_missing_and_an_unreachable_odoo_is_1() {
    // Given every value mapped on a bare Odoo, checked with the agent's own key
    let sim = odoo(1).await;
    let dir = tempfile::tempdir().unwrap();
    let config = agent_config(dir.path(), &sim, &every_value());

    // When the configuration is checked against Odoo, then it points at odoo-setup
    let asked = output(linegate(&config, &["check-config", "--odoo"])).await;
    assert_eq!(asked.status.code(), Some(78), "{}", text(&asked));
    assert!(
        text(&asked).contains(
            "results to Odoo, fields: REFUSED: odoo.push.fields.auth_first: Odoo has no field `x_auth_first` on \
             mrp.production: run `linegate odoo-setup`"
        ),
        "{}",
        text(&asked)
    );

    // When odoo-setup has run, then the agent's key finds every field
    let made = odoo_setup(&config, Some(&sim.config().api_key), &[]).await;
    assert_eq!(made.status.code(), Some(0), "{}", text(&made));
    let asked = output(linegate(&config, &["check-config", "--odoo"])).await;
    assert_eq!(asked.status.code(), Some(0), "{}", text(&asked));
    assert!(
        text(&asked).contains("results to Odoo, fields: ok: auth_first → x_auth_first (char)"),
        "{}",
        text(&asked)
    );

    // And odoo-setup exits 1 when Odoo cannot be reached
    sim.set_down(true);
    let down = odoo_setup(&config, Some(&sim.config().api_key), &[]).await;
    assert_eq!(down.status.code(), Some(1), "{}", text(&down));
    assert!(
        text(&down).contains("FAILED connecting: cannot reach Odoo"),
        "{}",
        text(&down)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_odoo_17_setup_speaks_jsonrpc_with_the_administrators_login() {
    // Given an Odoo 17 (no JSON-2, no has_access), and the administrator's key in a file
    let sim = sim(17, 1).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &sim,
        "[odoo.push.fields]\nroll_number = \"x_roll_number\"\n",
    );
    let key_file = dir.path().join("admin-key");
    std::fs::write(&key_file, &sim.config().api_key).unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let file = key_file.to_str().unwrap();

    // When it runs without the administrator's login, then it asks for it
    let no_login = odoo_setup(&config, None, &["--admin-key-file", file]).await;
    assert_eq!(no_login.status.code(), Some(78), "{}", text(&no_login));
    assert!(text(&no_login).contains("give --admin-login"), "{}", text(&no_login));

    // When it runs with it, then the field and the page are made over /jsonrpc
    let made = odoo_setup(&config, None, &["--admin-key-file", file, "--admin-login", "admin"]).await;
    assert_eq!(made.status.code(), Some(0), "{}", text(&made));
    assert!(text(&made).contains("Odoo 17 (/jsonrpc)"), "{}", text(&made));
    assert_eq!(sim.made_fields()[0]["name"], "x_roll_number");
    assert!(sim.mo_form().contains("<field name=\"x_roll_number\"/>"));
    assert!(sim
        .requests()
        .iter()
        .any(|r| r.method.as_deref() == Some("check_access_rights")));
}
