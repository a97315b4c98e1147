//! `linegate odoo-setup [--dry-run] [--remove]`: the fields `[odoo.push.fields]` maps, and a
//! page on the MO form showing them, made in the configured Odoo over the API with an
//! administrator's key — or taken away again. 0 when done (or nothing to do), 78 when the
//! configuration or Odoo refuses (nothing is changed then), 1 when Odoo cannot be reached.
//!
//! The administrator's key is never the agent's: the agent's user needs no more than its
//! `[odoo.push]` steps, and its key stays on the gateway for years. The administrator's comes
//! for this one run, from `$LINEGATE_ODOO_ADMIN_KEY` (typed with `read -s`, so it is in no
//! file and no shell history) or a private file (`--admin-key-file`, `-` for stdin); never
//! as an argument, which every user sees in `ps`.

use std::io::Read;
use std::path::PathBuf;

use crate::config::{read_private, OdooApi, OdooConfig, Secret};
use crate::odoo::setup::page;
use crate::odoo::setup::plan::{self, FieldStep, Found, PageStep, Plan};
use crate::odoo::setup::{self, Task};
use crate::odoo::{Api, OdooClient, OdooError};

use super::{ConfigFile, EXIT_CONFIG, EXIT_FAILURE};

/// Where the administrator's key comes from when no file is given.
const ADMIN_KEY_ENV: &str = "LINEGATE_ODOO_ADMIN_KEY";

#[derive(Debug, Clone, Default)]
pub struct SetupArgs {
    /// Say what would change, change nothing.
    pub dry_run: bool,
    /// Take away what this command made.
    pub remove: bool,
    /// The administrator's key in a file (`-`: stdin) instead of `$LINEGATE_ODOO_ADMIN_KEY`.
    pub admin_key_file: Option<PathBuf>,
    /// The administrator's login, which `/jsonrpc` (Odoo 16–18) needs.
    pub admin_login: Option<String>,
}

/// A line saying why nothing was changed, and the exit code that goes with it.
fn refused(why: impl std::fmt::Display) -> u8 {
    println!("REFUSED: {why}");
    unchanged(EXIT_CONFIG)
}

pub async fn odoo_setup(file: &ConfigFile, args: SetupArgs) -> u8 {
    let config = match file.config() {
        Ok(config) => config,
        Err(code) => return code,
    };
    let Some(odoo) = &config.odoo else {
        return refused(format!("{}: no [odoo] section", file.path.display()));
    };
    let task = if args.remove { Task::Remove } else { Task::Make };
    let mapped = odoo.push.fields.mapped();
    if task == Task::Make {
        if mapped.is_empty() {
            return refused("odoo.push.fields maps no floor value: there is nothing to make (the example configuration maps them all)");
        }
        let offline = plan::refusals(&mapped);
        if !offline.is_empty() {
            for why in &offline {
                println!("REFUSED: {why}");
            }
            return unchanged(EXIT_CONFIG);
        }
    }
    let key = match admin_key(args.admin_key_file.as_deref()) {
        Ok(key) => key,
        Err(why) => return refused(why),
    };
    let client = match OdooClient::as_user(odoo, args.admin_login.clone(), Secret::ApiKey(key)) {
        Ok(client) => client,
        Err(e) => return refused(e),
    };
    let version = match connect(&client, odoo, args.admin_login.is_some()).await {
        Ok(version) => version,
        Err(code) => return code,
    };
    let rights = match setup::rights(&client, version, task).await {
        Ok(rights) => rights,
        Err(e) => return unchanged(failed(&e, "asking for the key's rights")),
    };
    if let Err((model, operation)) = rights {
        return refused(format!(
            "the key is not an administrator's: Odoo says its user may not {operation} {model} records ({}). \
             Give the API key of a user in Administration: Settings",
            setup::describe(model)
        ));
    }
    let names: Vec<&str> = mapped.iter().map(|(_, f)| *f).collect();
    let found = match setup::look(&client, &names).await {
        Ok(found) => found,
        Err(e) => return unchanged(failed(&e, "reading what Odoo has")),
    };
    match task {
        Task::Make => make(&client, odoo, &mapped, &found, args.dry_run).await,
        Task::Remove => remove(&client, &mapped, &found, args.dry_run).await,
    }
}

