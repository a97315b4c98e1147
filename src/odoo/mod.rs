//! The Odoo client: JSON-2 with an API key on Odoo 19 and later, `/jsonrpc` `execute_kw` with a
//! key or password on 16–18 (or when configured). It authenticates once, logs in again once when
//! a session expires, retries only what is worth retrying, and never tries a refused login again
//! within [`LOGIN_RETRY`], so a wrong password cannot trip Odoo's login lockout.

mod error;
pub(crate) mod mapping;
mod rights;
pub(crate) mod setup;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{StatusCode, Url};
use serde::de::DeserializeOwned;
use serde_json::{json, Map, Value};

pub(crate) use error::OdooError;
pub(crate) use mapping::FieldPlan;

use crate::backoff::Backoff;
use crate::config::{OdooApi, OdooConfig, Secret};
use crate::http::{snippet, BodyError};

/// Minimum time between two login attempts after one was refused.
pub(crate) const LOGIN_RETRY: Duration = Duration::from_secs(60);

/// Attempts for one call when the failure is worth retrying.
const ATTEMPTS: u32 = 3;
/// Waits between them: 0.5 s, then 1 s.
const RETRY: Backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(5));

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Json2,
    JsonRpc,
}

/// What the client learned on connecting: which API, which version, who we are.
#[derive(Debug, Clone)]
struct Session {
    api: Api,
    version: u32,
    /// The user id for `/jsonrpc`; JSON-2 needs none.
    uid: Option<i64>,
}

pub struct OdooClient {
    http: reqwest::Client,
    base: Url,
    database: String,
    login: Option<String>,
    secret: Secret,
    wanted: OdooApi,
    timeout: Duration,
    /// Longer answers are refused unread.
    max_response: usize,
    session: tokio::sync::Mutex<Option<Session>>,
    /// Set when a login was refused; no new attempt before this instant.
    login_not_before: std::sync::Mutex<Option<Instant>>,
    /// Requests sent so far; shared, so that a sync's scheduler can see a run make progress.
    requests: Arc<AtomicU64>,
    /// Odoo's clock (its `Date` header, Unix seconds) at the latest answer; 0 before one.
    server_time: AtomicI64,
}

impl OdooClient {
    /// Builds the client; nothing is sent until the first call.
    pub(crate) fn new(config: &OdooConfig) -> Result<OdooClient, crate::config::ConfigError> {
        OdooClient::as_user(config, config.login.clone(), config.secret()?)
    }

    /// A client for the configured server as another user: `secret` (and `login`, which
    /// `/jsonrpc` needs) in place of the configured ones.
    pub(crate) fn as_user(
        config: &OdooConfig,
        login: Option<String>,
        secret: Secret,
    ) -> Result<OdooClient, crate::config::ConfigError> {
        let base = Url::parse(&config.url).map_err(|e| crate::config::ConfigError {
            key: "odoo.url".into(),
            message: e.to_string(),
        })?;
        let base = crate::http::as_base(base);
        Ok(OdooClient {
            http: crate::http::client(config.request_timeout),
            base,
            database: config.database.clone(),
            login,
            secret,
            wanted: config.api,
            timeout: config.request_timeout,
            max_response: config.max_response,
            session: tokio::sync::Mutex::new(None),
            login_not_before: std::sync::Mutex::new(None),
            requests: Arc::default(),
            server_time: AtomicI64::new(0),
        })
    }

    /// HTTP requests sent so far.
    pub(crate) fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Odoo's own time when its latest answer left, as its `Date` header said: a lower bound of
    /// its time when any later request arrives.
    pub(crate) fn server_time(&self) -> Option<i64> {
        Some(self.server_time.load(Ordering::Relaxed)).filter(|t| *t > 0)
    }

    /// The request counter itself, to watch from outside a run.
    pub(crate) fn request_counter(&self) -> Arc<AtomicU64> {
        self.requests.clone()
    }

    /// The API in use and the server's major version, connecting first if needed.
    pub async fn api(&self) -> Result<(Api, u32), OdooError> {
        let s = self.session().await?;
        Ok((s.api, s.version))
    }

