//! Every address the screens use, and what each answers. Everything a browser sends is
//! hostile: paths are decoded strictly, bodies are small JSON read with a bound and a deadline,
//! a POST must come from the server's own pages (JSON only, same origin), and a panel's
//! session acts only on its own station's addresses.
//!
//! | address | what |
//! |---|---|
//! | `GET /`, `/line/<line>`, `/panel/<station>` | the pages |
//! | `GET /static/<file>` | their styles and scripts |
//! | `GET /events/index`, `/events/line/<line>` | live state (server-sent events) |
//! | `GET /panel/<station>/events` | the station's line, live (signed in) |
//! | `GET /panel/<station>/session` | whether this device is signed in as the station |
//! | `POST /panel/<station>/sign-in`, `/sign-out` | `{"password"}` → a session cookie |
//! | `POST /panel/<station>/command` | `{"action", "command"}` → the agent's reply |

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Map, Value};

use super::assets::{self, Page};
use super::events::{self, View};
use super::session::{self, Session};
use super::stations::{Denied, Outcome, SignIn, ACTIONS};
use super::Web;

pub(crate) type Body = BoxBody<Bytes, Infallible>;

/// A POST's body at most.
const MAX_BODY: usize = 8 * 1024;
/// And the time a client may take to send it.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// A request_id's length at most (as the agent's).
const MAX_REQUEST_ID: usize = 128;
/// A password's length at most.
const MAX_PASSWORD: usize = 256;

/// Nothing from outside the gateway, no inline script or style, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Failed sign-ins: a device that fails five times in a row, or everyone together failing 30
/// times a minute, waits a minute. A right password costs nothing (ten tablets set up from one
/// desk are not an attack).
pub(crate) struct SignInLimiter {
    per_address: governor::DefaultKeyedRateLimiter<IpAddr>,
    all: governor::DefaultDirectRateLimiter,
    /// Who waits, and until when (`None`: everyone).
    locked: std::sync::Mutex<HashMap<Option<IpAddr>, Instant>>,
    /// Devices whose sign-in the broker is being asked about: one at a time each, so that the
    /// limit counts every guess.
    asking: std::sync::Mutex<std::collections::HashSet<IpAddr>>,
}

/// A device's sign-in being asked about, until dropped.
struct Asking<'a> {
    limiter: &'a SignInLimiter,
    peer: IpAddr,
}

impl Drop for Asking<'_> {
    fn drop(&mut self) {
        self.limiter
            .asking
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.peer);
    }
}

/// How long a device (or everyone) waits once over the limit.
const LOCKOUT: Duration = Duration::from_secs(60);
/// Devices remembered at most; beyond it, everyone waits.
const MAX_ADDRESSES: usize = 10_000;

