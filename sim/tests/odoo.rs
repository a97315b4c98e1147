//! The simulated Odoo is faithful to the real one: every answer here is checked against what
//! a real Odoo 19 answered (`shared/protocols/odoo-samples.md`, section ids in the comments) or
//! what `shared/protocols/odoo.md` states. The production client is tested against this
//! simulator, so a difference here would hide a bug there.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use linegate_sim::odoo::{Fault, NewMo, SimOdoo, SimOdooConfig};
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Odoo 19 demo data's products, as `product_id` shows them.
const DESK: (i64, &str) = (8, "[FURN_7800] Desk Combination");

/// What creating an MO without a product answers (D14, E13).
const NO_PRODUCT: &str = "The operation cannot be completed: Missing required value for the field 'Product' \
    (product_id).\nModel: 'Manufacturing Order' (mrp.production)\n- create/update: a mandatory field is not set\n\
    - delete: another model requires the record being deleted, you can archive it instead\n";

async fn start(config: SimOdooConfig) -> SimOdoo {
    SimOdoo::start(config).await.expect("the simulated Odoo starts")
}

async fn odoo19() -> SimOdoo {
    start(SimOdooConfig::default()).await
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// A raw answer: status, headers and body text (to see how numbers are written).
struct Raw {
    status: StatusCode,
    headers: HeaderMap,
    text: String,
}

impl Raw {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// Every `session_id` a `Set-Cookie` header gives.
    fn session_cookies(&self) -> Vec<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.strip_prefix("session_id="))
            .map(|v| v.split(';').next().unwrap_or_default().to_string())
            .collect()
    }

    fn content_type(&self) -> &str {
        self.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

async fn raw(request: reqwest::RequestBuilder) -> Raw {
    let response = request.send().await.expect("the simulated Odoo answers");
    Raw {
        status: response.status(),
        headers: response.headers().clone(),
        text: response.text().await.expect("a body"),
    }
}

/// POSTs a JSON-RPC envelope (with `"id": 1`) to `path`, with a session cookie when given.
async fn rpc(sim: &SimOdoo, path: &str, params: Value, cookie: Option<&str>) -> Raw {
    let mut request = client()
        .post(format!("{}{path}", sim.url()))
        .json(&json!({"jsonrpc": "2.0", "method": "call", "id": 1, "params": params}));
    if let Some(sid) = cookie {
        request = request.header("Cookie", format!("session_id={sid}"));
    }
    raw(request).await
}

/// `/jsonrpc` `object.execute_kw` with the configured password.
async fn execute_kw(sim: &SimOdoo, model: &str, method: &str, args: Value, kwargs: Value) -> Value {
    let c = sim.config();
    let params = json!({"service": "object", "method": "execute_kw",
        "args": [c.database, 2, c.password, model, method, args, kwargs]});
    let answer = rpc(sim, "/jsonrpc", params, None).await;
    assert_eq!(answer.status, StatusCode::OK, "/jsonrpc is always 200");
    answer.json()
}

/// The `result` of an `execute_kw` that must succeed.
async fn execute_ok(sim: &SimOdoo, model: &str, method: &str, args: Value, kwargs: Value) -> Value {
    let answer = execute_kw(sim, model, method, args, kwargs).await;
    assert!(answer.get("error").is_none(), "{model}.{method} failed: {answer}");
    answer["result"].clone()
}

/// POST `/json/2/<model>/<method>` with the configured key (or `key` when given).
async fn json2_body(sim: &SimOdoo, model: &str, method: &str, body: String, key: Option<&str>) -> Raw {
    let mut request = client()
        .post(format!("{}/json/2/{model}/{method}", sim.url()))
        .header("Content-Type", "application/json")
        .body(body);
    if let Some(key) = key {
        request = request.header("Authorization", format!("bearer {key}"));
    }
    raw(request).await
}

async fn json2(sim: &SimOdoo, model: &str, method: &str, body: Value) -> Raw {
    json2_body(sim, model, method, body.to_string(), Some(&sim.config().api_key)).await
}

/// `/web/session/authenticate` with the configured login; the answer and its session id.
async fn web_login(sim: &SimOdoo, password: &str) -> (Raw, Option<String>) {
    let c = sim.config();
    let params = json!({"db": c.database, "login": c.login, "password": password});
    let answer = rpc(sim, "/web/session/authenticate", params, None).await;
    let sid = answer.session_cookies().into_iter().next();
    (answer, sid)
}

/// `/web/dataset/call_kw` `mrp.production.search_count([])` with a session cookie.
async fn call_kw_count(sim: &SimOdoo, sid: Option<&str>) -> Raw {
    let params = json!({"model": "mrp.production", "method": "search_count", "args": [[]], "kwargs": {}});
    rpc(sim, "/web/dataset/call_kw/mrp.production/search_count", params, sid).await
}

/// Checks an `error` member as Odoo's JSON-RPC writes it (D5–D14) and returns its `data`.
fn rpc_error(answer: &Value, name: &str, message: &str) -> Value {
    let error = answer
        .get("error")
        .unwrap_or_else(|| panic!("an error was expected: {answer}"));
    assert_eq!(answer["jsonrpc"], "2.0");
    assert_eq!(answer["id"], 1, "errors other than session expiry keep the request id");
    assert!(answer.get("result").is_none());
    assert_eq!(error["code"], 0, "{answer}");
    assert_eq!(error["message"], "Odoo Server Error");
    let data = &error["data"];
    let keys: BTreeSet<&str> = data.as_object().expect("data").keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        BTreeSet::from(["arguments", "context", "debug", "message", "name"]),
        "{answer}"
    );
    assert_eq!(data["name"], name, "{answer}");
    assert_eq!(data["message"], message, "{answer}");
    assert_eq!(data["arguments"], json!([message]));
    assert_eq!(data["context"], json!({}));
    assert!(data["debug"].is_string());
    data.clone()
}

/// Checks the code-100 answer of a dead web session (D1, D2, D4, D4b).
fn session_expired(answer: &Value) {
    assert_eq!(
        answer,
        &json!({"jsonrpc": "2.0", "id": null, "error": {"code": 100, "message": "Odoo Session Expired", "data": {
            "name": "odoo.http.SessionExpiredException", "message": "Session expired",
            "arguments": ["Session expired"], "context": {}, "debug": answer["error"]["data"]["debug"]}}}),
    );
}

/// Checks a JSON-2 error answer (E5–E13) and returns its body.
fn json2_error(answer: &Raw, status: u16, name: &str, message: &str) -> Value {
    assert_eq!(answer.status.as_u16(), status, "{}", answer.text);
    assert_eq!(answer.content_type(), "application/json; charset=utf-8");
    let body = answer.json();
    let keys: BTreeSet<&str> = body
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from(["arguments", "context", "debug", "message", "name"])
    );
    assert_eq!(body["name"], name);
    assert_eq!(body["message"], message);
    let arguments = if name.starts_with("werkzeug.") {
        json!([message, status])
    } else {
        json!([message])
    };
    assert_eq!(body["arguments"], arguments);
    assert_eq!(body["context"], json!({}));
    body
}

fn is_odoo_datetime(v: &Value) -> bool {
    let Some(s) = v.as_str() else { return false };
    let b = s.as_bytes();
    b.len() == 19
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b' ',
            13 | 16 => *c == b':',
            _ => c.is_ascii_digit(),
        })
}

