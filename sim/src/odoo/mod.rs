//! A simulated Odoo 16–19 that answers like the real one (`../shared/protocols/odoo.md`, and the
//! recorded `odoo-samples.md`): JSON-2 on 19, `/jsonrpc` and web sessions on all, `false` for
//! empty values, naive-UTC datetimes floored to the second, backorder renames, Odoo's error
//! shapes and status codes, the login lockout and session-cookie rotation, custom fields and
//! views an administrator makes over the API (`ir`), users with and without the rights for it
//! (`rights`) — plus the latency and faults a test asks for.

mod arch;
mod domain;
mod http;
mod ir;
mod orm;
mod records;
mod rights;
mod views;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use crate::clock;

#[derive(Clone, Debug)]
pub struct SimOdooConfig {
    /// 16, 17, 18 or 19. Only 19 serves JSON-2 and `/json/version`.
    pub version: u32,
    pub database: String,
    pub login: String,
    pub password: String,
    /// Accepted as bearer on JSON-2 and in place of the password on `/jsonrpc`.
    pub api_key: String,
    /// Added to every request before it is answered.
    pub latency: Duration,
    /// Fields this instance adds to `mrp.production` (char fields, `false` until written).
    pub custom_fields: Vec<String>,
    /// Answer version questions as Odoo SaaS does: `["saas~18", 1, 0, "final", 0, "e"]` and
    /// `"saas~18.1"` instead of `[18, 0, 0, "final", 0, ""]` and `"18.0"`.
    pub saas: bool,
}