impl SignInLimiter {
    pub(crate) fn new() -> SignInLimiter {
        let n = |n: u32| NonZeroU32::new(n).expect("non-zero");
        SignInLimiter {
            // The fifth failure in a burst is over the limit.
            per_address: governor::RateLimiter::hashmap(governor::Quota::per_minute(n(5)).allow_burst(n(4))),
            all: governor::RateLimiter::direct(governor::Quota::per_minute(n(30))),
            locked: std::sync::Mutex::new(HashMap::new()),
            asking: std::sync::Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Option<IpAddr>, Instant>> {
        self.locked.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `peer` may try now.
    fn allow(&self, peer: IpAddr) -> bool {
        let now = Instant::now();
        let locked = self.lock();
        ![None, Some(peer)]
            .iter()
            .any(|who| locked.get(who).is_some_and(|until| *until > now))
    }

    /// `peer`'s attempt, unless it has one being asked about already (or may not try now).
    fn begin(&self, peer: IpAddr) -> Option<Asking<'_>> {
        if !self.allow(peer) {
            return None;
        }
        let mut asking = self.asking.lock().unwrap_or_else(|p| p.into_inner());
        // Bounded like the rest: beyond it, nobody new is asked about until some answer.
        if asking.len() >= MAX_ADDRESSES || !asking.insert(peer) {
            return None;
        }
        Some(Asking { limiter: self, peer })
    }

    /// Counts a failed attempt of `peer`.
    fn failed(&self, peer: IpAddr) {
        let now = Instant::now();
        let mut locked = self.lock();
        if locked.len() > MAX_ADDRESSES || self.per_address.len() > MAX_ADDRESSES {
            locked.retain(|_, until| *until > now);
            self.per_address.retain_recent();
        }
        let crowded = locked.len() > MAX_ADDRESSES || self.per_address.len() > MAX_ADDRESSES;
        if self.all.check().is_err() || crowded {
            locked.insert(None, now + LOCKOUT);
        }
        if self.per_address.check_key(&peer).is_err() {
            locked.insert(Some(peer), now + LOCKOUT);
        }
    }
}

/// Answers one request.
pub(crate) async fn handle(web: Arc<Web>, peer: SocketAddr, request: Request<Incoming>) -> Response<Body> {
    let mut response = route(&web, peer, request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

async fn route(web: &Arc<Web>, peer: SocketAddr, request: Request<Incoming>) -> Response<Body> {
    let Some(path) = segments(request.uri().path()) else {
        return error(StatusCode::BAD_REQUEST, "bad_path", "the address is not valid");
    };
    let path: Vec<&str> = path.iter().map(String::as_str).collect();
    let get = request.method() == Method::GET || request.method() == Method::HEAD;
    let post = request.method() == Method::POST;
    match path.as_slice() {
        [""] if get => page(web, Page::Index),
        ["line", _] if get => page(web, Page::Line),
        ["panel", station] if get => match web.config.stations.contains_key(*station) {
            true => page(web, Page::Panel),
            false => error(
                StatusCode::NOT_FOUND,
                "unknown_station",
                "no such station on this gateway",
            ),
        },
        ["static", file] if get => match assets::file(file) {
            Some(asset) => asset_response(&request, asset),
            None => error(StatusCode::NOT_FOUND, "not_found", "no such file"),
        },
        ["events", "index"] if get => stream(web, View::Index),
        ["events", "line", line] if get => stream(web, View::Line(line.to_string())),
        ["panel", station, what] => {
            let Some(line) = web.config.stations.get(*station).cloned() else {
                return error(
                    StatusCode::NOT_FOUND,
                    "unknown_station",
                    "no such station on this gateway",
                );
            };
            match (*what, get, post) {
                ("session", true, _) => session_info(web, &request, station, &line),
                ("events", true, _) => match signed_in(web, &request, station) {
                    Some(_) => stream(web, View::Line(line)),
                    None => signed_out(),
                },
                ("sign-in", _, true) => sign_in(web, peer, request, station).await,
                ("sign-out", _, true) => match from_own_page(&request) {
                    Ok(()) => sign_out(web, station),
                    Err(refusal) => refusal.response(),
                },
                ("command", _, true) => command(web, request, station, &line).await,
                ("session" | "events", false, _) | ("sign-in" | "sign-out" | "command", _, false) => {
                    error(StatusCode::METHOD_NOT_ALLOWED, "method", "not with this method")
                }
                _ => error(StatusCode::NOT_FOUND, "not_found", "nothing here"),
            }
        }
        ["healthz"] if get => {
            let up = web.feed.borrow().link.up;
            json_response(
                if up {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                },
                &json!({"broker": up}),
            )
        }
        [""] | ["line", _] | ["panel", _] | ["static", _] | ["events", ..] | ["healthz"] => {
            error(StatusCode::METHOD_NOT_ALLOWED, "method", "not with this method")
        }
        _ => error(StatusCode::NOT_FOUND, "not_found", "nothing here"),
    }
}

/// The path's segments, percent-decoded; None for anything a browser would not send.
fn segments(path: &str) -> Option<Vec<String>> {
    if path.len() > 2048 || !path.starts_with('/') {
        return None;
    }
    path[1..].split('/').map(decode).collect()
}

/// One percent-decoded segment: UTF-8, no control characters.
fn decode(segment: &str) -> Option<String> {
    let text = String::from_utf8(crate::mqtt::topics::percent_decoded(segment)?).ok()?;
    (!text.chars().any(char::is_control)).then_some(text)
}

fn page(web: &Web, page: Page) -> Response<Body> {
    let mut response = Response::new(full(assets::page(page, web.language())));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

fn asset_response(request: &Request<Incoming>, asset: &assets::Asset) -> Response<Body> {
    let etag = asset.etag();
    let fresh = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .is_some_and(|tag| tag.as_bytes() == etag.as_bytes());
    let mut response = if fresh {
        let mut r = Response::new(full(Bytes::new()));
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        Response::new(full(Bytes::from_static(asset.body.as_bytes())))
    };
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    // Asked again on every load, sent again only when it changed (a new linegate).
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(tag) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, tag);
    }
    response
}

fn stream(web: &Arc<Web>, view: View) -> Response<Body> {
    let mut response = Response::new(BoxBody::new(events::open(web.clone(), view)));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The device's session on `station`'s pages, if it has a valid one.
fn signed_in(web: &Web, request: &Request<Incoming>, station: &str) -> Option<Session> {
    let cookies = request
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok());
    let value = session::cookie(cookies, session::COOKIE)?;
    let session = web.sealer.open(value, station, crate::clock::now_unix())?;
    web.stations.check(station, &session.password).ok()?;
    Some(session)
}

fn session_info(web: &Web, request: &Request<Incoming>, station: &str, line: &str) -> Response<Body> {
    let signed_in = signed_in(web, request, station).is_some();
    json_response(
        StatusCode::OK,
        &json!({"station": station, "line": line, "gateway": web.gateway, "signed_in": signed_in}),
    )
}

/// A request refused: its status and why, as the page shows it.
struct Refusal {
    status: StatusCode,
    code: &'static str,
    message: &'static str,
}

impl Refusal {
    fn response(&self) -> Response<Body> {
        error(self.status, self.code, self.message)
    }
}

/// Refuses a POST that a page of another site could have made: it must be JSON (a form of
/// another site cannot send that without asking first), and from this server's own origin.
fn from_own_page(request: &Request<Incoming>) -> Result<(), Refusal> {
    let headers = request.headers();
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let json =
        text(header::CONTENT_TYPE).is_some_and(|t| t.split(';').next().is_some_and(|m| m.trim() == "application/json"));
    let site_ok = text(header::HeaderName::from_static("sec-fetch-site")).is_none_or(|s| s == "same-origin");
    let origin_ok = match (text(header::ORIGIN), text(header::HOST)) {
        (None, _) => true,
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_some_and(|(_, rest)| rest.eq_ignore_ascii_case(host)),
        (Some(_), None) => false,
    };
    if json && site_ok && origin_ok {
        Ok(())
    } else {
        Err(Refusal {
            status: StatusCode::FORBIDDEN,
            code: "not_from_this_page",
            message: "send it from the panel's own page",
        })
    }
}

/// The body of a POST from the server's own page, a JSON object within the bounds.
async fn body(request: Request<Incoming>) -> Result<Map<String, Value>, Refusal> {
    from_own_page(&request)?;
    let read = tokio::time::timeout(BODY_TIMEOUT, Limited::new(request.into_body(), MAX_BODY).collect()).await;
    let bytes = match read {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(_)) => {
            return Err(Refusal {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                code: "too_large",
                message: "the request is too large",
            })
        }
        Err(_) => {
            return Err(Refusal {
                status: StatusCode::REQUEST_TIMEOUT,
                code: "too_slow",
                message: "the request took too long",
            })
        }
    };
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(Refusal {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_json",
            message: "the request is not a JSON object",
        }),
    }
}

async fn sign_in(web: &Web, peer: SocketAddr, request: Request<Incoming>, station: &str) -> Response<Body> {
    let fields = match body(request).await {
        Ok(fields) => fields,
        Err(refusal) => return refusal.response(),
    };
    let Some(password) = fields.get("password").and_then(Value::as_str) else {
        return error(
            StatusCode::BAD_REQUEST,
            "missing_field",
            "the station's password is missing",
        );
    };
    let Some(_asking) = web.sign_ins.begin(peer.ip()) else {
        let mut refusal = error(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            "too many sign-in attempts; wait a minute",
        );
        refusal
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
        return refusal;
    };
    if password.is_empty() || password.len() > MAX_PASSWORD {
        web.sign_ins.failed(peer.ip());
        return error(
            StatusCode::UNAUTHORIZED,
            "wrong_password",
            "the broker did not accept this password",
        );
    }
    match web.stations.sign_in(station, password).await {
        SignIn::Accepted => {
            let session = Session {
                station: station.to_string(),
                password: password.to_string(),
                expires: crate::clock::now_unix() + i64::from(web.config.session_days) * 86_400,
            };
            tracing::info!(%station, device = %peer.ip(), "a panel signed in");
            let cookie = cookie(
                web,
                station,
                &web.sealer.seal(&session),
                i64::from(web.config.session_days) * 86_400,
            );
            let mut response = json_response(StatusCode::OK, &json!({"ok": true}));
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            response
        }
        SignIn::Refused(why) => {
            web.sign_ins.failed(peer.ip());
            tracing::warn!(%station, device = %peer.ip(), reason = %why, "a panel's sign-in was refused");
            error(
                StatusCode::UNAUTHORIZED,
                "wrong_password",
                "the broker did not accept this password",
            )
        }
        SignIn::Forbidden(why) => {
            tracing::error!(%station, reason = %why, "a panel signed in, but the broker's ACL refuses the station its replies");
            error(StatusCode::FORBIDDEN, "refused_by_broker", &why)
        }
        SignIn::Unreachable(why) => error(StatusCode::SERVICE_UNAVAILABLE, "broker_unreachable", &why),
    }
}

fn sign_out(web: &Web, station: &str) -> Response<Body> {
    let mut response = json_response(StatusCode::OK, &json!({"ok": true}));
    if let Ok(value) = HeaderValue::from_str(&cookie(web, station, "", 0)) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// The session cookie: the station's pages only, never to a script, never to another site,
/// over TLS only when the server speaks it.
fn cookie(web: &Web, station: &str, value: &str, max_age: i64) -> String {
    let secure = if web.tls { "; Secure" } else { "" };
    format!(
        "{}={value}; Path=/panel/{station}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}",
        session::COOKIE
    )
}

/// An attempt older than this is as stale as can be (the agent refuses far younger ones).
const MAX_AGE_SECS: u64 = 7 * 86_400;

async fn command(web: &Web, request: Request<Incoming>, station: &str, line: &str) -> Response<Body> {
    let Some(session) = signed_in(web, &request, station) else {
        return signed_out();
    };
    let mut fields = match body(request).await {
        Ok(fields) => fields,
        Err(refusal) => return refusal.response(),
    };
    let action = fields
        .get("action")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if !ACTIONS.contains(&action.as_str()) {
        return error(StatusCode::BAD_REQUEST, "unknown_action", "not an action of the panel");
    }
    let Some(Value::Object(mut command)) = fields.remove("command") else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            "the command must be a JSON object",
        );
    };
    match command.get("request_id") {
        Some(Value::String(id)) if !id.is_empty() && id.len() <= MAX_REQUEST_ID => {}
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "missing_field",
                "the command needs a request_id",
            )
        }
    }
    // When the operator made this attempt, by the gateway's clock (a tablet's may be anything):
    // the page says how long ago, by its own. A command retried for too long, or re-sent after
    // a reload hours later, is refused as stale rather than applied late.
    let age = fields
        .get("age_ms")
        .and_then(Value::as_u64)
        .map_or(0, |ms| (ms / 1000).min(MAX_AGE_SECS));
    command.insert(
        "sent_at".into(),
        Value::from(crate::clock::format_rfc3339(crate::clock::now_unix() - age as i64)),
    );
    // A panel works on its station's line: it registers, starts and lists there, whatever the
    // page sent.
    if matches!(
        action.as_str(),
        "register-mo" | "start-production" | "mo-options" | "ready-mo" | "running-mo"
    ) {
        command.insert("line".into(), Value::from(line));
    }
    match web.stations.send(station, &session.password, &action, command).await {
        Ok(Outcome::Reply(reply)) => json_response(StatusCode::OK, &reply),
        Ok(Outcome::Pending) => json_response(StatusCode::ACCEPTED, &json!({"pending": true})),
        Ok(Outcome::Refused(why)) => error(StatusCode::FORBIDDEN, "refused_by_broker", &why),
        Ok(Outcome::Busy) => error(StatusCode::SERVICE_UNAVAILABLE, "busy", "too many commands at once"),
        Err(Denied::SignedOut) => signed_out(),
    }
}

