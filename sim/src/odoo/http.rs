//! The wire: Odoo's routes, envelopes, cookies and status codes, and the faults tests inject.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Map, Value};

use super::orm::{self, OrmError};
use super::{Fault, RequestRecord, State, WebSession};
use crate::{Drip, Dropped};

type Shared = Arc<Mutex<State>>;

/// Failed logins within this window that lock `/web/session/authenticate`…
const LOCKOUT_FAILURES: usize = 10;
const LOCKOUT_WINDOW: Duration = Duration::from_secs(60);
/// …for this long, for everyone on the address.
const LOCKOUT: Duration = Duration::from_secs(60);

pub(super) async fn serve(
    listener: tokio::net::TcpListener,
    state: Shared,
    stopped: tokio::sync::watch::Receiver<bool>,
) {
    crate::serve(listener, state, stopped, handle).await
}

const DROPPED: Dropped = Dropped("connection dropped by fault injection");

struct Answer {
    status: StatusCode,
    body: String,
    headers: Vec<(&'static str, String)>,
    record: RequestRecord,
}

async fn handle(state: Shared, req: Request<Incoming>) -> Result<Response<Drip>, Dropped> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let headers = req.headers().clone();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let (latency, fault) = {
        let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
        let fault = if s.down {
            Some(Fault::Drop)
        } else {
            s.faults.pop_front()
        };
        (s.config.latency, fault)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match fault {
        Some(Fault::Drop) => return Err(DROPPED),
        Some(Fault::Stall(d)) => tokio::time::sleep(d).await,
        Some(Fault::Status503) => {
            let html = "<html><head><title>503 Service Unavailable</title></head><body><h1>503 Service Unavailable</h1></body></html>";
            record_other(&state, &path, 503);
            return Ok(Response::builder()
                .status(503)
                .header("Content-Type", "text/html")
                .body(Drip::full(html))
                .expect("valid response"));
        }
        Some(Fault::Html200) => {
            let portal = "<!DOCTYPE html><html><head><title>Hotspot login</title></head><body><form action=\"/login\">\
                <input name=\"voucher\"></form></body></html>";
            record_other(&state, &path, 200);
            return Ok(Response::builder()
                .status(200)
                .header("Content-Type", "text/html")
                .body(Drip::full(portal))
                .expect("valid response"));
        }
        Some(fault @ (Fault::Huge(bytes) | Fault::HugeChunked(bytes))) => {
            record_other(&state, &path, 200);
            let filler = r#"{"id": 1, "name": "WH/MO/00001", "note": "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"},"#;
            let body = Drip::huge(
                r#"{"jsonrpc": "2.0", "id": 1, "result": ["#,
                filler,
                r#"{"id": 2}]}"#,
                bytes,
            );
            let body = if matches!(fault, Fault::HugeChunked(_)) {
                body.chunked()
            } else {
                body
            };
            return Ok(Response::builder()
                .status(200)
                .header("Content-Type", "application/json")
                .body(body)
                .expect("valid response"));
        }
        Some(Fault::Truncated | Fault::Trickle(_)) | None => {}
    }
    let late = {
        let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
        let called = called_method(&path, &body);
        let at = called.and_then(|m| s.late.iter().position(|(l, _)| *l == m));
        let late = at.map(|at| s.late.remove(at).1);
        s.late_running += usize::from(late.is_some());
        late
    };
    let answer = match late {
        // Carried out by a task of its own, which a caller giving up does not cancel.
        Some(delay) => {
            let (state, path) = (state.clone(), path.clone());
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
                s.late_running -= 1;
                route(&mut s, &method, &path, &headers, &body)
            })
            .await
            .map_err(|_| DROPPED)?
        }
        None => {
            let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
            route(&mut s, &method, &path, &headers, &body)
        }
    };
    let mut response = Response::builder().status(answer.status);
    let json = answer.status != StatusCode::NOT_FOUND || answer.body.starts_with('{');
    response = response.header(
        "Content-Type",
        if json {
            "application/json; charset=utf-8"
        } else {
            "text/html; charset=utf-8"
        },
    );
    for (name, value) in &answer.headers {
        response = response.header(*name, value);
    }
    // hyper adds its own `Date` only when the answer has none.
    let ahead = state.lock().unwrap_or_else(|e| e.into_inner()).date_ahead;
    if ahead != 0 {
        let date = crate::clock::format_http_date(crate::clock::now_unix() + ahead);
        response = response.header("Date", date);
    }
    let lost = {
        let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
        let called = answer.record.method.clone();
        let at = called.and_then(|m| s.lose_answer.iter().position(|l| *l == m));
        s.requests.push(answer.record);
        at.map(|at| s.lose_answer.remove(at)).is_some()
    };
    if lost {
        return Err(DROPPED);
    }
    let body = match fault {
        Some(Fault::Truncated) => {
            let cut = answer.body.len() / 2;
            Drip::full(answer.body.as_bytes()[..cut].to_vec())
        }
        Some(Fault::Trickle(every)) => Drip::trickle(answer.body.as_bytes(), every),
        _ => Drip::full(answer.body),
    };
    Ok(response.body(body).expect("valid response"))
}