    /// Asks the server's major version (works on every version, without authentication).
    pub(crate) async fn server_version(&self) -> Result<u32, OdooError> {
        let body = json!({"jsonrpc": "2.0", "method": "call", "id": 1, "params": {}});
        let result: Value = self.post_jsonrpc("web/webclient/version_info", &body).await?;
        major_version(&result).ok_or_else(|| OdooError::Decode(format!("no server version in {result}")))
    }

    async fn session(&self) -> Result<Session, OdooError> {
        let mut guard = self.session.lock().await;
        if let Some(s) = guard.as_ref() {
            return Ok(s.clone());
        }
        let version = self.server_version().await?;
        let api = match (self.wanted, &self.secret) {
            (OdooApi::Json2, _) if version < 19 => {
                return Err(OdooError::Unsupported(format!(
                    "odoo.api: JSON-2 needs Odoo 19 or later; this server runs {version}"
                )))
            }
            (OdooApi::Json2, _) => Api::Json2,
            (OdooApi::Auto, Secret::ApiKey(_)) if version >= 19 => Api::Json2,
            _ => Api::JsonRpc,
        };
        let uid = match api {
            Api::Json2 => None,
            Api::JsonRpc => Some(self.authenticate().await?),
        };
        let session = Session { api, version, uid };
        tracing::info!(version, api = ?api, "connected to Odoo");
        *guard = Some(session.clone());
        Ok(session)
    }

    async fn authenticate(&self) -> Result<i64, OdooError> {
        let login = self.login.as_deref().ok_or_else(|| {
            OdooError::Unsupported("odoo.login: this Odoo has no JSON-2; /jsonrpc needs the key's login".into())
        })?;
        if let Some(until) = *self.login_not_before.lock().unwrap() {
            if Instant::now() < until {
                return Err(OdooError::AccessDenied(format!(
                    "login {login:?} was refused; not trying again for {}s",
                    (until - Instant::now()).as_secs()
                )));
            }
        }
        let body = json!({"jsonrpc": "2.0", "method": "call", "id": 1, "params": {
            "service": "common", "method": "authenticate",
            "args": [self.database, login, self.secret.expose(), {}]}});
        let result: Result<Value, _> = self.post_jsonrpc("jsonrpc", &body).await;
        let refused = |why: String| {
            *self.login_not_before.lock().unwrap() = Some(Instant::now() + LOGIN_RETRY);
            OdooError::AccessDenied(why)
        };
        match result {
            Ok(Value::Number(uid)) => uid.as_i64().ok_or_else(|| OdooError::Decode(format!("uid {uid}"))),
            // Odoo answers a wrong password with `false`, not with an error.
            Ok(Value::Bool(false)) => Err(refused(format!(
                "login {login:?} on database {:?} was refused",
                self.database
            ))),
            Ok(other) => Err(OdooError::Decode(format!("authenticate answered {other}"))),
            Err(OdooError::AccessDenied(m) | OdooError::AccessError(m)) => Err(refused(m)),
            Err(e) => Err(e),
        }
    }

    /// Calls `model.method` with named arguments. `ids`, when present, is the record set; the
    /// rest are keyword arguments — which is also how `/jsonrpc` takes them.
    pub(crate) async fn call(&self, model: &str, method: &str, named: Map<String, Value>) -> Result<Value, OdooError> {
        self.call_retrying(model, method, named, ATTEMPTS).await
    }

    /// [`OdooClient::call`], its answer read straight into `T`: no tree of JSON values for an
    /// answer of thousands of records.
    pub(crate) async fn call_as<T: DeserializeOwned>(
        &self,
        model: &str,
        method: &str,
        named: Map<String, Value>,
    ) -> Result<T, OdooError> {
        self.call_retrying(model, method, named, ATTEMPTS).await
    }

    /// [`OdooClient::call`] without retrying a passing failure: for a call that must not run
    /// twice (a lost answer may hide one Odoo carried out), whose caller looks before trying
    /// again. A new login after an expired session is still made: Odoo ran nothing then.
    pub(crate) async fn call_once(
        &self,
        model: &str,
        method: &str,
        named: Map<String, Value>,
    ) -> Result<Value, OdooError> {
        self.call_retrying(model, method, named, 1).await
    }

