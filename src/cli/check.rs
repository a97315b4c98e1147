//! `linegate check-config [--odoo]`: the file and its secrets, what goes back to Odoo, and with
//! `--odoo` what the configured Odoo offers the sync and each step of `[odoo.push]`.

use crate::config::{OdooConfig, PushConfig};
use crate::odoo::{Api, OdooClient};
use crate::outbox::odoo::preflight;

use super::{report_config, ConfigFile, EXIT_CONFIG, EXIT_FAILURE};

pub async fn check_config(file: &ConfigFile, ask_odoo: bool) -> u8 {
    let path = &file.path;
    let checked = file.config().map(|config| {
        config
            .validate_secrets()
            .and_then(|()| config.validate_work())
            .map(|()| config)
    });
    let config = match checked {
        Err(code) => return code,
        Ok(Err(e)) => return report_config(path, &e),
        Ok(Ok(config)) => config,
    };
    let odoo = config
        .odoo
        .as_ref()
        .map_or("no Odoo".to_string(), |o| format!("Odoo at {}", o.url));
    println!("{}: ok ({odoo}, store {})", path.display(), config.store.path.display());
    if let Some(odoo) = &config.odoo {
        println!("{}", line_group(odoo));
        println!("results to Odoo: {}", plan(&odoo.push));
    }
    if let Some(web) = &config.web {
        if let Err(e) = crate::web::check(web) {
            eprintln!("linegate: {}: {e}", path.display());
            return EXIT_CONFIG;
        }
        println!("screens: {}", web.summary());
        if config.mqtt.as_ref().is_some_and(|m| m.client_cert_file.is_some()) {
            println!(
                "warning: linegate web does not present mqtt.client_cert_file (it is the agent's identity): \
                 a broker that requires client certificates refuses the screens' display and station logins"
            );
        }
    }
    match (&config.odoo, ask_odoo) {
        (Some(odoo), true) => ask(path, odoo).await,
        (None, true) => {
            eprintln!("linegate: --odoo: the configuration has no [odoo] section");
            EXIT_CONFIG
        }
        (_, false) => 0,
    }
}

/// Which MOs are this gateway's: a line group, or a warning that another gateway on the same
/// Odoo would hold them too (a warning, not an error: one gateway alone needs no line group).
fn line_group(odoo: &OdooConfig) -> String {
    let terms = odoo.line_group_terms();
    if terms.is_empty() {
        let mut warning = format!(
            "warning: odoo.mo_domain does not restrict by a line-group field ({}, or more in \
             odoo.line_group_fields): every other gateway with such a domain on this Odoo holds the same MOs, \
             and only the first to report on one reaches Odoo",
            odoo.line_group_field_names()
        );
        // The first to report is found by its chatter note.
        if odoo.push.active() && !odoo.push.chatter {
            warning.push_str(
                "\nwarning: odoo.push.chatter is off: without its notes, a gateway cannot tell that another \
                 reports on an MO, and both would",
            );
        }
        warning
    } else {
        format!("MOs: this gateway's line group, by {}", terms.join(", "))
    }
}

/// The configured steps and bounds, in a line.
fn plan(push: &PushConfig) -> String {
    if !push.active() {
        return "off".to_string();
    }
    let mut steps = Vec::new();
    if push.chatter {
        steps.push("a chatter note".to_string());
    }
    let mapped = push.fields.mapped();
    if !mapped.is_empty() {
        let fields: Vec<String> = mapped.iter().map(|(key, f)| format!("{key} → {f}")).collect();
        steps.push(format!("fields {}", fields.join(", ")));
    }
    if push.progress {
        steps.push("the MO's progress".to_string());
    }
    if push.time_tracking {
        steps.push("time tracking".to_string());
    }
    format!(
        "{}; at most {} waiting, for at most {} days",
        steps.join(", "),
        push.max_pending,
        push.max_age.as_secs() / 86_400
    )
}

/// Connects and asks; 0 when Odoo offers everything configured, 78 when it refuses a part
/// (the configuration, or the API user's rights, must change: each refusal names the part and
/// the missing right or field), 1 when it cannot be asked.
async fn ask(path: &std::path::Path, odoo: &OdooConfig) -> u8 {
    let client = match OdooClient::new(odoo) {
        Ok(client) => client,
        Err(e) => return report_config(path, &e),
    };
    let (api, version) = match client.api().await {
        Ok(found) => found,
        Err(e) => {
            println!("Odoo: FAILED: {e}");
            return EXIT_FAILURE;
        }
    };
    let api = match api {
        Api::Json2 => "JSON-2",
        Api::JsonRpc => "/jsonrpc",
    };
    let mut refused = false;
    match client.field_plan(&odoo.fields).await {
        Ok(_) => println!("Odoo {version} ({api}): the sync's fields: ok"),
        Err(e) if e.is_retryable() => {
            println!("Odoo {version} ({api}): FAILED: {e}");
            return EXIT_FAILURE;
        }
        Err(e) => {
            println!("Odoo {version} ({api}): the sync's fields: REFUSED: {e}");
            refused = true;
        }
    }
    let push = odoo.push.active().then_some(&odoo.push);
    match preflight::preflight(&client, push).await {
        Ok(found) => {
            for check in &found.checks {
                let step = match check.step {
                    "sync" => format!("Odoo {version} ({api}): the sync's rights"),
                    step => format!("results to Odoo, {step}"),
                };
                match &check.outcome {
                    Ok(what) => println!("{step}: ok: {what}"),
                    Err(why) => {
                        println!("{step}: REFUSED: {why}");
                        refused = true;
                    }
                }
            }
            if push.is_some() {
                println!(
                    "results to Odoo: rights are asked per model; a record rule's refusal (another company's MO) \
                     parks the result at its first delivery, with Odoo's words"
                );
            }
        }
        Err(e) => {
            println!("Odoo {version} ({api}): FAILED: {e}");
            return EXIT_FAILURE;
        }
    }
    if refused {
        EXIT_CONFIG
    } else {
        0
    }
}