/// The ORM method a request calls, read as `route` will: from a JSON-2 path, or from the
/// JSON-RPC body of `/jsonrpc` (`execute_kw`) and `/web/dataset/call_kw`.
fn called_method(path: &str, body: &[u8]) -> Option<String> {
    if let Some(rest) = path.strip_prefix("/json/2/") {
        return rest.split_once('/').map(|(_, m)| m.to_string());
    }
    let params = serde_json::from_slice::<Value>(body).ok()?.get("params")?.clone();
    let method = match path {
        "/jsonrpc" => params.get("args")?.get(4)?.clone(),
        _ if path.starts_with("/web/dataset/call_kw") => params.get("method")?.clone(),
        _ => return None,
    };
    method.as_str().map(str::to_string)
}

/// Records a request answered by a fault rather than by Odoo.
fn record_other(state: &Shared, path: &str, status: u16) {
    let record = RequestRecord {
        path: path.to_string(),
        model: None,
        method: None,
        status,
        api: "other",
    };
    state.lock().unwrap_or_else(|e| e.into_inner()).requests.push(record);
}

fn route(s: &mut State, method: &hyper::Method, path: &str, headers: &hyper::HeaderMap, body: &[u8]) -> Answer {
    let record = |api: &'static str, model: Option<&str>, m: Option<&str>| RequestRecord {
        path: path.to_string(),
        model: model.map(str::to_string),
        method: m.map(str::to_string),
        status: 200,
        api,
    };
    if let Some(rest) = path.strip_prefix("/json/2/").filter(|_| s.config.version >= 19) {
        let (model, m) = rest.split_once('/').unwrap_or((rest, ""));
        if method != hyper::Method::POST {
            return Answer {
                status: StatusCode::METHOD_NOT_ALLOWED,
                body: "<!doctype html>\n<html lang=en>\n<title>405 Method Not Allowed</title>\n\
                       <h1>Method Not Allowed</h1>\n<p>The method is not allowed for the requested URL.</p>\n"
                    .into(),
                headers: vec![("Allow", "POST".to_string())],
                record: RequestRecord {
                    status: 405,
                    ..record("json2", Some(model), Some(m))
                },
            };
        }
        return json2(s, headers, body, record("json2", Some(model), Some(m)), model, m);
    }
    match (method.as_str(), path) {
        ("GET", "/json/version") if s.config.version >= 19 => {
            let (info, text) = version_info(s);
            let body = json!({"version_info": info, "version": text}).to_string();
            anonymous_cookie(s, headers, ok(record("other", None, None), body))
        }
        ("POST", "/web/webclient/version_info") => {
            let id = rpc_id(body);
            let answer = ok(record("web", None, None), rpc_result(&id, Some(version(s))));
            anonymous_cookie(s, headers, answer)
        }
        ("POST", "/jsonrpc") => jsonrpc(s, body, record("jsonrpc", None, None)),
        ("POST", "/web/session/authenticate") => authenticate(s, body, record("web", None, Some("authenticate"))),
        ("POST", "/web/session/destroy") => {
            if let Some(sid) = cookie(headers) {
                s.sessions.remove(&sid);
            }
            // Logging out leaves a fresh anonymous session behind, and clears `cids`.
            let id = rpc_id(body);
            let sid = s.new_session_id();
            let mut answer = ok(
                record("web", None, Some("destroy")),
                json!({"jsonrpc": "2.0", "id": id}).to_string(),
            );
            let expires = http_date(crate::clock::now_unix() + 365 * 86_400);
            answer.headers = vec![
                ("Set-Cookie", format!("cids=; Expires={expires}; Max-Age=0; Path=/")),
                set_cookie(&sid),
            ];
            answer
        }
        ("POST", "/web/session/get_session_info") => get_session_info(s, headers, body, path),
        ("POST", p) if p.starts_with("/web/dataset/call_kw") => call_kw(s, headers, body, path),
        _ => Answer {
            status: StatusCode::NOT_FOUND,
            body: "<!doctype html>\n<title>404 Not Found</title>\n<h1>Not Found</h1>".into(),
            headers: vec![],
            record: RequestRecord {
                status: 404,
                ..record("other", None, None)
            },
        },
    }
}