impl Default for SimOdooConfig {
    fn default() -> Self {
        SimOdooConfig {
            version: 19,
            database: "mes".into(),
            login: "admin".into(),
            password: "admin".into(),
            api_key: "0123456789abcdef0123456789abcdef01234567".into(),
            latency: Duration::ZERO,
            custom_fields: Vec::new(),
            saas: false,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct NewMo {
    /// (product id, display name); a product from the demo catalogue when None.
    pub product: Option<(i64, String)>,
    pub qty: f64,
    /// "" means confirmed.
    pub state: String,
    pub origin: Option<String>,
    pub custom: Map<String, Value>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Read the request, then close the connection without an answer.
    Drop,
    /// HTTP 503 with an HTML body, as a proxy in front of a restarting Odoo answers.
    Status503,
    /// Answer only after this extra delay.
    Stall(Duration),
    /// HTTP 200 with a captive portal's HTML login page.
    Html200,
    /// The real answer, cut in the middle (with a Content-Length that says so): a proxy that
    /// gave up half-way.
    Truncated,
    /// HTTP 200 with a JSON body of this many bytes (a bug, a misrouted export), its length
    /// said up front.
    Huge(usize),
    /// The same, streamed chunked, with no Content-Length to refuse it by.
    HugeChunked(usize),
    /// The real answer, one byte every so often.
    Trickle(Duration),
}

#[derive(Clone, Debug)]
pub struct RequestRecord {
    pub path: String,
    pub model: Option<String>,
    pub method: Option<String>,
    pub status: u16,
    /// "json2", "jsonrpc", "web" or "other".
    pub api: &'static str,
}

/// A web session, keyed by its cookie value.
struct WebSession {
    created: Instant,
    /// Set once rotated: the old id works until this instant.
    dies_at: Option<Instant>,
}

pub(crate) struct State {
    config: SimOdooConfig,
    mos: BTreeMap<i64, Map<String, Value>>,
    pickings: BTreeMap<i64, Map<String, Value>>,
    next_mo: i64,
    next_picking: i64,
    sessions: HashMap<String, WebSession>,
    failed_logins: VecDeque<Instant>,
    locked_until: Option<Instant>,
    rotation: Duration,
    grace: Duration,
    down: bool,
    faults: VecDeque<Fault>,
    requests: Vec<RequestRecord>,
    random: u64,
    /// The chatter, work orders and time tracking.
    records: records::Records,
    /// Methods whose next call loses its answer ([`SimOdoo::lose_answer_to`]).
    lose_answer: Vec<String>,
    /// Methods whose next call is carried out late ([`SimOdoo::apply_late`]).
    late: Vec<(String, Duration)>,
    /// Late calls taken and not yet carried out.
    late_running: usize,
    /// How far ahead of the database's clock the `Date` header runs ([`SimOdoo::date_ahead`]).
    date_ahead: i64,
    /// Models the API user has no rights on ([`SimOdoo::deny`]).
    denied: Vec<String>,
    /// Values of fields a constraint refuses, with its message ([`SimOdoo::constrain`]).
    constraints: Vec<(String, Value, String)>,
    /// Custom fields and views made through the API.
    ir: ir::Ir,
    /// Users with API keys of their own ([`SimOdoo::add_api_user`]).
    users: Vec<rights::ApiUser>,
    /// Whether the user of the request being answered is an administrator.
    caller_admin: bool,
    /// Models the API user may read but not change ([`SimOdoo::deny_writes`]).
    read_only: Vec<String>,
    /// Odoo's log at WARNING and above ([`SimOdoo::log_warnings`]).
    warnings: Vec<String>,
}

pub struct SimOdoo {
    addr: SocketAddr,
    config: SimOdooConfig,
    state: Arc<Mutex<State>>,
    /// Stops the accept loop when fired (or dropped with the server).
    stop: tokio::sync::watch::Sender<bool>,
}

/// Products of Odoo's demo data, as `product_id` shows them.
const PRODUCTS: [(i64, &str); 5] = [
    (8, "[FURN_7800] Desk Combination"),
    (54, "[FURN_9666] Table"),
    (55, "[FURN_8522] Table Top"),
    (62, "[FURN_7023] Wood Panel"),
    (63, "[FURN_8621] Plastic Laminate"),
];

/// (bill of materials id, product id) of the demo data: a BoM shows as its product's name.
const BOMS: [(i64, i64); 5] = [(1, 8), (2, 54), (3, 55), (4, 63), (5, 62)];

impl SimOdoo {
    /// Binds 127.0.0.1 on a free port and serves on the current tokio runtime.
    pub async fn start(config: SimOdooConfig) -> std::io::Result<SimOdoo> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let state = Arc::new(Mutex::new(State {
            config: config.clone(),
            mos: BTreeMap::new(),
            pickings: BTreeMap::new(),
            next_mo: 1,
            next_picking: 1,
            sessions: HashMap::new(),
            failed_logins: VecDeque::new(),
            locked_until: None,
            rotation: Duration::from_secs(3 * 3600),
            grace: Duration::from_secs(120),
            down: false,
            faults: VecDeque::new(),
            requests: Vec::new(),
            random: seed as u64 | 1,
            records: records::Records::new(),
            lose_answer: Vec::new(),
            late: Vec::new(),
            late_running: 0,
            date_ahead: 0,
            denied: Vec::new(),
            constraints: Vec::new(),
            ir: ir::Ir::new(),
            users: Vec::new(),
            caller_admin: true,
            read_only: Vec::new(),
            warnings: Vec::new(),
        }));
        let (stop, stopped) = tokio::sync::watch::channel(false);
        tokio::spawn(http::serve(listener, state.clone(), stopped));
        Ok(SimOdoo {
            addr,
            config,
            state,
            stop,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn config(&self) -> &SimOdooConfig {
        &self.config
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates an MO as the ORM does: the next name in the sequence, dates stamped now.
    pub fn create_mo(&self, mo: NewMo) -> i64 {
        self.state().create_mo(mo)
    }

    /// `n` confirmed MOs with varied products and quantities; about half have an origin, with
    /// a delivery whose origin is that origin, and every fifth has a picking naming the MO.
    pub fn seed(&self, n: usize) -> Vec<i64> {
        let mut state = self.state();
        let start = state.next_mo;
        (0..n as i64)
            .map(|k| {
                let i = start + k;
                let product = PRODUCTS[(i as usize) % PRODUCTS.len()];
                let origin = (i % 2 == 0).then(|| format!("SO/{:04}", i / 2));
                let id = state.create_mo(NewMo {
                    product: Some((product.0, product.1.to_string())),
                    qty: (1 + i % 12) as f64,
                    origin: origin.clone(),
                    ..Default::default()
                });
                if let Some(origin) = origin {
                    state.create_picking(&origin);
                }
                if i % 5 == 0 {
                    let name = state.mos[&id]["name"].as_str().unwrap_or_default().to_string();
                    state.create_picking(&name);
                }
                id
            })
            .collect()
    }

    /// Writes fields as the ORM does, bumping `write_date`.
    pub fn write_mo(&self, id: i64, vals: Map<String, Value>) {
        let mut state = self.state();
        if let Some(mo) = state.mos.get_mut(&id) {
            mo.extend(vals);
            mo.insert("write_date".into(), json!(clock::format_odoo(clock::now_unix())));
        }
    }

    pub fn set_state(&self, id: i64, new_state: &str) {
        self.write_mo(id, Map::from_iter([("state".to_string(), json!(new_state))]));
    }

    /// Marks `qty_done` of an MO done with a backorder, as Odoo does: `WH/MO/00219` (qty 5)
    /// becomes `WH/MO/00219-001` (qty 2, done) and a new `WH/MO/00219-002` (qty 3) appears.
    pub fn backorder(&self, id: i64, qty_done: f64) -> i64 {
        self.state().backorder(id, qty_done)
    }

    /// A person marks MO `mo` done in Odoo's web client (`button_mark_done`, no context):
    /// what it answers.
    pub fn mark_done(&self, mo: i64) -> Value {
        let args = Map::from_iter([("ids".to_string(), json!([mo]))]);
        match orm::call(&mut self.state(), "mrp.production", "button_mark_done", &args) {
            Ok(answer) => answer.unwrap_or(Value::Null),
            Err(e) => json!({"error": e.message}),
        }
    }

    /// A work order on MO `mo` at work center `workcenter` (1 "Assembly Line 1", 2 "Drill
    /// Station 1"); None when there is no such MO.
    pub fn add_workorder(&self, mo: i64, workcenter: i64) -> Option<i64> {
        records::add_workorder(&mut self.state(), mo, workcenter, records::EXPECTED_MINUTES)
    }

    /// [`SimOdoo::add_workorder`], expecting `minutes` of work (`duration_expected`: what
    /// Odoo books as its time when the MO is marked done without any).
    pub fn add_workorder_expecting(&self, mo: i64, workcenter: i64, minutes: f64) -> Option<i64> {
        records::add_workorder(&mut self.state(), mo, workcenter, minutes)
    }

    /// A work order as `mrp.workorder` holds it (its `duration` the sum of its time tracking).
    pub fn workorder(&self, id: i64) -> Option<Value> {
        let state = self.state();
        state.records.workorders.get(&id).map(|w| Value::Object(w.clone()))
    }

    /// What Odoo wrote to its log at WARNING and above, oldest first.
    pub fn log_warnings(&self) -> Vec<String> {
        self.state().warnings.clone()
    }

    /// An MO's chatter messages, oldest first, as `mail.message` holds them.
    pub fn messages(&self, mo: i64) -> Vec<Value> {
        let state = self.state();
        let rows = state.records.messages.values();
        rows.filter(|m| m["res_id"] == mo)
            .map(|m| Value::Object(m.clone()))
            .collect()
    }

    /// Every `mrp.workcenter.productivity` record, oldest first.
    pub fn productivity(&self) -> Vec<Value> {
        let state = self.state();
        let rows = state.records.productivity.values();
        rows.map(|r| Value::Object(r.clone())).collect()
    }

    /// The next call of `method` (any model, any API) is carried out, and then its connection
    /// closed without an answer: an answer lost on its way back.
    pub fn lose_answer_to(&self, method: &str) {
        self.state().lose_answer.push(method.to_string());
    }

    /// The next call of `method` (any model, any API) is carried out only after `delay`, and
    /// then answered if anyone still waits: as an Odoo worker blocked on a lock goes on with a
    /// request whose caller has given up, and commits it later.
    pub fn apply_late(&self, method: &str, delay: Duration) {
        self.state().late.push((method.to_string(), delay));
    }

    /// The site's own constraint on `mrp.production`'s `field`: a write of `refused` into it
    /// is refused, whole, with `message` as a ValidationError (422 on JSON-2).
    pub fn constrain(&self, field: &str, refused: Value, message: &str) {
        let constraint = (field.to_string(), refused, message.to_string());
        self.state().constraints.push(constraint);
    }

    /// Answers carry a `Date` this many seconds ahead of the clock that stamps `write_date`:
    /// a proxy (or a host in a pool) whose clock runs ahead of the database's.
    pub fn date_ahead(&self, secs: i64) {
        self.state().date_ahead = secs;
    }

    /// An administrator adds a custom (`x_…`, char) field to `mrp.production`.
    pub fn add_custom_field(&self, name: &str) {
        self.state().config.custom_fields.push(name.to_string());
    }

    /// A user with an API key of its own (accepted as bearer on JSON-2, and with `login` on
    /// `/jsonrpc`): an administrator (Administration/Settings) or an internal user who may
    /// read, not change, models, fields and views. Its uid.
    pub fn add_api_user(&self, login: &str, api_key: &str, admin: bool) -> i64 {
        rights::add(&mut self.state(), login, api_key, admin)
    }

    /// The custom fields made through the API (`ir.model.fields` rows), oldest first.
    pub fn made_fields(&self) -> Vec<Value> {
        ir::made_fields(&self.state())
    }

    /// The views made through the API (`ir.ui.view` rows), oldest first.
    pub fn made_views(&self) -> Vec<Value> {
        views::made(&self.state())
    }

    /// The MO form's arch, with every view inheriting it applied, as `get_views` shows it.
    pub fn mo_form(&self) -> String {
        views::mo_form(&self.state())
    }

    /// Whether a late call ([`SimOdoo::apply_late`]) is still to be carried out.
    pub fn late_calls_running(&self) -> usize {
        self.state().late_running
    }

    /// The API user loses its rights on `model`: every call on it but `fields_get` (which
    /// checks no access) is refused with Odoo's AccessError, as for a user outside the
    /// model's groups (D16, E14).
    pub fn deny(&self, model: &str) {
        self.state().denied.push(model.to_string());
    }

    /// The API user is given every right back.
    pub fn grant_all(&self) {
        let mut state = self.state();
        state.denied.clear();
        state.read_only.clear();
    }

    /// The API user may read `model` but not write, create or delete its records.
    pub fn deny_writes(&self, model: &str) {
        self.state().read_only.push(model.to_string());
    }

    /// The API user is an internal user without Manufacturing (or Inventory) rights, as
    /// recorded on 19: `fields_get` answers and the chatter's messages can be read, but every
    /// manufacturing model is refused, posting on an MO included.
    pub fn without_manufacturing_rights(&self) {
        let mut state = self.state();
        for model in rights::MANUFACTURING {
            state.denied.push(model.to_string());
        }
    }

    pub fn delete_mo(&self, id: i64) {
        self.state().mos.remove(&id);
    }

    pub fn create_picking(&self, origin: &str) -> i64 {
        self.state().create_picking(origin)
    }

    /// The full record, as `search_read` without `fields` returns it.
    pub fn mo(&self, id: i64) -> Option<Value> {
        let state = self.state();
        state.mos.get(&id).map(|r| Value::Object(orm::with_computed(r)))
    }

    pub fn mo_ids(&self) -> Vec<i64> {
        self.state().mos.keys().copied().collect()
    }

    /// Moves `write_date` back without another write: a long transaction that committed late
    /// with the stamp of its start.
    pub fn backdate_write(&self, id: i64, secs: i64) {
        let mut state = self.state();
        if let Some(mo) = state.mos.get_mut(&id) {
            let now = mo["write_date"]
                .as_str()
                .and_then(clock::parse_odoo)
                .unwrap_or_else(clock::now_unix);
            mo.insert("write_date".into(), json!(clock::format_odoo(now - secs)));
        }
    }

    pub fn set_latency(&self, d: Duration) {
        self.state().config.latency = d;
    }

    /// While down, every connection is closed without an answer.
    pub fn set_down(&self, down: bool) {
        self.state().down = down;
    }

    pub fn fail_next(&self, n: usize, fault: Fault) {
        self.state().faults.extend(std::iter::repeat_n(fault, n));
    }

    /// A new API key; the old one stops working.
    pub fn set_api_key(&self, key: &str) {
        self.state().config.api_key = key.to_string();
    }

    /// Server-side session GC: every web session dies.
    pub fn expire_sessions(&self) {
        self.state().sessions.clear();
    }

    pub fn set_session_rotation(&self, d: Duration) {
        self.state().rotation = d;
    }

    pub fn set_rotation_grace(&self, d: Duration) {
        self.state().grace = d;
    }

    pub fn requests(&self) -> Vec<RequestRecord> {
        self.state().requests.clone()
    }

    pub fn reset_requests(&self) {
        self.state().requests.clear();
    }

    /// Stops accepting; the port is released.
    pub fn shutdown(&self) {
        self.stop.send_replace(true);
    }
}

impl Drop for SimOdoo {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl State {
    fn now() -> Value {
        json!(clock::format_odoo(clock::now_unix()))
    }

    fn create_mo(&mut self, mo: NewMo) -> i64 {
        let id = self.next_mo;
        self.next_mo += 1;
        let name = format!("WH/MO/{id:05}");
        let (product_id, product_name) = mo.product.unwrap_or_else(|| (PRODUCTS[0].0, PRODUCTS[0].1.to_string()));
        let state = if mo.state.is_empty() {
            "confirmed".to_string()
        } else {
            mo.state
        };
        let record = orm::new_mo(
            self,
            id,
            name,
            (product_id, product_name),
            mo.qty,
            state,
            mo.origin,
            mo.custom,
        );
        let record = ir::with_defaults(self, record);
        self.mos.insert(id, record);
        id
    }

    fn create_picking(&mut self, origin: &str) -> i64 {
        let id = self.next_picking;
        self.next_picking += 1;
        let now = State::now();
        let record = json!({
            "id": id, "name": format!("WH/OUT/{id:05}"), "origin": origin, "state": "assigned", "priority": "0",
            "create_date": now, "write_date": now, "scheduled_date": now,
            "picking_type_id": [2, "YourCompany: Delivery Orders"],
        });
        self.pickings
            .insert(id, record.as_object().cloned().unwrap_or_default());
        id
    }

    fn backorder(&mut self, id: i64, qty_done: f64) -> i64 {
        let Some(original) = self.mos.get(&id).cloned() else {
            return 0;
        };
        let name = original["name"].as_str().unwrap_or_default().to_string();
        let base = match name.rsplit_once('-') {
            Some((base, suffix)) if suffix.len() == 3 && suffix.bytes().all(|b| b.is_ascii_digit()) => base.to_string(),
            _ => name.clone(),
        };
        let used: u32 = self
            .mos
            .values()
            .filter_map(|m| m["name"].as_str()?.strip_prefix(&format!("{base}-"))?.parse().ok())
            .max()
            .unwrap_or(0);
        let now = State::now();
        let total = original["product_qty"].as_f64().unwrap_or(0.0);
        let (kept_name, next) = if name == base {
            (format!("{base}-001"), used.max(1) + 1)
        } else {
            (name, used + 1)
        };
        let new_id = self.next_mo;
        self.next_mo += 1;
        let mut backorder = original.clone();
        backorder.insert("id".into(), json!(new_id));
        backorder.insert("name".into(), json!(format!("{base}-{next:03}")));
        backorder.insert("product_qty".into(), json!(total - qty_done));
        backorder.insert("qty_producing".into(), json!(0.0));
        backorder.insert("state".into(), json!("confirmed"));
        backorder.insert("create_date".into(), now.clone());
        backorder.insert("write_date".into(), now.clone());
        backorder.insert("workorder_ids".into(), json!([]));
        self.mos.insert(new_id, backorder);
        // The backorder gets work orders of its own, for the same work centers.
        records::copy_workorders(self, id, new_id);
        let done = self.mos.get_mut(&id).expect("checked above");
        done.insert("name".into(), json!(kept_name));
        done.insert("product_qty".into(), json!(qty_done));
        done.insert("qty_producing".into(), json!(qty_done));
        done.insert("state".into(), json!("done"));
        done.insert("write_date".into(), now);
        new_id
    }

    /// A fresh session id: 84 URL-safe characters, like Odoo's.
    fn new_session_id(&mut self) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        (0..84)
            .map(|_| {
                // xorshift64: unguessable enough for a test server.
                self.random ^= self.random << 13;
                self.random ^= self.random >> 7;
                self.random ^= self.random << 17;
                ALPHABET[(self.random % 64) as usize] as char
            })
            .collect()
    }
}