    async fn call_retrying<T: DeserializeOwned>(
        &self,
        model: &str,
        method: &str,
        named: Map<String, Value>,
        attempts: u32,
    ) -> Result<T, OdooError> {
        let mut relogged = false;
        let mut attempt = 1;
        loop {
            // Connecting (version probe, login) is retried like the call itself.
            let result = match self.session().await {
                Ok(session) => match session.api {
                    Api::Json2 => self.call_json2(model, method, &named).await,
                    Api::JsonRpc => self.call_jsonrpc(&session, model, method, &named).await,
                },
                Err(e) => Err(e),
            };
            match result {
                Err(OdooError::SessionExpired) if !relogged => {
                    relogged = true;
                    tracing::info!("Odoo session expired; logging in again");
                    *self.session.lock().await = None;
                }
                Err(e) if e.is_retryable() && attempt < attempts => {
                    tracing::debug!(model, method, attempt, error = %e, "retrying Odoo call");
                    tokio::time::sleep(RETRY.delay(attempt)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn call_json2<T: DeserializeOwned>(
        &self,
        model: &str,
        method: &str,
        named: &Map<String, Value>,
    ) -> Result<T, OdooError> {
        let url = self.url(&format!("json/2/{model}/{method}"))?;
        let request = self
            .http
            .post(url)
            .bearer_auth(self.secret.expose())
            .header("X-Odoo-Database", &self.database);
        let (status, text) = self.send(request.json(named)).await?;
        decode_json2(status, &text)
    }

    async fn call_jsonrpc<T: DeserializeOwned>(
        &self,
        session: &Session,
        model: &str,
        method: &str,
        named: &Map<String, Value>,
    ) -> Result<T, OdooError> {
        let mut kwargs = named.clone();
        let args = match kwargs.remove("ids") {
            Some(ids) => vec![ids],
            None => vec![],
        };
        let body = json!({"jsonrpc": "2.0", "method": "call", "id": 1, "params": {
            "service": "object", "method": "execute_kw",
            "args": [self.database, session.uid, self.secret.expose(), model, method, args, kwargs]}});
        self.post_jsonrpc("jsonrpc", &body).await
    }

    /// Posts a JSON-RPC envelope and unwraps its `result` (absent for methods returning None).
    async fn post_jsonrpc<T: DeserializeOwned>(&self, path: &str, body: &Value) -> Result<T, OdooError> {
        let url = self.url(path)?;
        let (status, text) = self.send(self.http.post(url).json(body)).await?;
        decode_jsonrpc(status, &text)
    }

    /// Sends one request and reads its whole body; every request to Odoo passes here.
    async fn send(&self, request: reqwest::RequestBuilder) -> Result<(StatusCode, String), OdooError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let response = request
            .send()
            .await
            .map_err(|e| OdooError::from_reqwest(&e, self.timeout))?;
        let status = response.status();
        if let Some(date) = response
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|d| d.to_str().ok())
            .and_then(crate::clock::parse_http_date)
        {
            self.server_time.store(date, Ordering::Relaxed);
        }
        let text = crate::http::read_body(response, self.max_response)
            .await
            .map_err(|e| match e {
                BodyError::TooLarge { limit } => OdooError::TooLarge { limit },
                BodyError::NoAnswer(why) => OdooError::no_answer(why, self.timeout),
            })?;
        Ok((status, text))
    }

    fn url(&self, path: &str) -> Result<Url, OdooError> {
        self.base
            .join(path)
            .map_err(|e| OdooError::Unsupported(format!("odoo.url: {e}")))
    }

    // --- ORM calls the sync uses -------------------------------------------------------------

    pub(crate) async fn search_read(
        &self,
        model: &str,
        domain: &Value,
        fields: &[String],
        order: &str,
        limit: Option<u32>,
    ) -> Result<Vec<Map<String, Value>>, OdooError> {
        self.search_read_as(model, domain, fields, order, limit).await
    }

    /// [`OdooClient::search_read`] into records of type `T`.
    pub(crate) async fn search_read_as<T: DeserializeOwned>(
        &self,
        model: &str,
        domain: &Value,
        fields: &[String],
        order: &str,
        limit: Option<u32>,
    ) -> Result<Vec<T>, OdooError> {
        let mut named = Map::new();
        named.insert("domain".into(), domain.clone());
        named.insert("fields".into(), json!(fields));
        named.insert("order".into(), json!(order));
        if let Some(limit) = limit {
            named.insert("limit".into(), json!(limit));
        }
        self.call_as(model, "search_read", named).await
    }

    /// Which of `names` exist on `model`. `fields_get` ignores unknown names (while `read`
    /// fails the whole call on one), so this is how to ask.
    pub(crate) async fn existing_fields(&self, model: &str, names: &[&str]) -> Result<Vec<String>, OdooError> {
        let mut named = Map::new();
        named.insert("allfields".into(), json!(names));
        named.insert("attributes".into(), json!(["type"]));
        match self.call(model, "fields_get", named).await? {
            Value::Object(fields) => Ok(fields.keys().cloned().collect()),
            other => Err(OdooError::Decode(format!(
                "fields_get answered {}",
                snippet(&other.to_string())
            ))),
        }
    }

    /// Learns which fields this server has and checks the configured instance fields exist.
    pub(crate) async fn field_plan(&self, instance: &crate::config::InstanceFields) -> Result<FieldPlan, OdooError> {
        let configured = instance.configured();
        let mut wanted: Vec<&str> = mapping::STANDARD_FIELDS.to_vec();
        wanted.extend(mapping::PLANNED_FIELDS_BEFORE_17);
        wanted.extend(configured.iter().map(|(_, field)| *field));
        let existing = self.existing_fields("mrp.production", &wanted).await?;
        FieldPlan::new(&existing, instance)
    }
}

/// A JSON-2 answer: the bare result on 200, Odoo's error object otherwise.
fn decode_json2<T: DeserializeOwned>(status: StatusCode, text: &str) -> Result<T, OdooError> {
    if status == StatusCode::OK {
        return serde_json::from_str(text).map_err(|e| OdooError::unreadable(&e, text));
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(err)) if err.contains_key("name") => {
            let name = err.get("name").and_then(Value::as_str).unwrap_or("");
            let message = err.get("message").and_then(Value::as_str).unwrap_or("");
            Err(OdooError::from_exception(Some(status.as_u16()), name, message))
        }
        // Not Odoo speaking: a proxy, a restarting server.
        _ => Err(http_failure(status, text)),
    }
}

/// A JSON-RPC envelope's `result` (absent for methods returning None), or its `error`.
fn decode_jsonrpc<T: DeserializeOwned>(status: StatusCode, text: &str) -> Result<T, OdooError> {
    #[derive(serde::Deserialize)]
    struct Envelope<T> {
        result: Option<T>,
        error: Option<Value>,
    }
    if status != StatusCode::OK {
        return Err(http_failure(status, text));
    }
    let envelope: Envelope<T> = serde_json::from_str(text).map_err(|e| OdooError::unreadable(&e, text))?;
    if let Some(error) = envelope.error {
        if error.get("code").and_then(Value::as_i64) == Some(100) {
            return Err(OdooError::SessionExpired);
        }
        let data = error.get("data");
        let name = data.and_then(|d| d.get("name")).and_then(Value::as_str).unwrap_or("");
        let message = data
            .and_then(|d| d.get("message"))
            .or_else(|| error.get("message"))
            .and_then(Value::as_str)
            .unwrap_or("");
        return Err(OdooError::from_exception(None, name, message));
    }
    match envelope.result {
        Some(result) => Ok(result),
        // None, as Odoo answers a method that returns nothing: right for a caller that takes
        // a JSON value, a decode error for one that expects records.
        None => T::deserialize(Value::Null).map_err(|e| OdooError::Decode(format!("no result: {e}"))),
    }
}

/// The major version in a `version_info` answer. On-premise servers say `[19, 0, 0, "final", 0,
/// ""]`; Odoo SaaS says `["saas~18", 1, 0, "final", 0, "e"]` and `"saas~18.1"`, so the number
/// is taken from the first text that has one.
fn major_version(info: &Value) -> Option<u32> {
    let first = info.get("server_version_info").and_then(|v| v.get(0));
    if let Some(n) = first.and_then(Value::as_u64) {
        return u32::try_from(n).ok();
    }
    let texts = [first, info.get("server_serie"), info.get("server_version")];
    texts
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .find_map(leading_number)
}

/// The first run of digits in `text`: 18 in "saas~18.1", 17 in "17.0+e".
fn leading_number(text: &str) -> Option<u32> {
    let start = text.find(|c: char| c.is_ascii_digit())?;
    let digits: String = text[start..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

fn http_failure(status: StatusCode, text: &str) -> OdooError {
    let detail = snippet(text);
    if status.is_server_error() || status == StatusCode::CONFLICT || status == StatusCode::TOO_MANY_REQUESTS {
        OdooError::Unavailable {
            status: status.as_u16(),
            detail,
        }
    } else if status == StatusCode::NOT_FOUND {
        OdooError::Unsupported(format!("odoo.url: HTTP 404 — is this an Odoo server? {detail}"))
    } else {
        OdooError::Rpc {
            name: format!("HTTP {}", status.as_u16()),
            message: detail,
            retryable: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use proptest::prelude::*;

    /// Odoo-shaped bodies, and bytes.
    fn body() -> impl Strategy<Value = String> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..400).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
            "\\PC{0,200}",
            Just(r#"{"jsonrpc": "2.0", "id": 1, "result": [{"id": 1}]}"#.to_string()),
            Just(r#"{"jsonrpc": "2.0", "id": 1, "error": {"code": 200, "data": {"name": "odoo.exceptions.AccessError", "message": "no"}}}"#.to_string()),
            Just(r#"{"name": "odoo.exceptions.ValidationError", "message": "bad"}"#.to_string()),
        ]
        .prop_flat_map(|b| {
            let len = b.len();
            (Just(b), 0..=len)
        })
        // Cut anywhere (on a character boundary): the proxy that gave up half-way.
        .prop_map(|(b, cut)| {
            let mut end = cut.min(b.len());
            while !b.is_char_boundary(end) {
                end -= 1;
            }
            b[..end].to_string()
        })
    }

    proptest! {
        /// Whatever a server or a proxy answers, the decoder classifies it, never panics, and a
        /// 200 whose body is no JSON is a passing fault.
        #[test]
        fn fuzz_odoo_answers_decode_or_fail_cleanly(text in body(), status in prop_oneof![Just(200u16), 400u16..600]) {
            let status = StatusCode::from_u16(status).unwrap();
            for decoded in [decode_json2::<Value>(status, &text), decode_jsonrpc(status, &text)] {
                if let Err(e) = decoded {
                    let _ = e.to_string();
                    if status == StatusCode::OK && serde_json::from_str::<Value>(&text).is_err() {
                        prop_assert!(e.is_retryable(), "{e}");
                    }
                }
            }
            type Records = Vec<Map<String, Value>>;
            for decoded in [decode_json2::<Records>(status, &text), decode_jsonrpc(status, &text)] {
                let _ = decoded.map_err(|e| e.to_string());
            }
        }
    }

    #[test]
    fn major_version_reads_on_premise_and_saas_answers() {
        let on_premise = json!({"server_version": "19.0", "server_version_info": [19, 0, 0, "final", 0, ""]});
        assert_eq!(major_version(&on_premise), Some(19));
        let saas = json!({"server_version": "saas~18.1", "server_serie": "saas~18.1",
            "server_version_info": ["saas~18", 1, 0, "final", 0, "e"]});
        assert_eq!(major_version(&saas), Some(18));
        let serie_only = json!({"server_serie": "saas~17.4", "server_version_info": ["saas", 4]});
        assert_eq!(major_version(&serie_only), Some(17));
        assert_eq!(major_version(&json!({"server_version": "master"})), None);
    }
}