/// The session info `/web/session/authenticate` and `get_session_info` answer (the recorded
/// keys a client may read; the real one has many more).
fn session_info(s: &State) -> Value {
    let mut result = json!({
        "uid": 2, "is_system": true, "is_admin": true, "is_public": false, "is_internal_user": true,
        "user_context": {"lang": "en_US", "tz": "Europe/Brussels", "uid": 2}, "db": s.config.database,
        "support_url": "https://www.odoo.com/buy", "name": "Mitchell Admin", "username": s.config.login,
        "partner_display_name": "YourCompany, Mitchell Admin", "partner_id": 3, "home_action_id": false,
        "user_companies": {"current_company": 1, "allowed_companies": {
            "1": {"id": 1, "name": "My Company (San Francisco)", "sequence": 0, "child_ids": [], "parent_id": false,
                  "currency_id": 1}}, "disallowed_ancestor_companies": {}},
    });
    if let (Some(result), Value::Object(version)) = (result.as_object_mut(), version(s)) {
        result.extend(version);
    }
    result
}

fn version(s: &State) -> Value {
    let (info, text) = version_info(s);
    json!({"server_version": text, "server_version_info": info, "server_serie": text, "protocol_version": 1})
}

/// `server_version_info` and `server_version`: numbers on premise, `saas~` strings on SaaS.
fn version_info(s: &State) -> (Value, String) {
    let v = s.config.version;
    if s.config.saas {
        (
            json!([format!("saas~{v}"), 1, 0, "final", 0, "e"]),
            format!("saas~{v}.1"),
        )
    } else {
        (json!([v, 0, 0, "final", 0, ""]), format!("{v}.0"))
    }
}

fn ok(record: RequestRecord, body: String) -> Answer {
    Answer {
        status: StatusCode::OK,
        body,
        headers: vec![],
        record,
    }
}

fn rpc_id(body: &[u8]) -> Value {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("id").cloned())
        .unwrap_or(Value::Null)
}

/// A JSON-RPC success; a method that returned None has no `result` member at all.
fn rpc_result(id: &Value, result: Option<Value>) -> String {
    match result {
        Some(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string(),
        None => json!({"jsonrpc": "2.0", "id": id}).to_string(),
    }
}

fn rpc_error(id: &Value, name: &str, message: &str) -> String {
    let last = message.lines().last().unwrap_or_default();
    // Odoo hides the traceback of AccessDenied: `debug` is the exception line alone.
    let debug = if name == "odoo.exceptions.AccessDenied" {
        format!("{name}: {message}\n")
    } else {
        format!("Traceback (most recent call last):\n  (simulated)\n{name}: {last}\n")
    };
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": 0, "message": "Odoo Server Error", "data": {
        "name": name, "message": message, "arguments": [message], "context": {}, "debug": debug}}})
    .to_string()
}

fn session_expired() -> String {
    json!({"jsonrpc": "2.0", "id": null, "error": {"code": 100, "message": "Odoo Session Expired", "data": {
        "name": "odoo.http.SessionExpiredException", "message": "Session expired", "arguments": ["Session expired"],
        "context": {}, "debug": "Traceback (most recent call last):\n  (simulated)\nodoo.http.SessionExpiredException: Session expired\n"}}})
    .to_string()
}

fn json2_error(status: u16, name: &str, message: &str, werkzeug: bool) -> (StatusCode, String) {
    let arguments = if werkzeug {
        json!([message, status])
    } else {
        json!([message])
    };
    let body = json!({"name": name, "message": message, "arguments": arguments, "context": {},
        "debug": format!("Traceback (most recent call last):\n  (simulated)\n{name}: {message}\n")});
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        body.to_string(),
    )
}