/// Polls `probe` until it returns Some, failing after `deadline`.
async fn poll<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    deadline: Duration,
    mut probe: impl FnMut() -> F,
) -> T {
    let give_up = Instant::now() + deadline;
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(
            Instant::now() < give_up,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn version_info_common_version_and_json_version_have_the_recorded_shapes() {
    // Given an Odoo 19 and an Odoo 17
    let sim = odoo19().await;
    let old = start(SimOdooConfig {
        version: 17,
        ..Default::default()
    })
    .await;
    let info19 = json!({"server_version": "19.0", "server_version_info": [19, 0, 0, "final", 0, ""],
        "server_serie": "19.0", "protocol_version": 1});

    // When asking their versions without authentication
    let web = raw(client()
        .post(format!("{}/web/webclient/version_info", sim.url()))
        .json(&json!({"jsonrpc": "2.0", "method": "call", "params": {}})))
    .await;
    let common = rpc(
        &sim,
        "/jsonrpc",
        json!({"service": "common", "method": "version", "args": []}),
        None,
    )
    .await;
    let json_version = raw(client().get(format!("{}/json/version", sim.url()))).await;
    let web17 = rpc(&old, "/web/webclient/version_info", json!({}), None).await;
    let json_version17 = raw(client().get(format!("{}/json/version", old.url()))).await;

    // Then each answers as recorded (A1, B1, E0), and 17 has no /json/version
    assert_eq!(web.status, StatusCode::OK);
    assert_eq!(web.content_type(), "application/json; charset=utf-8");
    assert_eq!(web.json(), json!({"jsonrpc": "2.0", "id": null, "result": info19}));
    let anonymous = web.session_cookies();
    assert_eq!(
        anonymous.len(),
        1,
        "a request without a cookie gets an (anonymous) session"
    );
    assert_eq!(anonymous[0].len(), 84);
    assert_eq!(common.json(), json!({"jsonrpc": "2.0", "id": 1, "result": info19}));
    assert!(common.session_cookies().is_empty(), "/jsonrpc saves no session (B1)");
    assert_eq!(json_version.status, StatusCode::OK);
    assert_eq!(
        json_version.json(),
        json!({"version_info": [19, 0, 0, "final", 0, ""], "version": "19.0"})
    );
    assert_eq!(
        web17.json()["result"]["server_version_info"],
        json!([17, 0, 0, "final", 0, ""])
    );
    assert_eq!(web17.json()["result"]["server_version"], "17.0");
    assert_eq!(json_version17.status, StatusCode::NOT_FOUND);

    // And the anonymous session of version_info is not a login
    session_expired(&call_kw_count(&sim, Some(&anonymous[0])).await.json());
}

#[tokio::test]
async fn a_saas_server_answers_its_version_with_saas_strings() {
    // Given an Odoo SaaS 18 and a SaaS 19
    let saas18 = start(SimOdooConfig {
        version: 18,
        saas: true,
        ..Default::default()
    })
    .await;
    let saas19 = start(SimOdooConfig {
        saas: true,
        ..Default::default()
    })
    .await;

    // When asking their versions
    let web = rpc(&saas18, "/web/webclient/version_info", json!({}), None).await;
    let common = rpc(
        &saas18,
        "/jsonrpc",
        json!({"service": "common", "method": "version", "args": []}),
        None,
    )
    .await;
    let json_version = raw(client().get(format!("{}/json/version", saas19.url()))).await;

    // Then the major version is inside a string, as SaaS answers
    let info = json!({"server_version": "saas~18.1", "server_version_info": ["saas~18", 1, 0, "final", 0, "e"],
        "server_serie": "saas~18.1", "protocol_version": 1});
    assert_eq!(web.json()["result"], info);
    assert_eq!(common.json()["result"], info);
    assert_eq!(
        json_version.json(),
        json!({"version_info": ["saas~19", 1, 0, "final", 0, "e"], "version": "saas~19.1"})
    );
}

#[tokio::test]
async fn common_authenticate_answers_a_uid_or_false_and_refuses_an_unknown_database() {
    // Given an Odoo 19 with login admin/admin and an API key
    let sim = odoo19().await;
    let c = sim.config().clone();
    let common = |method: &str, args: Value| json!({"service": "common", "method": method, "args": args});

    // When authenticating with the password, the key, a wrong password, and an unknown database
    let by_password = rpc(
        &sim,
        "/jsonrpc",
        common("authenticate", json!([c.database, c.login, c.password, {}])),
        None,
    )
    .await;
    let by_key = rpc(
        &sim,
        "/jsonrpc",
        common("authenticate", json!([c.database, c.login, c.api_key, {}])),
        None,
    )
    .await;
    let login = rpc(
        &sim,
        "/jsonrpc",
        common("login", json!([c.database, c.login, c.password])),
        None,
    )
    .await;
    let wrong = rpc(
        &sim,
        "/jsonrpc",
        common("authenticate", json!([c.database, c.login, "wrong", {}])),
        None,
    )
    .await;
    let wrong_login = rpc(
        &sim,
        "/jsonrpc",
        common("login", json!([c.database, c.login, "wrong"])),
        None,
    )
    .await;
    let no_db = rpc(
        &sim,
        "/jsonrpc",
        common("authenticate", json!(["nosuchdb", c.login, c.password, {}])),
        None,
    )
    .await;
    let web_no_db = rpc(
        &sim,
        "/web/session/authenticate",
        json!({"db": "nosuchdb", "login": c.login, "password": c.password}),
        None,
    )
    .await;

    // Then uid 2 (B2, B4, B5), `false` and not an error for a wrong password (B3, B6), and an
    // AccessError for the unknown database (A4)
    assert_eq!(by_password.json(), json!({"jsonrpc": "2.0", "id": 1, "result": 2}));
    assert_eq!(by_key.json(), json!({"jsonrpc": "2.0", "id": 1, "result": 2}));
    assert_eq!(login.json(), json!({"jsonrpc": "2.0", "id": 1, "result": 2}));
    assert_eq!(wrong.json(), json!({"jsonrpc": "2.0", "id": 1, "result": false}));
    assert_eq!(wrong_login.json(), json!({"jsonrpc": "2.0", "id": 1, "result": false}));
    rpc_error(&no_db.json(), "odoo.exceptions.AccessError", "Database not found.");
    rpc_error(&web_no_db.json(), "odoo.exceptions.AccessError", "Database not found.");
}

#[tokio::test]
async fn search_read_values_have_odoo_shapes_on_every_api() {
    // Given an MO of 3 desks without origin or deadline
    let sim = odoo19().await;
    let id = sim.create_mo(NewMo {
        product: Some((DESK.0, DESK.1.to_string())),
        qty: 3.0,
        ..Default::default()
    });
    let fields = json!([
        "id",
        "name",
        "state",
        "product_id",
        "product_qty",
        "product_uom_id",
        "qty_producing",
        "qty_produced",
        "origin",
        "bom_id",
        "create_date",
        "write_date",
        "date_start",
        "date_finished",
        "date_deadline",
        "user_id",
        "company_id",
        "priority",
        "reservation_state",
        "picking_ids",
        "move_dest_ids",
        "move_finished_ids",
        "workorder_ids",
        "lot_producing_ids"
    ]);

    // When reading it with the full field list of C1 through /jsonrpc, JSON-2 and call_kw
    let c = sim.config().clone();
    let params = json!({"service": "object", "method": "execute_kw", "args": [c.database, 2, c.api_key,
        "mrp.production", "search_read", [[]], {"fields": fields, "limit": 2, "order": "id asc"}]});
    let by_rpc = rpc(&sim, "/jsonrpc", params, None).await;
    let by_json2 = json2(
        &sim,
        "mrp.production",
        "search_read",
        json!({"domain": [], "fields": fields}),
    )
    .await;
    let (_, sid) = web_login(&sim, &c.password).await;
    let by_web = rpc(
        &sim,
        "/web/dataset/call_kw/mrp.production/search_read",
        json!({"model": "mrp.production", "method": "search_read", "args": [],
               "kwargs": {"domain": [], "fields": fields}}),
        sid.as_deref(),
    )
    .await;

    // Then empty values are false, many2one is [id, name], floats carry a decimal point and
    // datetimes are naive "YYYY-MM-DD HH:MM:SS" — the same on all three APIs
    let record = by_rpc.json()["result"][0].clone();
    assert_eq!(record["id"], id);
    assert_eq!(record["name"], format!("WH/MO/{id:05}"));
    assert_eq!(record["state"], "confirmed");
    assert_eq!(record["origin"], false);
    assert_eq!(record["date_deadline"], false);
    assert_eq!(record["product_id"], json!([DESK.0, DESK.1]));
    assert_eq!(record["bom_id"], json!([1, DESK.1]));
    assert_eq!(record["product_uom_id"], json!([1, "Units"]));
    assert_eq!(record["company_id"], json!([1, "My Company (San Francisco)"]));
    assert_eq!(record["priority"], "0");
    for many in [
        "picking_ids",
        "move_dest_ids",
        "move_finished_ids",
        "workorder_ids",
        "lot_producing_ids",
    ] {
        assert!(record[many].is_array(), "{many} is a list of ids: {record}");
    }
    for date in ["create_date", "write_date", "date_start", "date_finished"] {
        assert!(is_odoo_datetime(&record[date]), "{date}: {}", record[date]);
    }
    let keys: Vec<&str> = record.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys.len(),
        fields.as_array().unwrap().len(),
        "exactly the fields asked for"
    );
    assert!(
        record.as_object().unwrap().values().all(|v| !v.is_null()),
        "never null: {record}"
    );
    for text in [&by_rpc.text, &by_json2.text, &by_web.text] {
        assert!(text.contains(r#""product_qty":3.0"#), "3.0, not 3: {text}");
        assert!(text.contains(r#""qty_producing":0.0"#), "0.0, not 0: {text}");
        assert!(text.contains(r#""qty_produced":0.0"#), "0.0, not 0: {text}");
    }
    assert_eq!(by_json2.status, StatusCode::OK);
    assert_eq!(by_json2.json(), json!([record]), "JSON-2 answers the bare list (E1)");
    assert_eq!(by_web.json()["result"], json!([record]));
}

#[tokio::test]
async fn execute_kw_errors_have_the_recorded_names_and_messages() {
    // Given an Odoo 19 with one MO
    let sim = odoo19().await;
    sim.seed(1);
    let c = sim.config().clone();

    // When calling with a wrong password, then with each recorded mistake
    let wrong_password = rpc(
        &sim,
        "/jsonrpc",
        json!({"service": "object", "method": "execute_kw",
               "args": [c.database, 2, "wrong", "mrp.production", "search_count", [[]]]}),
        None,
    )
    .await
    .json();
    let unknown_db = rpc(
        &sim,
        "/jsonrpc",
        json!({"service": "object", "method": "execute_kw",
               "args": ["nosuchdb", 2, c.password, "mrp.production", "search_count", [[]]]}),
        None,
    )
    .await
    .json();
    let unknown_model = execute_kw(
        &sim,
        "mrp.nosuchmodel",
        "search_read",
        json!([[]]),
        json!({"fields": ["id"]}),
    )
    .await;
    let unknown_field = execute_kw(
        &sim,
        "mrp.production",
        "search_read",
        json!([[]]),
        json!({"fields": ["id", "nosuchfield"], "limit": 1}),
    )
    .await;
    let domain_field = execute_kw(
        &sim,
        "mrp.production",
        "search_read",
        json!([[["nosuchfield", "=", 1]]]),
        json!({"fields": ["id"]}),
    )
    .await;
    let unknown_method = execute_kw(&sim, "mrp.production", "nosuchmethod", json!([[]]), json!({})).await;
    let private = execute_kw(&sim, "mrp.production", "_set_quantities", json!([[1]]), json!({})).await;
    let missing = execute_kw(
        &sim,
        "mrp.production",
        "write",
        json!([[999999], {"origin": "x"}]),
        json!({}),
    )
    .await;
    let no_product = execute_kw(
        &sim,
        "mrp.production",
        "create",
        json!([[{"product_qty": 1}]]),
        json!({}),
    )
    .await;

    // Then each is the recorded exception (D5, D7–D14), with code 0 and the full data member
    let denied = rpc_error(&wrong_password, "odoo.exceptions.AccessDenied", "Access Denied");
    assert_eq!(
        denied["debug"], "odoo.exceptions.AccessDenied: Access Denied\n",
        "no traceback (D5)"
    );
    rpc_error(
        &unknown_db,
        "psycopg2.OperationalError",
        "connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  database \"nosuchdb\" does not exist\n",
    );
    rpc_error(
        &unknown_model,
        "odoo.exceptions.UserError",
        "Object mrp.nosuchmodel doesn't exist",
    );
    rpc_error(
        &unknown_field,
        "builtins.ValueError",
        "Invalid field 'nosuchfield' on 'mrp.production'",
    );
    rpc_error(
        &domain_field,
        "builtins.ValueError",
        "Invalid field mrp.production.nosuchfield in condition ('nosuchfield', '=', 1)",
    );
    rpc_error(
        &unknown_method,
        "builtins.AttributeError",
        "The method 'mrp.production.nosuchmethod' does not exist",
    );
    rpc_error(
        &private,
        "odoo.exceptions.AccessError",
        "Private methods (such as 'mrp.production._set_quantities') cannot be called remotely.",
    );
    rpc_error(
        &missing,
        "odoo.exceptions.MissingError",
        "Record does not exist or has been deleted.\n(Record: mrp.production(999999,), User: 2)",
    );
    rpc_error(&no_product, "odoo.exceptions.ValidationError", NO_PRODUCT);
}

#[tokio::test]
async fn json2_errors_have_the_recorded_statuses_and_success_is_the_bare_result() {
    // Given an Odoo 19 with one MO
    let sim = odoo19().await;
    let id = sim.create_mo(NewMo {
        qty: 1.0,
        ..Default::default()
    });
    let key = sim.config().api_key.clone();
    let read = json!({"domain": [], "fields": ["id"]}).to_string();

    // When calling JSON-2 without a key and with a bogus one
    let no_key = json2_body(&sim, "mrp.production", "search_read", read.clone(), None).await;
    let bogus = json2_body(
        &sim,
        "mrp.production",
        "search_read",
        read.clone(),
        Some("03281ac66f737d08b7d947f15b602794719e0000"),
    )
    .await;

    // Then 401 with `WWW-Authenticate: Bearer` and the recorded messages (E5, E6)
    for answer in [&no_key, &bogus] {
        let www = answer.headers.get("www-authenticate").and_then(|v| v.to_str().ok());
        assert_eq!(www.map(str::trim), Some("Bearer"));
    }
    json2_error(
        &no_key,
        401,
        "werkzeug.exceptions.Unauthorized",
        "User not authenticated, use an API Key with a Bearer Authorization header.",
    );
    json2_error(&bogus, 401, "werkzeug.exceptions.Unauthorized", "Invalid apikey");

    // When making each recorded mistake with a good key
    let unknown_model = json2(&sim, "mrp.nosuchmodel", "search_read", json!({"domain": []})).await;
    let unknown_method = json2(&sim, "mrp.production", "nosuchmethod", json!({})).await;
    let no_domain = json2(&sim, "mrp.production", "search", json!({"limit": 1})).await;
    let unknown_field = json2(
        &sim,
        "mrp.production",
        "search_read",
        json!({"domain": [], "fields": ["id", "nosuchfield"], "limit": 1}),
    )
    .await;
    let not_json = json2_body(&sim, "mrp.production", "search_read", "not json".into(), Some(&key)).await;
    let missing = json2(
        &sim,
        "mrp.production",
        "write",
        json!({"ids": [999999], "vals": {"origin": "x"}}),
    )
    .await;
    let no_product = json2(
        &sim,
        "mrp.production",
        "create",
        json!({"vals_list": [{"product_qty": 1}]}),
    )
    .await;

    // Then 404, 404, 422, 500, 400, 404 and 422 as recorded (E7–E13); 403 is a user without
    // rights (the rights tests below)
    json2_error(
        &unknown_model,
        404,
        "werkzeug.exceptions.NotFound",
        "the model 'mrp.nosuchmodel' does not exist",
    );
    json2_error(
        &unknown_method,
        404,
        "werkzeug.exceptions.NotFound",
        "The method 'mrp.production.nosuchmethod' does not exist",
    );
    json2_error(
        &no_domain,
        422,
        "werkzeug.exceptions.UnprocessableEntity",
        "missing a required argument: 'domain'",
    );
    json2_error(
        &unknown_field,
        500,
        "builtins.ValueError",
        "Invalid field 'nosuchfield' on 'mrp.production'",
    );
    json2_error(
        &not_json,
        400,
        "werkzeug.exceptions.BadRequest",
        "could not parse the body as json: Expecting value: line 1 column 1 (char 0)",
    );
    json2_error(
        &missing,
        404,
        "odoo.exceptions.MissingError",
        "Record does not exist or has been deleted.\n(Record: mrp.production(999999,), User: 2)",
    );
    json2_error(&no_product, 422, "odoo.exceptions.ValidationError", NO_PRODUCT);

    // When calling correctly
    let search_read = json2(
        &sim,
        "mrp.production",
        "search_read",
        json!({"domain": [], "fields": ["id"], "limit": 1}),
    )
    .await;
    let count = json2(&sim, "mrp.production", "search_count", json!({"domain": []})).await;
    let read = json2(
        &sim,
        "mrp.production",
        "read",
        json!({"ids": [id], "fields": ["name", "state"]}),
    )
    .await;
    let created = json2(
        &sim,
        "mrp.production",
        "create",
        json!({"vals_list": [{"product_id": 8, "bom_id": 1, "product_qty": 1, "origin": "EDGE-PROBE-2"}]}),
    )
    .await;
    let new = created.json()[0].as_i64().expect("a new id");
    let confirm = json2(&sim, "mrp.production", "action_confirm", json!({"ids": [new]})).await;
    let started = json2(&sim, "mrp.production", "action_start", json!({"ids": [new]})).await;
    let cancel = json2(&sim, "mrp.production", "action_cancel", json!({"ids": [new]})).await;
    let write = json2(
        &sim,
        "mrp.production",
        "write",
        json!({"ids": [new], "vals": {"origin": "EDGE-PROBE-2b"}}),
    )
    .await;

    // Then the bodies are bare JSON: a list, a number, `true`, and `null` for action_start (E1–E3, F7–F10)
    for answer in [
        &search_read,
        &count,
        &read,
        &created,
        &confirm,
        &started,
        &cancel,
        &write,
    ] {
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        assert_eq!(answer.content_type(), "application/json; charset=utf-8");
    }
    assert_eq!(search_read.json(), json!([{"id": id}]));
    assert_eq!(count.text, "1");
    assert_eq!(
        read.json(),
        json!([{"id": id, "name": format!("WH/MO/{id:05}"), "state": "confirmed"}])
    );
    assert_eq!(created.json(), json!([new]));
    assert_eq!(confirm.text, "true");
    assert_eq!(started.text, "null");
    assert_eq!(cancel.text, "true");
    assert_eq!(write.text, "true");
}

#[tokio::test]
async fn fields_get_ignores_unknown_names() {
    // Given an Odoo 19 without the factory's custom fields
    let sim = odoo19().await;

    // When asking fields_get for known and unknown names
    let result = execute_ok(
        &sim,
        "mrp.production",
        "fields_get",
        json!([["name", "note", "state", "group_worker", "picking_ids"]]),
        json!({"attributes": ["type", "string", "store", "selection"]}),
    )
    .await;

    // Then only the known ones come back, no error (C0), with the recorded attributes
    let names: BTreeSet<&str> = result.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(names, BTreeSet::from(["name", "picking_ids", "state"]));
    assert_eq!(
        result["name"],
        json!({"type": "char", "string": "Reference", "store": true})
    );
    assert_eq!(result["picking_ids"]["store"], false);
    assert_eq!(
        result["state"]["selection"],
        json!([
            ["draft", "Draft"],
            ["confirmed", "Confirmed"],
            ["progress", "In Progress"],
            ["to_close", "To Close"],
            ["done", "Done"],
            ["cancel", "Cancelled"]
        ])
    );

    // And a custom field exists once the instance has it
    let custom = start(SimOdooConfig {
        custom_fields: vec!["group_worker".into()],
        ..Default::default()
    })
    .await;
    let result = execute_ok(
        &custom,
        "mrp.production",
        "fields_get",
        json!([["group_worker", "note"]]),
        json!({}),
    )
    .await;
    let names: Vec<&str> = result.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(names, ["group_worker"]);
}

#[tokio::test]
async fn keyset_paging_on_write_date_and_id_delivers_every_mo_exactly_once() {
    // Given 25 MOs, most written in the same second, a few earlier
    let sim = odoo19().await;
    let ids = sim.seed(25);
    sim.backdate_write(ids[3], 10);
    sim.backdate_write(ids[17], 10);
    sim.backdate_write(ids[9], 5);

    // When paging with the (write_date, id) cursor, 7 at a time
    let mut seen = Vec::new();
    let mut cursor: Option<(String, i64)> = None;
    let mut pages = 0;
    loop {
        let domain = match &cursor {
            None => json!([]),
            Some((w, i)) => json!(["|", ["write_date", ">", w], "&", ["write_date", "=", w], ["id", ">", i]]),
        };
        let page = execute_ok(
            &sim,
            "mrp.production",
            "search_read",
            json!([domain]),
            json!({"fields": ["id", "write_date"], "order": "write_date asc, id asc", "limit": 7}),
        )
        .await;
        let page = page.as_array().unwrap().clone();
        pages += 1;
        assert!(pages <= 10, "paging does not end");
        let Some(last) = page.last() else { break };
        cursor = Some((
            last["write_date"].as_str().unwrap().to_string(),
            last["id"].as_i64().unwrap(),
        ));
        seen.extend(
            page.iter()
                .map(|r| (r["write_date"].as_str().unwrap().to_string(), r["id"].as_i64().unwrap())),
        );
    }

    // Then every MO came exactly once, in (write_date, id) order
    assert_eq!(pages, 5, "4 pages of data (7, 7, 7, 4) and an empty one");
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "ordered by write_date, then id");
    let mut got: Vec<i64> = seen.iter().map(|(_, id)| *id).collect();
    got.sort_unstable();
    assert_eq!(got, ids);
    assert_eq!(seen[0].1, ids[3].min(ids[17]), "the oldest write comes first");
}

#[tokio::test]
async fn or_joined_origin_ilike_finds_pickings_and_consecutive_terms_are_anded() {
    // Given three pickings: two matching by origin, one of them done, and an unrelated one
    let sim = odoo19().await;
    let so = sim.create_picking("SO/0001");
    let mo = sim.create_picking("WH/MO/00005");
    let _other = sim.create_picking("OTHER");
    execute_ok(
        &sim,
        "stock.picking",
        "write",
        json!([[mo], {"state": "done"}]),
        json!({}),
    )
    .await;
    let a = json!(["origin", "ilike", "so/0001"]);
    let b = json!(["origin", "ilike", "wh/mo/00005"]);
    let done = json!(["state", "=", "done"]);
    let find = |domain: Value| {
        let sim = &sim;
        async move {
            let found = execute_ok(
                sim,
                "stock.picking",
                "search_read",
                json!([domain]),
                json!({"fields": ["id"]}),
            )
            .await;
            let mut ids: Vec<i64> = found
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["id"].as_i64().unwrap())
                .collect();
            ids.sort_unstable();
            ids
        }
    };

    // When searching with `|`-joined ilike terms, `origin in`, and implicit `&`
    let either = find(json!(["|", a, b])).await;
    let listed = find(json!([["origin", "in", ["SO/0001", "WH/MO/00005"]]])).await;
    let either_and_done = find(json!(["|", a, b, done])).await;
    let a_or_b_and_done = find(json!(["|", a, "&", b, done])).await;

    // Then ilike is case-insensitive, and ["|", A, B, C] means (A or B) and C
    assert_eq!(either, vec![so, mo]);
    assert_eq!(listed, vec![so, mo]);
    assert_eq!(either_and_done, vec![mo]);
    assert_eq!(a_or_b_and_done, vec![so, mo]);
}

#[tokio::test]
async fn backorders_rename_the_mo_and_number_the_rest() {
    // Given an MO of 5
    let sim = odoo19().await;
    sim.seed(3);
    let id = sim.create_mo(NewMo {
        qty: 5.0,
        ..Default::default()
    });
    let name = format!("WH/MO/{id:05}");
    let read = |ids: Vec<i64>| {
        let sim = &sim;
        async move {
            execute_ok(
                sim,
                "mrp.production",
                "read",
                json!([ids]),
                json!({"fields": ["name", "product_qty", "state"]}),
            )
            .await
        }
    };

    // When 2 are marked done with a backorder
    let second = sim.backorder(id, 2.0);

    // Then the MO keeps its id as -001 (2, done) and -002 holds the other 3
    assert_ne!(second, id);
    assert_eq!(
        read(vec![id, second]).await,
        json!([{"id": id, "name": format!("{name}-001"), "product_qty": 2.0, "state": "done"},
               {"id": second, "name": format!("{name}-002"), "product_qty": 3.0, "state": "confirmed"}])
    );

    // When the backorder is itself partly done
    let third = sim.backorder(second, 1.0);

    // Then -002 closes with 1 and -003 holds the remaining 2
    assert_eq!(
        read(vec![second, third]).await,
        json!([{"id": second, "name": format!("{name}-002"), "product_qty": 1.0, "state": "done"},
               {"id": third, "name": format!("{name}-003"), "product_qty": 2.0, "state": "confirmed"}])
    );
}

#[tokio::test]
async fn state_changes_answer_as_recorded() {
    // Given a new MO created over /jsonrpc (F1)
    let sim = odoo19().await;
    let created = execute_ok(
        &sim,
        "mrp.production",
        "create",
        json!([[{"product_id": 8, "bom_id": 1, "product_qty": 2, "origin": "EDGE-PROBE-1"}]]),
        json!({}),
    )
    .await;
    let id = created[0].as_i64().expect("create answers a list of ids");
    let single = execute_ok(&sim, "mrp.production", "create", json!([{"product_id": 8}]), json!({})).await;
    assert!(single.is_i64(), "create(dict) answers the id alone: {single}");
    let fields = json!(["name", "state", "qty_producing", "qty_produced", "date_finished"]);

    // When confirming, starting and marking it done (F2–F6)
    let draft = execute_ok(
        &sim,
        "mrp.production",
        "read",
        json!([[id]]),
        json!({"fields": ["state", "product_uom_id"]}),
    )
    .await;
    let confirm = execute_kw(&sim, "mrp.production", "action_confirm", json!([[id]]), json!({})).await;
    let start = execute_kw(&sim, "mrp.production", "action_start", json!([[id]]), json!({})).await;
    let done = execute_kw(&sim, "mrp.production", "button_mark_done", json!([[id]]), json!({})).await;
    let after = execute_ok(&sim, "mrp.production", "read", json!([[id]]), json!({"fields": fields})).await;

    // Then draft, true, no `result` at all, true, and the whole quantity produced
    assert_eq!(
        draft,
        json!([{"id": id, "state": "draft", "product_uom_id": [1, "Units"]}])
    );
    assert_eq!(confirm, json!({"jsonrpc": "2.0", "id": 1, "result": true}));
    assert_eq!(
        start,
        json!({"jsonrpc": "2.0", "id": 1}),
        "F4: a None result has no `result` key"
    );
    assert_eq!(done, json!({"jsonrpc": "2.0", "id": 1, "result": true}));
    assert_eq!(after[0]["state"], "done");
    assert_eq!(after[0]["qty_producing"], 2.0);
    assert_eq!(after[0]["qty_produced"], 2.0);

    // When reporting part of another MO's quantity and marking it done
    let mo = five_with_two_produced(&sim).await;
    let set = execute_kw(&sim, "mrp.production", "set_qty_producing", json!([[mo]]), json!({})).await;
    let wizard = execute_ok(&sim, "mrp.production", "button_mark_done", json!([[mo]]), json!({})).await;
    let unchanged = execute_ok(
        &sim,
        "mrp.production",
        "read",
        json!([[mo]]),
        json!({"fields": ["state", "qty_producing"]}),
    )
    .await;
    let context = json!({"skip_backorder": true, "mo_ids_to_backorder": [mo]});
    let closed = execute_ok(
        &sim,
        "mrp.production",
        "button_mark_done",
        json!([[mo]]),
        json!({"context": context}),
    )
    .await;
    let rest = execute_ok(
        &sim,
        "mrp.production",
        "search_read",
        json!([[["name", "like", format!("WH/MO/{mo:05}-")]]]),
        json!({"fields": ["name", "product_qty", "state"], "order": "id asc"}),
    )
    .await;
    let note = execute_ok(
        &sim,
        "mrp.production",
        "message_post",
        json!([[mo]]),
        json!({"body": "line 3"}),
    )
    .await;

    // Then the write is `true` and stored as a float, set_qty_producing answers nothing, a partial
    // quantity answers the backorder wizard (a dict, not `true`) and changes nothing, and with
    // `skip_backorder` the MO closes as -001, -002 holds the rest, and the answer is a dict too
    assert_eq!(set, json!({"jsonrpc": "2.0", "id": 1}));
    assert_eq!(wizard["type"], "ir.actions.act_window");
    assert_eq!(wizard["res_model"], "mrp.production.backorder");
    assert_eq!(
        unchanged,
        json!([{"id": mo, "state": "progress", "qty_producing": 2.0}])
    );
    assert_eq!(closed["res_id"], mo + 1, "the action opens the backorder: {closed}");
    assert_eq!(
        rest,
        json!([{"id": mo, "name": format!("WH/MO/{mo:05}-001"), "product_qty": 2.0, "state": "done"},
               {"id": mo + 1, "name": format!("WH/MO/{mo:05}-002"), "product_qty": 3.0, "state": "confirmed"}])
    );
    assert!(note.is_i64(), "message_post answers the message id: {note}");
}

#[tokio::test]
async fn web_session_cookie_works_until_it_is_missing_bogus_or_expired() {
    // Given an Odoo 19 with two confirmed MOs
    let sim = odoo19().await;
    sim.seed(2);

    // When logging in through /web/session/authenticate (A2)
    let (login, sid) = web_login(&sim, "admin").await;

    // Then the answer is the session info, and the cookie is an 84-character session_id
    let sid = sid.expect("a session_id cookie");
    assert_eq!(sid.len(), 84);
    assert!(login.session_cookies().iter().all(|c| *c == sid));
    let cookie_header = login.headers.get("set-cookie").unwrap().to_str().unwrap();
    assert!(
        cookie_header.contains("Max-Age=604800")
            && cookie_header.contains("HttpOnly")
            && cookie_header.contains("Path=/")
    );
    let info = login.json();
    assert_eq!(info["id"], 1);
    assert_eq!(info["result"]["uid"], 2);
    assert_eq!(info["result"]["db"], "mes");
    assert_eq!(info["result"]["server_version_info"], json!([19, 0, 0, "final", 0, ""]));

    // When calling call_kw with it (A6), with none (D2), a bogus one (D1), and after a
    // server-side expiry (D4b)
    let with_cookie = rpc(
        &sim,
        "/web/dataset/call_kw/mrp.production/search_read",
        json!({"model": "mrp.production", "method": "search_read", "args": [],
               "kwargs": {"domain": [["state", "=", "confirmed"]], "fields": ["id", "name", "state"], "limit": 2,
                          "order": "id asc"}}),
        Some(&sid),
    )
    .await;
    let without = call_kw_count(&sim, None).await;
    let bogus = call_kw_count(&sim, Some(&format!("bogus{}", "0".repeat(79)))).await;
    sim.expire_sessions();
    let expired = call_kw_count(&sim, Some(&sid)).await;

    // Then the first works and the others are code 100 "Odoo Session Expired" with id null
    assert_eq!(
        with_cookie.json(),
        json!({"jsonrpc": "2.0", "id": 1, "result": [
            {"id": 1, "name": "WH/MO/00001", "state": "confirmed"},
            {"id": 2, "name": "WH/MO/00002", "state": "confirmed"}]})
    );
    assert!(with_cookie.session_cookies().is_empty(), "call_kw sets no cookie (A6)");
    for answer in [&without, &bogus, &expired] {
        assert_eq!(answer.status, StatusCode::OK);
        session_expired(&answer.json());
    }

    // And a destroyed session (D3, D4) is expired too
    let (_, sid) = web_login(&sim, "admin").await;
    let sid = sid.unwrap();
    assert_eq!(call_kw_count(&sim, Some(&sid)).await.json()["result"], 2);
    let destroy = rpc(&sim, "/web/session/destroy", json!({}), Some(&sid)).await;
    assert_eq!(destroy.json(), json!({"jsonrpc": "2.0", "id": 1}));
    session_expired(&call_kw_count(&sim, Some(&sid)).await.json());
}

#[tokio::test]
async fn ten_failed_web_logins_lock_the_right_password_out_but_not_jsonrpc() {
    // Given an Odoo 19
    let sim = odoo19().await;
    let c = sim.config().clone();

    // When ten wrong passwords are tried on /web/session/authenticate (A3)
    for _ in 0..10 {
        let (answer, sid) = web_login(&sim, "wrong").await;
        rpc_error(&answer.json(), "odoo.exceptions.AccessDenied", "Access Denied");
        assert!(sid.is_none());
    }
    let (locked, sid) = web_login(&sim, &c.password).await;
    let common = rpc(
        &sim,
        "/jsonrpc",
        json!({"service": "common", "method": "authenticate", "args": [c.database, c.login, c.password, {}]}),
        None,
    )
    .await;
    let object = execute_kw(&sim, "mrp.production", "search_count", json!([[]]), json!({})).await;
    let bearer = json2(&sim, "mrp.production", "search_count", json!({"domain": []})).await;

    // Then the eleventh, with the right password, is refused, while /jsonrpc and JSON-2 are not throttled
    rpc_error(
        &locked.json(),
        "odoo.exceptions.AccessDenied",
        "Too many login failures, please wait a bit before trying again.",
    );
    assert!(sid.is_none());
    assert_eq!(common.json()["result"], 2);
    assert_eq!(object["result"], 0);
    assert_eq!(bearer.text, "0");
}

#[tokio::test]
async fn a_rotated_session_cookie_is_adopted_and_the_old_one_dies_after_the_grace() {
    // Given a session rotated every 200 ms, the old id living 300 ms more
    let sim = odoo19().await;
    sim.set_session_rotation(Duration::from_millis(200));
    sim.set_rotation_grace(Duration::from_millis(300));
    let (_, old) = web_login(&sim, "admin").await;
    let old = old.unwrap();
    let fresh = call_kw_count(&sim, Some(&old)).await;
    assert!(
        fresh.session_cookies().is_empty(),
        "no rotation before the rotation age"
    );
    assert_eq!(fresh.json()["result"], 0);

    // When calling after the rotation age (the test is about elapsed time)
    tokio::time::sleep(Duration::from_millis(220)).await;
    let rotated_at = Instant::now();
    let rotating = call_kw_count(&sim, Some(&old)).await;
    sim.set_session_rotation(Duration::from_secs(3600));

    // Then the answer is normal and carries a new session_id
    assert_eq!(rotating.json()["result"], 0);
    let new = rotating.session_cookies();
    assert_eq!(new.len(), 1, "one new cookie");
    let new = new[0].clone();
    assert_eq!(new.len(), 84);
    assert_ne!(new, old);

    // And the old id keeps working until the grace ends, then answers code 100
    let still = call_kw_count(&sim, Some(&old)).await;
    assert_eq!(still.json()["result"], 0, "the old id works during the grace");
    let old_alive_for = poll("the old session id to die", Duration::from_secs(5), || {
        let (sim, old) = (&sim, old.clone());
        async move {
            let answer = call_kw_count(sim, Some(&old)).await.json();
            (answer["error"]["code"] == 100).then(|| {
                session_expired(&answer);
                rotated_at.elapsed()
            })
        }
    })
    .await;
    assert!(
        old_alive_for >= Duration::from_millis(300),
        "died after {old_alive_for:?}"
    );

    // And the new id works
    let with_new = call_kw_count(&sim, Some(&new)).await;
    assert_eq!(with_new.json()["result"], 0);
    assert!(with_new.session_cookies().is_empty());
}

#[tokio::test]
async fn injected_faults_503_down_drop_and_latency() {
    // Given an Odoo 19 with a 503 queued
    let sim = odoo19().await;
    let version = || {
        rpc(
            &sim,
            "/jsonrpc",
            json!({"service": "common", "method": "version", "args": []}),
            None,
        )
    };
    sim.fail_next(1, Fault::Status503);

    // When calling twice
    let first = version().await;
    let second = version().await;

    // Then an HTML 503 once, then the normal answer
    assert_eq!(first.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(first.content_type().starts_with("text/html"));
    assert!(first.text.contains("503"));
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(second.json()["result"]["server_version"], "19.0");

    // When the server is down, then back
    sim.set_down(true);
    let down = client()
        .post(format!("{}/jsonrpc", sim.url()))
        .json(&json!({"jsonrpc": "2.0", "method": "call", "id": 1, "params": {"service": "common", "method": "version", "args": []}}))
        .send()
        .await;
    sim.set_down(false);
    let back = version().await;

    // Then the request fails at transport level (no status), and works again after
    let error = down.expect_err("no answer while down");
    assert!(error.status().is_none(), "a transport error, not a status: {error}");
    assert_eq!(back.status, StatusCode::OK);

    // When one connection is dropped
    sim.fail_next(1, Fault::Drop);
    let dropped = client().get(format!("{}/json/version", sim.url())).send().await;
    assert!(dropped.is_err(), "a dropped connection is a transport error");
    assert_eq!(version().await.status, StatusCode::OK);

    // When a huge answer is queued, said up front and then streamed
    for (fault, says_length) in [(Fault::Huge(300_000), true), (Fault::HugeChunked(300_000), false)] {
        sim.fail_next(1, fault);
        let answer = client()
            .get(format!("{}/json/version", sim.url()))
            .send()
            .await
            .unwrap();
        // Then one carries its Content-Length, the other none (chunked), both about that long
        assert_eq!(answer.content_length().is_some(), says_length, "{fault:?}");
        let body = answer.bytes().await.unwrap();
        assert!((250_000..=300_000).contains(&body.len()), "{fault:?}: {}", body.len());
    }

    // When latency is configured
    let slow = start(SimOdooConfig {
        latency: Duration::from_millis(150),
        ..Default::default()
    })
    .await;
    let started = Instant::now();
    let answer = raw(client().get(format!("{}/json/version", slow.url()))).await;

    // Then an answer takes at least that long
    assert_eq!(answer.status, StatusCode::OK);
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn requests_are_recorded_with_api_model_method_and_status() {
    // Given an Odoo 19 with a web session
    let sim = odoo19().await;
    let (_, sid) = web_login(&sim, "admin").await;
    sim.reset_requests();

    // When calling each API once, one of them without a key
    json2(
        &sim,
        "mrp.production",
        "search_read",
        json!({"domain": [], "fields": ["id"]}),
    )
    .await;
    json2_body(&sim, "mrp.production", "search_count", "{}".into(), None).await;
    execute_ok(&sim, "stock.picking", "search_count", json!([[]]), json!({})).await;
    call_kw_count(&sim, sid.as_deref()).await;
    sim.fail_next(1, Fault::Status503);
    raw(client().get(format!("{}/json/version", sim.url()))).await;

    // Then each is recorded with its API, model, method and status
    let seen: Vec<(&str, Option<String>, Option<String>, u16)> = sim
        .requests()
        .into_iter()
        .map(|r| (r.api, r.model, r.method, r.status))
        .collect();
    let some = |s: &str| Some(s.to_string());
    assert_eq!(
        seen,
        vec![
            ("json2", some("mrp.production"), some("search_read"), 200),
            ("json2", some("mrp.production"), some("search_count"), 401),
            ("jsonrpc", some("stock.picking"), some("search_count"), 200),
            ("web", some("mrp.production"), some("search_count"), 200),
            ("other", None, None, 503),
        ]
    );
    assert_eq!(sim.requests()[0].path, "/json/2/mrp.production/search_read");
}

#[tokio::test]
async fn the_chatter_takes_notes_and_finds_them_again_by_event_id() {
    // Given an Odoo 19 with one MO
    let sim = odoo19().await;
    let mo = sim.seed(1)[0];

    // When a note is posted on it over JSON-2, as the push-back does
    let posted = json2(
        &sim,
        "mrp.production",
        "message_post",
        json!({"ids": [mo], "body": "Produced 120, event e-123", "message_type": "comment", "subtype_xmlid": "mail.mt_note"}),
    )
    .await;

    // Then the answer is a list with the new message's id, and the chatter finds it by the event
    // id, its body wrapped in a paragraph
    assert_eq!(posted.status, StatusCode::OK);
    let id = posted.json()[0].as_i64().expect("[message_id]");
    let found = json2(
        &sim,
        "mail.message",
        "search_read",
        json!({"domain": [["model", "=", "mrp.production"], ["res_id", "=", mo], ["body", "ilike", "e-123"]],
               "fields": ["id", "body", "date", "author_id", "subtype_id"]}),
    )
    .await
    .json();
    assert_eq!(found.as_array().unwrap().len(), 1, "{found}");
    assert_eq!(found[0]["id"], id);
    assert_eq!(found[0]["body"], "<p>Produced 120, event e-123</p>");
    assert_eq!(found[0]["author_id"], json!([3, "YourCompany, Mitchell Admin"]));
    assert_eq!(found[0]["subtype_id"], json!([2, "Note"]));
    assert!(found[0]["date"].as_str().unwrap().len() == 19, "{found}");
    // And another event id finds nothing
    let other = json2(
        &sim,
        "mail.message",
        "search_read",
        json!({"domain": [["model", "=", "mrp.production"], ["res_id", "=", mo], ["body", "ilike", "e-124"]]}),
    )
    .await;
    assert_eq!(other.json(), json!([]));

    // When posting on an MO that does not exist, then 404 MissingError as recorded
    let missing = json2(
        &sim,
        "mrp.production",
        "message_post",
        json!({"ids": [999999], "body": "x"}),
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.json()["name"], "odoo.exceptions.MissingError");
    assert_eq!(
        missing.json()["message"],
        "Record does not exist or has been deleted.\n(Record: mrp.production(999999,), User: 2)"
    );

    // When a field the instance lacks is written, then HTTP 500 ValueError, "in" (not "on")
    let write = json2(
        &sim,
        "mrp.production",
        "write",
        json!({"ids": [mo], "vals": {"x_auth_first": "000100"}}),
    )
    .await;
    assert_eq!(write.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(write.json()["name"], "builtins.ValueError");
    assert_eq!(
        write.json()["message"],
        "Invalid field 'x_auth_first' in 'mrp.production'"
    );
}

#[tokio::test]
async fn an_answer_lost_on_its_way_back_was_carried_out_all_the_same() {
    // Given an Odoo that will lose its answer to the next message_post
    let sim = odoo19().await;
    let mo = sim.seed(1)[0];
    sim.lose_answer_to("message_post");

    // When a note is posted
    let lost = client()
        .post(format!("{}/json/2/mrp.production/message_post", sim.url()))
        .header("Authorization", format!("bearer {}", sim.config().api_key))
        .json(&json!({"ids": [mo], "body": "event e-9"}))
        .send()
        .await;

    // Then the caller sees a transport error, and the chatter holds the note once
    assert!(lost.is_err(), "the connection closes without an answer");
    assert_eq!(sim.messages(mo).len(), 1);
    // And the next call is answered normally
    let again = json2(
        &sim,
        "mrp.production",
        "message_post",
        json!({"ids": [mo], "body": "event e-10"}),
    )
    .await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(sim.messages(mo).len(), 2);
}

#[tokio::test]
async fn time_tracking_records_real_times_on_work_orders() {
    // Given an MO with a work order, one without, and the loss types of a fresh database
    let sim = odoo19().await;
    let ids = sim.seed(2);
    let workorder = sim.add_workorder(ids[0], 1).unwrap();
    let read = |id: i64| {
        json2(
            &sim,
            "mrp.production",
            "read",
            json!({"ids": [id], "fields": ["workorder_ids"]}),
        )
    };
    assert_eq!(read(ids[0]).await.json()[0]["workorder_ids"], json!([workorder]));
    assert_eq!(read(ids[1]).await.json()[0]["workorder_ids"], json!([]));
    let productive = json2(
        &sim,
        "mrp.workcenter.productivity.loss",
        "search_read",
        json!({"domain": [["loss_type", "=", "productive"]], "fields": ["name"]}),
    )
    .await
    .json();
    assert_eq!(productive, json!([{"id": 7, "name": "Fully Productive Time"}]));

    // When half an hour of productive time is recorded on the work order, as recorded on 19
    let created = json2(
        &sim,
        "mrp.workcenter.productivity",
        "create",
        json!({"vals_list": [{"workorder_id": workorder, "workcenter_id": 1, "production_id": ids[0], "loss_id": 7,
               "date_start": "2026-12-01 06:00:00", "date_end": "2026-12-01 06:30:00", "description": "line 3"}]}),
    )
    .await;

    // Then a list with its id, and it reads back with its duration in minutes and the key's user
    assert_eq!(created.status, StatusCode::OK);
    let id = created.json()[0].as_i64().expect("[id]");
    let back = json2(
        &sim,
        "mrp.workcenter.productivity",
        "read",
        json!({"ids": [id], "fields": ["duration", "user_id", "company_id", "loss_type"]}),
    )
    .await
    .json();
    assert_eq!(back[0]["duration"], 30.0);
    assert_eq!(back[0]["user_id"], json!([2, "Mitchell Admin"]));
    assert_eq!(back[0]["company_id"], json!([1, "My Company (San Francisco)"]));
    assert_eq!(back[0]["loss_type"], "productive");

    // When the work center is left out, then 422 ValidationError naming it, and nothing is made
    let invalid = json2(
        &sim,
        "mrp.workcenter.productivity",
        "create",
        json!({"vals_list": [{"loss_id": 7, "date_start": "2026-12-01 06:00:00"}]}),
    )
    .await;
    assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(invalid.json()["name"], "odoo.exceptions.ValidationError");
    assert!(invalid.json()["message"].as_str().unwrap().contains("(workcenter_id)"));
    assert_eq!(sim.productivity().len(), 1);
}

#[tokio::test]
async fn a_user_without_rights_on_a_model_is_refused_as_recorded_but_fields_get_answers() {
    // Given an API user without rights on the MOs (D16, E14)
    let sim = odoo19().await;
    sim.seed(1);
    sim.deny("mrp.production");
    let recorded = "You are not allowed to access 'Manufacturing Order' (mrp.production) records.\n\n\
                    This operation is allowed for the following groups:\n\t- Inventory/User\n\t- \
                    Manufacturing/Administrator\n\t- Manufacturing/User\n\n\
                    Contact your administrator to request access if necessary.";

    // When it reads them on JSON-2 and on /jsonrpc
    let json2_read = json2(
        &sim,
        "mrp.production",
        "search_read",
        json!({"domain": [], "fields": ["id"], "limit": 1}),
    )
    .await;
    let rpc_read = execute_kw(
        &sim,
        "mrp.production",
        "search_read",
        json!([[]]),
        json!({"fields": ["id"], "limit": 1}),
    )
    .await;

    // Then both are the recorded AccessError
    json2_error(&json2_read, 403, "odoo.exceptions.AccessError", recorded);
    rpc_error(&rpc_read, "odoo.exceptions.AccessError", recorded);
    // And a write names the operation
    let write = json2(
        &sim,
        "mrp.production",
        "write",
        json!({"ids": [1], "vals": {"origin": "x"}}),
    )
    .await;
    assert!(write.json()["message"]
        .as_str()
        .unwrap()
        .starts_with("You are not allowed to modify 'Manufacturing Order' (mrp.production) records."));
    // And fields_get, which checks no access, still answers
    let fields = json2(
        &sim,
        "mrp.production",
        "fields_get",
        json!({"allfields": ["name"], "attributes": ["type"]}),
    )
    .await;
    assert_eq!(fields.status, StatusCode::OK);
    assert_eq!(fields.json()["name"]["type"], "char");
    // And other models are served as before
    let pickings = json2(
        &sim,
        "stock.picking",
        "search_read",
        json!({"domain": [], "fields": ["id"]}),
    )
    .await;
    assert_eq!(pickings.status, StatusCode::OK);
}

#[tokio::test]
async fn a_call_carried_out_late_commits_after_its_caller_gave_up() {
    // Given an Odoo whose next message_post waits on a lock for a second
    let sim = odoo19().await;
    let mo = sim.seed(1)[0];
    sim.apply_late("message_post", Duration::from_secs(1));

    // When a caller posts a note and gives up after 200 ms
    let gave_up = client()
        .post(format!("{}/json/2/mrp.production/message_post", sim.url()))
        .header("Authorization", format!("bearer {}", sim.config().api_key))
        .timeout(Duration::from_millis(200))
        .json(&json!({"ids": [mo], "body": "event e-late"}))
        .send()
        .await;

    // Then the caller heard nothing and the chatter has nothing yet, but the note lands later
    assert!(gave_up.is_err_and(|e| e.is_timeout()));
    assert!(sim.messages(mo).is_empty(), "not yet committed");
    assert_eq!(sim.late_calls_running(), 1);
    poll(
        "the note, once the lock is released",
        Duration::from_secs(5),
        || async { (sim.messages(mo).len() == 1).then_some(()) },
    )
    .await;
}

#[tokio::test]
async fn a_sites_constraint_refuses_the_write_as_a_validation_error() {
    // Given a site whose constraint wants roll numbers of its own form
    let sim = start(SimOdooConfig {
        custom_fields: vec!["x_roll".into()],
        ..SimOdooConfig::default()
    })
    .await;
    sim.seed(1);
    sim.constrain("x_roll", json!("R-1"), "Roll numbers look like R-0000.");

    // When the field is written, on JSON-2 and on /jsonrpc
    let json2_write = json2(
        &sim,
        "mrp.production",
        "write",
        json!({"ids": [1], "vals": {"x_roll": "R-1"}}),
    )
    .await;
    let rpc_write = execute_kw(
        &sim,
        "mrp.production",
        "write",
        json!([[1], {"x_roll": "R-1"}]),
        json!({}),
    )
    .await;

    // Then both are refused as Odoo refuses a constraint, and nothing changed
    json2_error(
        &json2_write,
        422,
        "odoo.exceptions.ValidationError",
        "Roll numbers look like R-0000.",
    );
    rpc_error(
        &rpc_write,
        "odoo.exceptions.ValidationError",
        "Roll numbers look like R-0000.",
    );
    assert_eq!(sim.mo(1).unwrap()["x_roll"], false);
    // And another value passes
    let fine = json2(
        &sim,
        "mrp.production",
        "write",
        json!({"ids": [1], "vals": {"x_roll": "R-0001"}}),
    )
    .await;
    assert_eq!(fine.status, StatusCode::OK);
    assert_eq!(sim.mo(1).unwrap()["x_roll"], "R-0001");
}

#[tokio::test]
async fn answers_carry_a_date_and_a_proxy_ahead_of_the_database_is_modelled() {
    let sim = odoo19().await;
    let date = |raw: &Raw| {
        let text = raw.headers["date"].to_str().unwrap().to_string();
        httpdate_secs(&text).unwrap_or_else(|| panic!("an IMF-fixdate: {text}"))
    };
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    };
    let body = json!({"domain": [], "fields": ["id"], "limit": 1});
    // Every answer is dated, by the server's clock
    let plain = json2(&sim, "mrp.production", "search_read", body.clone()).await;
    assert!((date(&plain) - now()).abs() <= 2);
    // And ten minutes ahead when a proxy's clock runs so
    sim.date_ahead(600);
    let ahead = json2(&sim, "mrp.production", "search_read", body).await;
    assert!((date(&ahead) - now() - 600).abs() <= 2, "{:?}", ahead.headers["date"]);
}

/// `Tue, 01 Dec 2026 12:43:08 GMT` as Unix seconds (read here with humantime, apart from the
/// agent's own parser).
fn httpdate_secs(text: &str) -> Option<i64> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let parts: Vec<&str> = text.split(' ').collect();
    let [_, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    let month = MONTHS.iter().position(|m| m == month)? + 1;
    let at = humantime::parse_rfc3339(&format!("{year}-{month:02}-{day}T{time}Z")).ok()?;
    Some(at.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs() as i64)
}

#[tokio::test]
async fn mark_done_with_the_backorder_context_closes_the_mo_and_answers_an_action_opening_the_backorder() {
    // Given an MO of 5 with 2 produced (the recorded WH/MO/05031)
    let sim = odoo19().await;
    let mo = five_with_two_produced(&sim).await;

    // When it is marked done over JSON-2 with the backorder context
    let done = json2(
        &sim,
        "mrp.production",
        "button_mark_done",
        json!({"ids": [mo], "context": {"skip_backorder": true, "mo_ids_to_backorder": [mo]}}),
    )
    .await;

    // Then HTTP 200 with the recorded action dict, no `name`, its res_id the backorder
    assert_eq!(done.status, StatusCode::OK);
    let read = json2(
        &sim,
        "mrp.production",
        "search_read",
        json!({"domain": [["production_group_id", "=", mo]], "order": "id asc",
               "fields": ["name", "state", "product_qty", "qty_produced", "production_group_id"]}),
    )
    .await
    .json();
    let name = format!("WH/MO/{mo:05}");
    let backorder = read[1]["id"].as_i64().expect("a backorder in the MO's group");
    assert_eq!(
        done.json(),
        json!({"res_model": "mrp.production", "type": "ir.actions.act_window",
               "context": {"skip_backorder": false, "mo_ids_to_backorder": null},
               "views": [[false, "form"]], "view_mode": "form", "res_id": backorder})
    );
    // And Odoo holds -001 done with 2, and -002 confirmed with 3, in one production group
    assert_eq!(
        read,
        json!([{"id": mo, "name": format!("{name}-001"), "state": "done", "product_qty": 2.0, "qty_produced": 2.0,
                "production_group_id": [mo, name]},
               {"id": backorder, "name": format!("{name}-002"), "state": "confirmed", "product_qty": 3.0,
                "qty_produced": 0.0, "production_group_id": [mo, name]}])
    );
    // And 19 has no procurement_group_id on the MO (fields_get ignores the name), 18 has it
    let fields = json2(
        &sim,
        "mrp.production",
        "fields_get",
        json!({"allfields": ["procurement_group_id", "production_group_id"], "attributes": ["type", "relation"]}),
    )
    .await
    .json();
    assert_eq!(
        fields,
        json!({"production_group_id": {"type": "many2one", "relation": "mrp.production.group"}})
    );
    let sim18 = start(SimOdooConfig {
        version: 18,
        ..Default::default()
    })
    .await;
    let fields = execute_ok(
        &sim18,
        "mrp.production",
        "fields_get",
        json!([["procurement_group_id", "production_group_id"]]),
        json!({"attributes": ["type"]}),
    )
    .await;
    assert_eq!(fields, json!({"procurement_group_id": {"type": "many2one"}}));
}

#[tokio::test]
async fn mark_done_books_the_expected_duration_on_every_work_order_without_time() {
    // Given a Drawer-like MO with three work orders expecting 60, 120 and 360 minutes, the
    // second with half an hour tracked, the third cancelled
    let sim = odoo19().await;
    let mo = sim.seed(1)[0];
    let wos: Vec<i64> = [(1, 60.0), (2, 120.0), (1, 360.0)]
        .iter()
        .map(|(center, minutes)| sim.add_workorder_expecting(mo, *center, *minutes).unwrap())
        .collect();
    let tracked = json2(
        &sim,
        "mrp.workcenter.productivity",
        "create",
        json!({"vals_list": [{"workorder_id": wos[1], "workcenter_id": 2, "production_id": mo, "loss_id": 7,
               "date_start": "2026-12-01 06:00:00", "date_end": "2026-12-01 06:30:00"}]}),
    )
    .await;
    assert_eq!(tracked.status, StatusCode::OK);
    assert_eq!(sim.workorder(wos[1]).unwrap()["duration"], 30.0);
    let first_row = tracked.json()[0].as_i64().unwrap();

    // When the MO is marked done
    let done = json2(&sim, "mrp.production", "button_mark_done", json!({"ids": [mo]})).await;
    assert_eq!(done.json(), true);

    // Then the work order without time got its expected 60 minutes as a row of the key's user
    // ending at mark-done time; the tracked one kept its 30; each is done
    let rows = json2(
        &sim,
        "mrp.workcenter.productivity",
        "search_read",
        json!({"domain": [["production_id", "=", mo]], "order": "id asc",
               "fields": ["workorder_id", "description", "duration", "date_end", "loss_type", "user_id"]}),
    )
    .await
    .json();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 3, "{rows:?}");
    let invented: Vec<&Value> = rows.iter().filter(|r| r["id"] != first_row).collect();
    assert_eq!(invented[0]["workorder_id"][0], wos[0]);
    assert_eq!(invented[0]["description"], "Time Tracking: Mitchell Admin");
    assert_eq!(invented[0]["duration"], 60.0);
    assert_eq!(invented[0]["loss_type"], "productive");
    assert_eq!(invented[0]["user_id"], json!([2, "Mitchell Admin"]));
    assert_eq!(
        invented[0]["date_end"],
        sim.mo(mo).unwrap()["date_finished"],
        "it ends when the MO was closed"
    );
    assert_eq!(invented[1]["workorder_id"][0], wos[2]);
    assert_eq!(invented[1]["duration"], 360.0);
    let read = json2(
        &sim,
        "mrp.workorder",
        "read",
        json!({"ids": wos, "fields": ["state", "duration", "duration_expected"]}),
    )
    .await
    .json();
    assert_eq!(
        read,
        json!([{"id": wos[0], "state": "done", "duration": 60.0, "duration_expected": 60.0},
               {"id": wos[1], "state": "done", "duration": 30.0, "duration_expected": 120.0},
               {"id": wos[2], "state": "done", "duration": 360.0, "duration_expected": 360.0}])
    );

    // When a row is booked after it, it adds to the invented one; written, the invented row
    // takes the times given; unlinked, it is gone
    let late = json2(
        &sim,
        "mrp.workcenter.productivity",
        "create",
        json!({"vals_list": [{"workorder_id": wos[0], "workcenter_id": 1, "loss_id": 7,
               "date_start": "2026-12-01 06:00:00", "date_end": "2026-12-01 06:10:00"}]}),
    )
    .await
    .json();
    assert_eq!(sim.workorder(wos[0]).unwrap()["duration"], 70.0);
    let invented_id = invented[0]["id"].clone();
    let written = json2(
        &sim,
        "mrp.workcenter.productivity",
        "write",
        json!({"ids": [invented_id], "vals": {"date_start": "2026-12-01 07:00:00", "date_end": "2026-12-01 07:45:00"}}),
    )
    .await;
    assert_eq!(written.json(), true);
    assert_eq!(sim.workorder(wos[0]).unwrap()["duration"], 55.0);
    let unlinked = json2(&sim, "mrp.workcenter.productivity", "unlink", json!({"ids": late})).await;
    assert_eq!(unlinked.json(), true);
    assert_eq!(sim.workorder(wos[0]).unwrap()["duration"], 45.0);
}

#[tokio::test]
async fn a_user_without_manufacturing_rights_reads_fields_and_messages_and_nothing_else() {
    // Given the recorded internal user without Manufacturing or Inventory rights
    let sim = odoo19().await;
    let mo = sim.seed(1)[0];
    sim.without_manufacturing_rights();

    // When it asks fields_get and the chatter, then both answer
    let fields = json2(
        &sim,
        "mrp.production",
        "fields_get",
        json!({"allfields": ["name"], "attributes": ["type"]}),
    )
    .await;
    assert_eq!(fields.status, StatusCode::OK);
    let messages = json2(
        &sim,
        "mail.message",
        "search_read",
        json!({"domain": [["model", "=", "mrp.production"]], "fields": ["id"]}),
    )
    .await;
    assert_eq!(messages.status, StatusCode::OK);

    // When it reads, counts or posts on MOs, then 403 AccessError
    for (method, body) in [
        ("read", json!({"ids": [mo], "fields": ["name"]})),
        ("search_read", json!({"domain": [], "fields": ["id"], "limit": 1})),
        ("search_count", json!({"domain": []})),
    ] {
        let refused = json2(&sim, "mrp.production", method, body).await;
        let message = access_error(&refused);
        assert!(
            message.starts_with("You are not allowed to access 'Manufacturing Order' (mrp.production) records."),
            "{method}: {message}"
        );
    }
    let post = json2(
        &sim,
        "mrp.production",
        "message_post",
        json!({"ids": [mo], "body": "x", "message_type": "comment", "subtype_xmlid": "mail.mt_note"}),
    )
    .await;
    assert_eq!(post.status, StatusCode::FORBIDDEN);
    assert!(
        post.json()["message"]
            .as_str()
            .unwrap()
            .contains("(Document type: Message, Operation: create)"),
        "{}",
        post.text
    );
}

#[tokio::test]
async fn rights_are_asked_ahead_with_has_access_on_18_and_check_access_rights_everywhere() {
    // Given an admin's key, and a user without Manufacturing rights on another server
    let admin = odoo19().await;
    let user = odoo19().await;
    user.without_manufacturing_rights();

    // Then has_access answers true or false per model and operation, as recorded
    assert_eq!(has(&admin, "mrp.production", "read").await, true);
    for operation in ["read", "write", "create"] {
        assert_eq!(has(&user, "mrp.production", operation).await, false, "{operation}");
        assert_eq!(
            has(&user, "mrp.workcenter.productivity", operation).await,
            false,
            "{operation}"
        );
    }
    assert_eq!(has(&user, "mail.message", "read").await, true);
    assert_eq!(has(&user, "mail.message", "create").await, true);

    // And check_access_rights answers null when allowed, the recorded 403 when not
    let allowed = json2(
        &admin,
        "mrp.production",
        "check_access_rights",
        json!({"operation": "write"}),
    )
    .await;
    assert_eq!((allowed.status, allowed.json()), (StatusCode::OK, Value::Null));
    let refused = json2(
        &user,
        "mrp.production",
        "check_access_rights",
        json!({"operation": "write"}),
    )
    .await;
    let message = access_error(&refused);
    assert!(
        message.starts_with("You are not allowed to modify 'Manufacturing Order' (mrp.production) records.")
            && message.contains("Manufacturing/User"),
        "{message}"
    );
    // And check_access is private
    let private = json2(&admin, "mrp.production", "_check_access", json!({"operation": "read"})).await;
    assert_eq!(private.status, StatusCode::FORBIDDEN);

    // When a read-only user asks: reading yes, writing no
    admin.deny_writes("mrp.production");
    assert_eq!(has(&admin, "mrp.production", "read").await, true);
    assert_eq!(has(&admin, "mrp.production", "write").await, false);

    // And on 17 there is no has_access, and check_access_rights answers true
    let sim17 = start(SimOdooConfig {
        version: 17,
        ..Default::default()
    })
    .await;
    let missing = execute_kw(&sim17, "mrp.production", "has_access", json!(["read"]), json!({})).await;
    rpc_error(
        &missing,
        "builtins.AttributeError",
        "The method 'mrp.production.has_access' does not exist",
    );
    let right = execute_ok(
        &sim17,
        "mrp.production",
        "check_access_rights",
        json!(["write"]),
        json!({}),
    )
    .await;
    assert_eq!(right, true);
}

#[tokio::test]
async fn a_text_note_is_one_escaped_paragraph_and_html_costs_a_warning_per_post() {
    // Given an Odoo 19 with one MO
    let sim = odoo19().await;
    let mo = sim.seed(1)[0];
    let body_of = |id: i64| {
        let messages = sim.messages(mo);
        messages.iter().find(|m| m["id"] == id).unwrap()["body"].clone()
    };

    // When a text body with line breaks and markup is posted, then it is escaped into one
    // paragraph, its line breaks left as they are (one run-on line in the web client)
    let text = post(
        &sim,
        json!({"ids": [mo], "body": "line 1 <b>&\nline 2", "message_type": "comment"}),
    )
    .await;
    assert_eq!(body_of(text), "<p>line 1 &lt;b&gt;&amp;\nline 2</p>");
    assert!(sim.log_warnings().is_empty());

    // When the body is HTML with body_is_html, then it is kept, and Odoo logs a WARNING
    let html = post(
        &sim,
        json!({"ids": [mo], "body": "<p>line 1<br>line 2</p>", "body_is_html": true}),
    )
    .await;
    assert_eq!(body_of(html), "<p>line 1<br>line 2</p>");
    let warnings = sim.log_warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("Posting HTML message using body_is_html=True, use a Markup object instead"),
        "{warnings:?}"
    );

    // When the note's subtype is looked up by its external id and the message created with an
    // HTML body, then the markup is kept, it is a note, and nothing is logged
    let xmlid = json2(
        &sim,
        "ir.model.data",
        "search_read",
        json!({"domain": [["module", "=", "mail"], ["name", "=", "mt_note"]], "fields": ["res_id"]}),
    )
    .await
    .json();
    let note = xmlid[0]["res_id"].as_i64().expect("mail.mt_note's id");
    let created = json2(
        &sim,
        "mail.message",
        "create",
        json!({"vals_list": [{"model": "mrp.production", "res_id": mo, "message_type": "comment",
               "subtype_id": note, "body": "<p>line 1<br>line 2</p>"}]}),
    )
    .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text);
    let id = created.json()[0].as_i64().unwrap();
    let found = json2(
        &sim,
        "mail.message",
        "read",
        json!({"ids": [id], "fields": ["body", "subtype_id", "author_id", "model", "res_id"]}),
    )
    .await
    .json();
    assert_eq!(
        found,
        json!([{"id": id, "body": "<p>line 1<br>line 2</p>", "subtype_id": [2, "Note"],
                "author_id": [3, "YourCompany, Mitchell Admin"], "model": "mrp.production", "res_id": mo}])
    );
    assert_eq!(sim.log_warnings().len(), 1, "no warning for a created message");
    // And a user who may not post on the MO may not create it either
    sim.without_manufacturing_rights();
    let refused = json2(
        &sim,
        "mail.message",
        "create",
        json!({"vals_list": [{"model": "mrp.production", "res_id": mo, "body": "x"}]}),
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.text.contains("(Document type: Message, Operation: create)"));
}

/// `model.has_access(operation)` over JSON-2.
async fn has(sim: &SimOdoo, model: &str, operation: &str) -> Value {
    json2(sim, model, "has_access", json!({"operation": operation}))
        .await
        .json()
}

/// A note posted over JSON-2; its message id.
async fn post(sim: &SimOdoo, body: Value) -> i64 {
    let posted = json2(sim, "mrp.production", "message_post", body).await;
    assert_eq!(posted.status, StatusCode::OK, "{}", posted.text);
    posted.json()[0].as_i64().unwrap()
}

/// The message of a JSON-2 AccessError (403).
fn access_error(answer: &Raw) -> String {
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.text);
    let body = answer.json();
    assert_eq!(body["name"], "odoo.exceptions.AccessError");
    body["message"].as_str().unwrap().to_string()
}

/// A new MO of 5 with 2 reported produced over /jsonrpc: the write answers true.
async fn five_with_two_produced(sim: &SimOdoo) -> i64 {
    let mo = sim.create_mo(NewMo {
        qty: 5.0,
        ..Default::default()
    });
    let write = execute_kw(
        sim,
        "mrp.production",
        "write",
        json!([[mo], {"qty_producing": 2}]),
        json!({}),
    )
    .await;
    assert_eq!(write["result"], true);
    mo
}

/// JSON-2 with another user's key.
async fn json2_as(sim: &SimOdoo, key: &str, model: &str, method: &str, body: Value) -> Raw {
    json2_body(sim, model, method, body.to_string(), Some(key)).await
}

/// `has_access` on JSON-2 with `key`: its answer.
async fn has_access(sim: &SimOdoo, key: &str, model: &str, operation: &str) -> Value {
    json2_as(sim, key, model, "has_access", json!({"operation": operation}))
        .await
        .json()
}

/// A ValidationError's message on JSON-2 (422; its traceback and context are Odoo's).
fn validation_message(answer: &Raw) -> String {
    let body = json2_error(
        answer,
        422,
        "odoo.exceptions.ValidationError",
        answer.json()["message"].as_str().unwrap_or_default(),
    );
    body["message"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_custom_field_made_through_ir_model_fields_is_a_field_of_the_mos_until_unlinked() {
    // Given an Odoo 19 with one MO, and the id of mrp.production in ir.model
    let sim = odoo19().await;
    let mo = sim.seed(1)[0];
    let model = json2(
        &sim,
        "ir.model",
        "search_read",
        json!({"domain": [["model", "=", "mrp.production"]], "fields": ["id"]}),
    )
    .await;
    assert_eq!(model.json(), json!([{"id": 490}]));
    // And a field it lacks cannot be written (recorded)
    let early = json2(
        &sim,
        "mrp.production",
        "write",
        json!({"ids": [mo], "vals": {"x_roll_number": "R-1"}}),
    )
    .await;
    json2_error(
        &early,
        500,
        "builtins.ValueError",
        "Invalid field 'x_roll_number' in 'mrp.production'",
    );

    // When fields are made without model_id (even with model), and with a name lacking x_
    let create = |vals: Value| json2(&sim, "ir.model.fields", "create", json!({"vals_list": [vals]}));
    let no_model = create(
        json!({"model": "mrp.production", "name": "x_roll_number", "ttype": "char",
        "field_description": "Floor roll number"}),
    )
    .await;
    let no_prefix = create(
        json!({"model_id": 490, "name": "roll_number", "ttype": "char", "field_description": "Floor roll number"}),
    )
    .await;

    // Then both are the recorded ValidationErrors
    let said = validation_message(&no_model);
    assert!(
        said.contains("Missing required value for the field 'Model' (model_id)"),
        "{said}"
    );
    assert_eq!(
        validation_message(&no_prefix),
        "Custom fields must have a name that starts with 'x_'!"
    );

    // When a char, an integer and a datetime field are made
    let made = json2(
        &sim,
        "ir.model.fields",
        "create",
        json!({"vals_list": [
            {"model_id": 490, "name": "x_roll_number", "ttype": "char", "field_description": "Floor roll number"},
            {"model_id": 490, "name": "x_produced", "ttype": "integer", "field_description": "Produced", "help": "From the floor"},
            {"model_id": 490, "name": "x_floor_start", "ttype": "datetime", "field_description": "Floor start"},
        ]}),
    )
    .await;

    // Then the first has the recorded id, and they read back as manual fields
    assert_eq!(made.json(), json!([5780, 5781, 5782]));
    let found = json2(
        &sim,
        "ir.model.fields",
        "search_read",
        json!({"domain": [["model", "=", "mrp.production"], ["name", "in", ["x_roll_number", "x_produced", "name", "x_nope"]]],
               "fields": ["name", "ttype", "state", "field_description", "help"]}),
    )
    .await
    .json();
    let by_name = |name: &str| found.as_array().unwrap().iter().find(|f| f["name"] == name).cloned();
    let roll = by_name("x_roll_number").unwrap();
    assert_eq!(roll["state"], "manual");
    assert_eq!(roll["ttype"], "char");
    assert_eq!(roll["help"], false);
    assert_eq!(by_name("x_produced").unwrap()["help"], "From the floor");
    assert_eq!(by_name("name").unwrap()["state"], "base");
    assert_eq!(found.as_array().unwrap().len(), 3, "{found}");
    // And mrp.production's fields_get lists them with their types and labels
    let described = json2(
        &sim,
        "mrp.production",
        "fields_get",
        json!({"allfields": ["x_roll_number", "x_produced", "x_floor_start"], "attributes": ["type", "string"]}),
    )
    .await
    .json();
    assert_eq!(
        described,
        json!({"x_roll_number": {"type": "char", "string": "Floor roll number"},
               "x_produced": {"type": "integer", "string": "Produced"},
               "x_floor_start": {"type": "datetime", "string": "Floor start"}})
    );
    // And an MO reads them empty, as Odoo's empty (an integer reads 0), until they are written
    let read = |fields: Value| json2(&sim, "mrp.production", "read", json!({"ids": [mo], "fields": fields}));
    let fields = json!(["x_roll_number", "x_produced", "x_floor_start"]);
    assert_eq!(
        read(fields.clone()).await.json(),
        json!([{"id": mo, "x_roll_number": false, "x_produced": 0, "x_floor_start": false}])
    );
    let write = json2(
        &sim,
        "mrp.production",
        "write",
        json!({"ids": [mo], "vals": {"x_roll_number": "R-1", "x_produced": 120, "x_floor_start": "2026-12-01 06:00:00"}}),
    )
    .await;
    assert_eq!(write.json(), json!(true));
    assert_eq!(
        read(fields).await.json(),
        json!([{"id": mo, "x_roll_number": "R-1", "x_produced": 120, "x_floor_start": "2026-12-01 06:00:00"}])
    );
    // And a second field of one name is refused (Odoo's unique constraint)
    let twice =
        create(json!({"model_id": 490, "name": "x_produced", "ttype": "char", "field_description": "Again"})).await;
    assert_eq!(validation_message(&twice), "Field names must be unique per model.");

    // When they are unlinked (on /jsonrpc, which takes the same calls)
    let unlinked = execute_ok(
        &sim,
        "ir.model.fields",
        "unlink",
        json!([[5780, 5781, 5782]]),
        json!({}),
    )
    .await;

    // Then they are gone, with their values, and a read naming one fails again
    assert_eq!(unlinked, json!(true));
    let described = json2(
        &sim,
        "mrp.production",
        "fields_get",
        json!({"allfields": ["x_roll_number"], "attributes": ["type"]}),
    )
    .await;
    assert_eq!(described.json(), json!({}));
    json2_error(
        &read(json!(["x_roll_number"])).await,
        500,
        "builtins.ValueError",
        "Invalid field 'x_roll_number' on 'mrp.production'",
    );
    assert!(sim.mo(mo).unwrap().get("x_roll_number").is_none());
}

#[tokio::test]
async fn a_page_on_the_mo_form_is_a_view_inheriting_it_whose_fields_must_exist() {
    // Given an Odoo 19 with a custom field, and the MO form's view found by its external id
    let sim = odoo19().await;
    let field = json2(
        &sim,
        "ir.model.fields",
        "create",
        json!({"vals_list": [{"model_id": 490, "name": "x_roll_number", "ttype": "char", "field_description": "Floor roll number"}]}),
    )
    .await
    .json()[0]
        .as_i64()
        .unwrap();
    let form = json2(
        &sim,
        "ir.model.data",
        "search_read",
        json!({"domain": [["module", "=", "mrp"], ["name", "=", "mrp_production_form_view"]], "fields": ["res_id"]}),
    )
    .await
    .json();
    let form_id = form[0]["res_id"].as_i64().unwrap();
    assert_eq!(form_id, 843, "{form}");
    let page = |field: &str| {
        format!(
            "<xpath expr=\"//notebook\" position=\"inside\"><page string=\"Shop floor\" name=\"linegate\"><group>\
             <field name=\"{field}\"/></group></page></xpath>"
        )
    };
    let view = |field: &str| {
        json!({"vals_list": [{"name": "linegate.mo.form", "type": "form", "model": "mrp.production",
            "inherit_id": form_id, "arch": page(field)}]})
    };

    // When a page naming a field the MOs lack is made
    let wrong = json2(&sim, "ir.ui.view", "create", view("x_does_not_exist")).await;

    // Then it is the recorded ValidationError
    let said = validation_message(&wrong);
    assert!(said.starts_with("Error while validating view near:"), "{said}");
    assert!(
        said.contains("Field \"x_does_not_exist\" does not exist in model \"mrp.production\""),
        "{said}"
    );

    // When the page shows the custom field
    let made = json2(&sim, "ir.ui.view", "create", view("x_roll_number")).await;

    // Then it has the recorded id, and the MO form shows it inside the notebook, before the
    // chatter
    assert_eq!(made.json(), json!([899]));
    let views = json2(&sim, "mrp.production", "get_views", json!({"views": [[false, "form"]]}))
        .await
        .json();
    let arch = views["views"]["form"]["arch"].as_str().unwrap();
    let at = |text: &str| arch.find(text).unwrap_or_else(|| panic!("{text} not in {arch}"));
    assert!(at("<notebook>") < at("<page string=\"Shop floor\""), "{arch}");
    assert!(at("<page string=\"Shop floor\"") < at("</notebook>"), "{arch}");
    assert!(at("</notebook>") < at("<chatter/>"), "{arch}");
    assert_eq!(
        views["models"]["mrp.production"]["fields"]["x_roll_number"]["type"],
        "char"
    );
    // And the view reads back as an extension of the form
    let ours = json2(
        &sim,
        "ir.ui.view",
        "search_read",
        json!({"domain": [["model", "=", "mrp.production"], ["name", "=", "linegate.mo.form"]],
               "fields": ["inherit_id", "mode", "arch"]}),
    )
    .await
    .json();
    assert_eq!(ours[0]["inherit_id"], json!([843, "mrp.production.form"]));
    assert_eq!(ours[0]["mode"], "extension");
    // And a field the page shows cannot be unlinked before the page (Odoo's source)
    let shown = json2(&sim, "ir.model.fields", "unlink", json!({"ids": [field]})).await;
    assert_eq!(shown.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        shown.json()["message"]
            .as_str()
            .unwrap()
            .starts_with("Cannot rename/delete fields that are still present in views"),
        "{}",
        shown.text
    );

    // When the page is removed, then the field
    let view_gone = json2(&sim, "ir.ui.view", "unlink", json!({"ids": [899]})).await;
    let field_gone = json2(&sim, "ir.model.fields", "unlink", json!({"ids": [field]})).await;

    // Then both answer true and the form is as it was
    assert_eq!((view_gone.json(), field_gone.json()), (json!(true), json!(true)));
    let views = json2(&sim, "mrp.production", "get_views", json!({"views": [[false, "form"]]}))
        .await
        .json();
    assert!(!views["views"]["form"]["arch"].as_str().unwrap().contains("Shop floor"));
}

#[tokio::test]
async fn only_an_administrator_changes_fields_and_views_and_has_access_says_so_ahead() {
    // Given an Odoo 19 with an administrator (the configured user) and an internal user
    let sim = odoo19().await;
    let user_key = "5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e";
    let uid = sim.add_api_user("gateway@example.com", user_key, false);
    let admin = &sim.config().api_key.clone();
    let ask = |key, model, operation| has_access(&sim, key, model, operation);

    // When each asks ahead whether it may make custom fields
    let admin_may = ask(admin, "ir.model.fields", "create").await;
    let user_may = ask(user_key, "ir.model.fields", "create").await;
    let user_reads = ask(user_key, "ir.model.fields", "read").await;
    let user_views = ask(user_key, "ir.ui.view", "create").await;

    // Then the administrator may, the user may only read
    assert_eq!(admin_may, json!(true));
    assert_eq!((user_may, user_reads), (json!(false), json!(true)));
    assert_eq!(user_views, json!(false));
    assert_eq!(ask(user_key, "mrp.production", "write").await, json!(true));

    // When the user makes a field and a view anyway, on JSON-2 and on /jsonrpc
    let field = json!({"model_id": 490, "name": "x_roll_number", "ttype": "char", "field_description": "Roll"});
    let refused = json2_as(
        &sim,
        user_key,
        "ir.model.fields",
        "create",
        json!({"vals_list": [field]}),
    )
    .await;
    let view = json!({"name": "v", "model": "mrp.production", "inherit_id": 843,
        "arch": "<xpath expr=\"//notebook\" position=\"inside\"><page string=\"P\"/></xpath>"});
    let refused_view = json2_as(&sim, user_key, "ir.ui.view", "create", json!({"vals_list": [view]})).await;
    let login = rpc(
        &sim,
        "/jsonrpc",
        json!({"service": "common", "method": "authenticate", "args": ["mes", "gateway@example.com", user_key, {}]}),
        None,
    )
    .await
    .json();
    assert_eq!(login["result"], uid);
    let rpc_refused = rpc(
        &sim,
        "/jsonrpc",
        json!({"service": "object", "method": "execute_kw",
               "args": ["mes", uid, user_key, "ir.model.fields", "create", [[field]], {}]}),
        None,
    )
    .await
    .json();

    // Then Odoo refuses with an AccessError naming the operation, and nothing was made
    let groups = "This operation is allowed for the following groups:\n\t- Administration/Settings\n\n\
                  Contact your administrator to request access if necessary.";
    json2_error(
        &refused,
        403,
        "odoo.exceptions.AccessError",
        &format!("You are not allowed to create 'Fields' (ir.model.fields) records.\n\n{groups}"),
    );
    json2_error(
        &refused_view,
        403,
        "odoo.exceptions.AccessError",
        &format!("You are not allowed to create 'View' (ir.ui.view) records.\n\n{groups}"),
    );
    rpc_error(
        &rpc_refused,
        "odoo.exceptions.AccessError",
        &format!("You are not allowed to create 'Fields' (ir.model.fields) records.\n\n{groups}"),
    );
    let manual = json2(
        &sim,
        "ir.model.fields",
        "search_read",
        json!({"domain": [["state", "=", "manual"]], "fields": ["name"]}),
    )
    .await;
    assert_eq!(manual.json(), json!([]));

    // When the API user has no Manufacturing rights (recorded on 19.0)
    sim.deny("mrp.production");

    // Then has_access says no for the MOs and yes for the chatter, and check_access_rights
    // answers null when allowed and the recorded AccessError when not
    assert_eq!(ask(admin, "mrp.production", "read").await, json!(false));
    assert_eq!(ask(admin, "mail.message", "create").await, json!(true));
    let allowed = json2(
        &sim,
        "mail.message",
        "check_access_rights",
        json!({"operation": "write"}),
    )
    .await;
    assert_eq!((allowed.status, allowed.text.as_str()), (StatusCode::OK, "null"));
    let not_allowed = json2(
        &sim,
        "mrp.production",
        "check_access_rights",
        json!({"operation": "write"}),
    )
    .await;
    assert_eq!(not_allowed.status, StatusCode::FORBIDDEN);
    let said = not_allowed.json()["message"].as_str().unwrap().to_string();
    assert!(
        said.starts_with("You are not allowed to modify 'Manufacturing Order' (mrp.production) records.")
            && said.contains("Manufacturing/User"),
        "{said}"
    );
}

#[tokio::test]
async fn odoo_17_has_no_has_access_and_check_access_rights_answers_yes_or_no() {
    // Given an Odoo 17 and an internal user
    let sim = start(SimOdooConfig {
        version: 17,
        ..Default::default()
    })
    .await;
    let key = "5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e";
    let uid = sim.add_api_user("gateway@example.com", key, false);
    let call = |method: &'static str, kwargs: Value| {
        let params = json!({"service": "object", "method": "execute_kw",
            "args": ["mes", uid, key, "ir.model.fields", method, [], kwargs]});
        rpc(&sim, "/jsonrpc", params, None)
    };

    // When it asks with has_access (18.0+) and with check_access_rights
    let has_access = call("has_access", json!({"operation": "create"})).await.json();
    let no = call(
        "check_access_rights",
        json!({"operation": "create", "raise_exception": false}),
    )
    .await
    .json();
    let yes = call(
        "check_access_rights",
        json!({"operation": "read", "raise_exception": false}),
    )
    .await
    .json();

    // Then has_access does not exist there, and check_access_rights answers a boolean
    rpc_error(
        &has_access,
        "builtins.AttributeError",
        "The method 'ir.model.fields.has_access' does not exist",
    );
    assert_eq!(
        (no["result"].clone(), yes["result"].clone()),
        (json!(false), json!(true))
    );
}