/// The administrator's key: from the file given (stdin for `-`), else the environment.
fn admin_key(file: Option<&std::path::Path>) -> Result<String, String> {
    let key = match file {
        Some(path) if path.as_os_str() == "-" => {
            let mut text = String::new();
            // An API key is 40 characters: more is not a key.
            std::io::stdin()
                .take(4096)
                .read_to_string(&mut text)
                .map_err(|e| format!("--admin-key-file -: reading stdin: {e}"))?;
            text.trim().to_string()
        }
        Some(path) => read_private(path, "--admin-key-file").map_err(|e| e.to_string())?,
        None => std::env::var(ADMIN_KEY_ENV).unwrap_or_default().trim().to_string(),
    };
    if key.is_empty() {
        return Err(format!(
            "no administrator's API key: set {ADMIN_KEY_ENV} (read -rs {ADMIN_KEY_ENV}; export {ADMIN_KEY_ENV}) or give \
             --admin-key-file (not the agent's own key: its user should not be an administrator)"
        ));
    }
    Ok(key)
}

/// Connects as the administrator and says where; the server's major version, or the exit code.
async fn connect(client: &OdooClient, odoo: &OdooConfig, have_login: bool) -> Result<u32, u8> {
    let version = client
        .server_version()
        .await
        .map_err(|e| unchanged(failed(&e, "connecting")))?;
    if (version < 19 || odoo.api == OdooApi::Jsonrpc) && !have_login {
        return Err(refused(format!(
            "this Odoo ({version}) is spoken to over /jsonrpc, which needs the administrator's login: give --admin-login"
        )));
    }
    let (api, version) = client.api().await.map_err(|e| unchanged(failed(&e, "logging in")))?;
    let api = match api {
        Api::Json2 => "JSON-2",
        Api::JsonRpc => "/jsonrpc",
    };
    println!("Odoo {version} ({api}) at {}, database {}", odoo.url, odoo.database);
    Ok(version)
}

/// Says that nothing was changed; `code`.
fn unchanged(code: u8) -> u8 {
    println!("nothing was changed in Odoo");
    code
}

/// A failure while asking or changing: 1 when Odoo could not be reached or answered badly
/// (running it again may work), 78 when Odoo refused.
fn failed(e: &OdooError, at: &str) -> u8 {
    println!("FAILED {at}: {e}");
    match e {
        e if e.is_retryable() => EXIT_FAILURE,
        OdooError::Decode(_) | OdooError::NotOdoo(_) | OdooError::TooLarge { .. } => EXIT_FAILURE,
        _ => EXIT_CONFIG,
    }
}