fn json2(
    s: &mut State,
    headers: &hyper::HeaderMap,
    body: &[u8],
    record: RequestRecord,
    model: &str,
    method: &str,
) -> Answer {
    let fail = |record: RequestRecord, status: u16, name: &str, message: &str, extra: Vec<(&'static str, String)>| {
        let (status, body) = json2_error(status, name, message, name.starts_with("werkzeug"));
        Answer {
            status,
            body,
            headers: extra,
            record: RequestRecord {
                status: status.as_u16(),
                ..record
            },
        }
    };
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, key)| key.trim().to_string());
    let www = vec![("WWW-Authenticate", "Bearer ".to_string())];
    match bearer {
        None => {
            return fail(
                record,
                401,
                "werkzeug.exceptions.Unauthorized",
                "User not authenticated, use an API Key with a Bearer Authorization header.",
                www,
            )
        }
        Some(key) => match super::rights::by_key(s, &key) {
            Some(admin) => s.caller_admin = admin,
            None => return fail(record, 401, "werkzeug.exceptions.Unauthorized", "Invalid apikey", www),
        },
    }
    if let Some(db) = headers.get("x-odoo-database").and_then(|v| v.to_str().ok()) {
        if db != s.config.database {
            return fail(
                record,
                404,
                "werkzeug.exceptions.NotFound",
                &format!("database {db:?} not found"),
                vec![],
            );
        }
    }
    let args: Map<String, Value> = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(args)) => args,
        Ok(_) => Map::new(),
        Err(e) => {
            let message = format!("could not parse the body as json: {}", python_json_error(body, &e));
            return fail(record, 400, "werkzeug.exceptions.BadRequest", &message, vec![]);
        }
    };
    match orm::call(s, model, method, &args) {
        Ok(result) => ok(record, result.unwrap_or(Value::Null).to_string()),
        Err(e) => fail(record, e.status, e.json2_name, &e.json2_message, vec![]),
    }
}

/// Named arguments from positional `args` and keyword `kwargs`, as Python binds them.
fn bind(method: &str, args: &[Value], kwargs: Option<&Value>) -> Map<String, Value> {
    let mut named: Map<String, Value> = orm::positional_names(method)
        .iter()
        .zip(args)
        .map(|(n, v)| (n.to_string(), v.clone()))
        .collect();
    if let Some(Value::Object(kwargs)) = kwargs {
        named.extend(kwargs.clone());
    }
    named
}

fn jsonrpc(s: &mut State, body: &[u8], mut record: RequestRecord) -> Answer {
    let envelope: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let id = envelope.get("id").cloned().unwrap_or(Value::Null);
    let params = envelope.get("params").cloned().unwrap_or(Value::Null);
    let service = params.get("service").and_then(Value::as_str).unwrap_or_default();
    let method = params.get("method").and_then(Value::as_str).unwrap_or_default();
    let args = params
        .get("args")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let text = |i: usize| args.get(i).and_then(Value::as_str).unwrap_or_default().to_string();
    match (service, method) {
        ("common", "version") => ok(record, rpc_result(&id, Some(version(s)))),
        ("common", "login" | "authenticate") => {
            record.method = Some(method.to_string());
            if text(0) != s.config.database {
                return ok(
                    record,
                    rpc_error(&id, "odoo.exceptions.AccessError", "Database not found."),
                );
            }
            // A wrong password is `false`, not an error.
            let uid = super::rights::login(s, &text(1), &text(2));
            ok(
                record,
                rpc_result(&id, Some(uid.map_or(json!(false), |uid| json!(uid)))),
            )
        }
        ("object", "execute_kw" | "execute") => {
            let model = text(3);
            let m = text(4);
            record.model = Some(model.clone());
            record.method = Some(m.clone());
            if text(0) != s.config.database {
                let message = format!(
                    "connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  database \"{}\" does not exist\n",
                    text(0)
                );
                return ok(record, rpc_error(&id, "psycopg2.OperationalError", &message));
            }
            let uid = args.get(1).and_then(Value::as_i64);
            match super::rights::by_uid(s, uid, &text(2)) {
                Some(admin) => s.caller_admin = admin,
                None => return ok(record, rpc_error(&id, "odoo.exceptions.AccessDenied", "Access Denied")),
            }
            let positional = args.get(5).and_then(Value::as_array).cloned().unwrap_or_default();
            let named = bind(&m, &positional, args.get(6));
            match orm::call(s, &model, &m, &named) {
                Ok(result) => ok(record, rpc_result(&id, orm::downgraded(&m, result))),
                Err(OrmError { name, message, .. }) => ok(record, rpc_error(&id, name, &message)),
            }
        }
        _ => ok(
            record,
            rpc_error(&id, "builtins.KeyError", &format!("{service}.{method}")),
        ),
    }
}