fn signed_out() -> Response<Body> {
    error(
        StatusCode::UNAUTHORIZED,
        "signed_out",
        "sign this panel in with the station's password",
    )
}

fn full(bytes: impl Into<Bytes>) -> Body {
    BoxBody::new(Full::new(bytes.into()))
}

fn json_response(status: StatusCode, value: &Value) -> Response<Body> {
    let mut response = Response::new(full(value.to_string()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    json_response(status, &json!({"error": {"code": code, "message": message}}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_decode_strictly() {
        assert_eq!(segments("/line/L%201").unwrap(), ["line", "L 1"]);
        assert_eq!(segments("/line/Lini%2F2").unwrap(), ["line", "Lini/2"]);
        assert_eq!(segments("/").unwrap(), [""]);
        for bad in ["line", "/line/%", "/line/%zz", "/line/%0A", "/line/%ff", "/x%00"] {
            assert!(segments(bad).is_none(), "{bad}");
        }
        assert!(segments(&format!("/{}", "a".repeat(3000))).is_none());
    }

    #[test]
    fn failed_sign_ins_lock_out_a_device_and_then_everyone() {
        let limiter = SignInLimiter::new();
        let device: IpAddr = [10, 0, 0, 7].into();
        // Right passwords cost nothing.
        assert!((0..50).all(|_| limiter.allow(device)));
        // Four failures in a row leave another try; the fifth locks the device out.
        for _ in 0..4 {
            limiter.failed(device);
            assert!(limiter.allow(device));
        }
        limiter.failed(device);
        assert!(!limiter.allow(device));
        assert!(limiter.allow([10, 0, 0, 8].into()), "another device may try");
        // Everyone together: 30 failures a minute are counted (5 so far); the next locks
        // everyone out.
        for n in 0..25u8 {
            limiter.failed([10, 0, 1, n].into());
        }
        assert!(limiter.allow([10, 0, 2, 1].into()));
        for n in 25..26u8 {
            limiter.failed([10, 0, 1, n].into());
        }
        assert!(!limiter.allow([10, 0, 2, 1].into()));
    }
}