async fn make(client: &OdooClient, odoo: &OdooConfig, mapped: &[(&str, &str)], found: &Found, dry_run: bool) -> u8 {
    let language = odoo.push.language;
    let plan = match plan::plan(mapped, language, found) {
        Ok(plan) => plan,
        Err(clashes) => {
            for why in &clashes {
                println!("REFUSED: {why}");
            }
            return unchanged(EXIT_CONFIG);
        }
    };
    let done = if dry_run { "to make" } else { "made" };
    let page_id = if dry_run || plan.changes_nothing() {
        None
    } else {
        match setup::make(client, found, &plan, &plan::help(language)).await {
            Ok(id) => Some(id),
            Err(stopped) => {
                let code = failed(&stopped.error, stopped.at);
                let lost = matches!(stopped.error, OdooError::Timeout(_) | OdooError::Transport(_));
                match stopped.left.as_slice() {
                    // Odoo may have done it all the same: a run finds what it made.
                    _ if lost => println!(
                        "Odoo's answer was lost, so it may have made part of it: run linegate odoo-setup again \
                         (it finds what was made), or --remove"
                    ),
                    [] => println!("nothing was left half-made in Odoo"),
                    left => println!(
                        "the fields {} were made and could not be taken away again: run linegate odoo-setup again \
                         (it finds them), or --remove",
                        left.join(", ")
                    ),
                }
                return code;
            }
        }
    };
    for step in &plan.fields {
        match step {
            FieldStep::Make { key, name, kind, label } => {
                println!("field {name} ({kind}, \"{label}\") for odoo.push.fields.{key}: {done}")
            }
            FieldStep::Keep { key, name, kind, ours } => println!(
                "field {name} ({kind}) for odoo.push.fields.{key}: there, {}",
                if *ours {
                    "made by linegate odoo-setup"
                } else {
                    "Odoo's own (kept as it is)"
                }
            ),
        }
    }
    // Made by an earlier run for a value the configuration maps no more: its values stay.
    let unmapped = found
        .fields
        .iter()
        .filter(|f| f.ours && !mapped.iter().any(|(_, n)| *n == f.name));
    for field in unmapped {
        println!(
            "field {} ({}): made by linegate odoo-setup, mapped no more: kept with its values (--remove takes it away)",
            field.name, field.kind
        );
    }
    let shown = plan.fields.len();
    let (title, form) = (plan.title, found.form);
    match (&plan.page, page_id) {
        (PageStep::Keep { id }, _) => {
            println!("page \"{title}\" on the MO form (view {form}): there (view {id}), showing {shown} fields")
        }
        (PageStep::Make { .. }, id) => println!(
            "page \"{title}\" on the MO form (view {form}): {done}{}, showing {shown} fields",
            id.map_or(String::new(), |id| format!(" (view {id})"))
        ),
        (PageStep::Update { id, .. }, _) => println!(
            "page \"{title}\" on the MO form (view {form}): {} (view {id}), to show {shown} fields",
            if dry_run { "to update" } else { "updated" }
        ),
    }
    println!("{}", summary(&plan, dry_run));
    0
}

fn summary(plan: &Plan, dry_run: bool) -> String {
    match (plan.changes_nothing(), dry_run) {
        (true, _) => "nothing to change: Odoo has every mapped field, on the MO form's page".to_string(),
        (false, true) => "dry run: nothing was changed in Odoo".to_string(),
        (false, false) => format!(
            "done: every MO's form shows the floor's values on its \"{}\" page (results that waited for a missing \
             field go up after `linegate outbox retry --all`)",
            plan.title
        ),
    }
}

async fn remove(client: &OdooClient, mapped: &[(&str, &str)], found: &Found, dry_run: bool) -> u8 {
    let ours: Vec<&str> = found
        .fields
        .iter()
        .filter(|f| f.ours)
        .map(|f| f.name.as_str())
        .collect();
    if found.pages.is_empty() && ours.is_empty() {
        println!("nothing to remove: Odoo has nothing linegate odoo-setup made");
        return 0;
    }
    if !dry_run {
        if let Err(stopped) = setup::remove(client, found).await {
            let code = failed(&stopped.error, stopped.at);
            println!("run linegate odoo-setup --remove again: it finds what is left");
            return code;
        }
    }
    let gone = if dry_run { "to remove" } else { "removed" };
    for (id, arch) in &found.pages {
        let title = page::shows(arch).0.unwrap_or_default();
        println!("page \"{title}\" on the MO form (view {id}): {gone}");
    }
    if !ours.is_empty() {
        println!("fields {}: {gone}, with their values on every MO", ours.join(", "));
    }
    let kept = mapped
        .iter()
        .filter(|(_, name)| found.fields.iter().any(|f| f.name == *name && !f.ours));
    for (key, name) in kept {
        println!("field {name} for odoo.push.fields.{key}: not made by linegate odoo-setup, kept as it is");
    }
    match dry_run {
        true => println!("dry run: nothing was changed in Odoo"),
        false => println!("done: Odoo has nothing linegate odoo-setup made"),
    }
    0
}