fn cookie(headers: &hyper::HeaderMap) -> Option<String> {
    headers
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix("session_id=").map(str::to_string))
}

/// Odoo's session cookie: `Expires` a year ahead, `Max-Age` a week (both as recorded).
fn set_cookie(sid: &str) -> (&'static str, String) {
    let expires = http_date(crate::clock::now_unix() + 365 * 86_400);
    (
        "Set-Cookie",
        format!("session_id={sid}; Expires={expires}; Max-Age=604800; HttpOnly; Path=/"),
    )
}

/// An HTTP date: `Mon, 22 Nov 2027 01:40:44 GMT`.
fn http_date(unix: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let text = crate::clock::format_odoo(unix);
    let month = text[5..7].parse::<usize>().unwrap_or(1).clamp(1, 12);
    format!(
        "{}, {} {} {} {} GMT",
        DAYS[unix.div_euclid(86_400).rem_euclid(7) as usize],
        &text[8..10],
        MONTHS[month - 1],
        &text[0..4],
        &text[11..19]
    )
}

/// A request without a session cookie gets a new (anonymous) session from the routes that save
/// sessions, as `version_info` and `/json/version` do. It is not logged in: `call_kw` with it
/// answers "Session Expired".
fn anonymous_cookie(s: &mut State, headers: &hyper::HeaderMap, mut answer: Answer) -> Answer {
    if cookie(headers).is_none() {
        let sid = s.new_session_id();
        answer.headers.push(set_cookie(&sid));
    }
    answer
}

/// Python's `json.loads` message for the common mistakes, so the 400 reads as Odoo's does.
fn python_json_error(body: &[u8], error: &serde_json::Error) -> String {
    let text = String::from_utf8_lossy(body);
    let chars: Vec<char> = text.chars().collect();
    let at = |pos: usize| {
        let line = chars[..pos].iter().filter(|c| **c == '\n').count() + 1;
        let column = match chars[..pos].iter().rposition(|c| *c == '\n') {
            Some(nl) => pos - nl,
            None => pos + 1,
        };
        format!("line {line} column {column} (char {pos})")
    };
    let start = chars
        .iter()
        .position(|c| !matches!(c, ' ' | '\t' | '\n' | '\r'))
        .unwrap_or(chars.len());
    let rest: String = chars[start..].iter().collect();
    let value_starts = rest.starts_with(['{', '[', '"', '-'])
        || rest.starts_with(|c: char| c.is_ascii_digit())
        || ["true", "false", "null", "NaN", "Infinity"]
            .iter()
            .any(|w| rest.starts_with(w));
    if !value_starts {
        return format!("Expecting value: {}", at(start));
    }
    if error.to_string().starts_with("trailing characters") {
        // serde's line and column point at the extra data.
        let (line, column) = (error.line(), error.column());
        let mut pos = 0;
        let mut current = 1;
        while current < line && pos < chars.len() {
            if chars[pos] == '\n' {
                current += 1;
            }
            pos += 1;
        }
        return format!("Extra data: {}", at((pos + column.saturating_sub(1)).min(chars.len())));
    }
    error.to_string()
}

fn authenticate(s: &mut State, body: &[u8], record: RequestRecord) -> Answer {
    let envelope: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let id = envelope.get("id").cloned().unwrap_or(Value::Null);
    let p = envelope.get("params").cloned().unwrap_or(Value::Null);
    let field = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    let now = Instant::now();
    if s.locked_until.is_some_and(|until| now < until) {
        return ok(
            record,
            rpc_error(
                &id,
                "odoo.exceptions.AccessDenied",
                "Too many login failures, please wait a bit before trying again.",
            ),
        );
    }
    if field("db") != s.config.database {
        return ok(
            record,
            rpc_error(&id, "odoo.exceptions.AccessError", "Database not found."),
        );
    }
    if field("login") != s.config.login || field("password") != s.config.password {
        s.failed_logins.push_back(now);
        while s
            .failed_logins
            .front()
            .is_some_and(|t| now.duration_since(*t) > LOCKOUT_WINDOW)
        {
            s.failed_logins.pop_front();
        }
        if s.failed_logins.len() >= LOCKOUT_FAILURES {
            s.locked_until = Some(now + LOCKOUT);
            s.failed_logins.clear();
        }
        return ok(record, rpc_error(&id, "odoo.exceptions.AccessDenied", "Access Denied"));
    }
    let sid = s.new_session_id();
    s.sessions.insert(
        sid.clone(),
        WebSession {
            created: now,
            dies_at: None,
        },
    );
    let result = session_info(s);
    // Odoo 19 sends the new cookie twice on this route (recorded).
    Answer {
        status: StatusCode::OK,
        body: rpc_result(&id, Some(result)),
        headers: vec![set_cookie(&sid), set_cookie(&sid)],
        record,
    }
}

fn call_kw(s: &mut State, headers: &hyper::HeaderMap, body: &[u8], path: &str) -> Answer {
    let envelope: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let id = envelope.get("id").cloned().unwrap_or(Value::Null);
    let p = envelope.get("params").cloned().unwrap_or(Value::Null);
    let model = p.get("model").and_then(Value::as_str).unwrap_or_default().to_string();
    let method = p.get("method").and_then(Value::as_str).unwrap_or_default().to_string();
    let record = RequestRecord {
        path: path.to_string(),
        model: Some(model.clone()),
        method: Some(method.clone()),
        status: 200,
        api: "web",
    };
    let Some((_, extra)) = web_session(s, headers) else {
        return ok(record, session_expired());
    };
    // Web sessions are the configured user's.
    s.caller_admin = true;
    let args = p.get("args").and_then(Value::as_array).cloned().unwrap_or_default();
    let named = bind(&method, &args, p.get("kwargs"));
    let body = match orm::call(s, &model, &method, &named) {
        Ok(result) => rpc_result(&id, orm::downgraded(&method, result)),
        Err(OrmError { name, message, .. }) => rpc_error(&id, name, &message),
    };
    Answer {
        status: StatusCode::OK,
        body,
        headers: extra,
        record,
    }
}

/// The logged-in web session of a request, and the `Set-Cookie` to send when its id was rotated
/// now; None when the cookie is missing, unknown, destroyed or past its rotation grace.
fn web_session(s: &mut State, headers: &hyper::HeaderMap) -> Option<(String, Vec<(&'static str, String)>)> {
    let now = Instant::now();
    let sid = cookie(headers).filter(|sid| {
        s.sessions
            .get(sid)
            .is_some_and(|session| session.dies_at.is_none_or(|dies| now < dies))
    })?;
    // Odoo rotates a session's id every few hours: the old id keeps working for a short grace.
    let mut extra = vec![];
    let (rotation, grace) = (s.rotation, s.grace);
    let session = s.sessions.get_mut(&sid).expect("checked above");
    if session.dies_at.is_none() && now.duration_since(session.created) >= rotation {
        session.dies_at = Some(now + grace);
        let new = s.new_session_id();
        s.sessions.insert(
            new.clone(),
            WebSession {
                created: now,
                dies_at: None,
            },
        );
        extra.push(set_cookie(&new));
        return Some((new, extra));
    }
    Some((sid, extra))
}

/// `/web/session/get_session_info`: the session's user, and its cookie sent again.
fn get_session_info(s: &mut State, headers: &hyper::HeaderMap, body: &[u8], path: &str) -> Answer {
    let id = rpc_id(body);
    let record = RequestRecord {
        path: path.to_string(),
        model: None,
        method: Some("get_session_info".into()),
        status: 200,
        api: "web",
    };
    let Some((sid, mut extra)) = web_session(s, headers) else {
        return ok(record, session_expired());
    };
    if extra.is_empty() {
        extra.push(set_cookie(&sid));
    }
    let result = session_info(s);
    Answer {
        status: StatusCode::OK,
        body: rpc_result(&id, Some(result)),
        headers: extra,
        record,
    }
}
