//! The wire: CodeIgniter's URI rules, the REST_Controller's argument merging and format
//! detection, the API methods of `api.php`, and the faults tests inject.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, Response};

use super::wire::{self, Cell, Row};
use super::{company_fields, Permit, SicantikFault, SicantikRequest, State, BASE_PATH, PHP_WARNING};
use crate::{Drip, Dropped};

type Shared = Arc<Mutex<State>>;

/// How long a `Timeout` fault holds a request.
const HOLD: Duration = Duration::from_secs(60);

pub(super) async fn serve(
    listener: tokio::net::TcpListener,
    state: Shared,
    stopped: tokio::sync::watch::Receiver<bool>,
) {
    crate::serve(listener, state, stopped, handle).await
}

const DROPPED: Dropped = Dropped("connection dropped by the simulated SICANTIK");

struct Answer {
    status: u16,
    content_type: &'static str,
    body: String,
    /// The REST_Controller sets CORS and no-cache headers only when it formats a payload.
    rest_headers: bool,
    endpoint: String,
}

/// PHP's default when nothing else is set.
const HTML: &str = "text/html; charset=UTF-8";

async fn handle(state: Shared, req: Request<Incoming>) -> Result<Response<Drip>, Dropped> {
    let at = Instant::now();
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(str::to_string);
    let accept = req
        .headers()
        .get_all(hyper::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(", ");
    let _ = req.into_body().collect().await;
    let lock = || state.lock().unwrap_or_else(|e| e.into_inner());
    let record = |status: u16, endpoint: String| SicantikRequest {
        path: path.clone(),
        query: query.clone(),
        method: method.clone(),
        endpoint,
        status,
        at,
    };
    let (latency, fault, down, warnings) = {
        let mut s = lock();
        let fault = if s.down { None } else { s.faults.pop_front() };
        (s.config.latency, fault, s.down, s.config.php_warnings)
    };
    if down {
        lock().requests.push(record(0, endpoint_of(&path)));
        return Err(DROPPED);
    }
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let answer = match fault {
        Some(SicantikFault::Timeout) => {
            lock().requests.push(record(0, endpoint_of(&path)));
            tokio::time::sleep(HOLD).await;
            return Err(DROPPED);
        }
        Some(SicantikFault::Status500) => Answer {
            status: 500,
            content_type: HTML,
            body: DATABASE_ERROR.to_string(),
            rest_headers: false,
            endpoint: endpoint_of(&path),
        },
        Some(SicantikFault::Garbage) => Answer {
            status: 200,
            content_type: HTML,
            body: FATAL_ERROR.to_string(),
            rest_headers: false,
            endpoint: endpoint_of(&path),
        },
        None => {
            let s = lock();
            let mut answer = route(&s, &method, &path, query.as_deref(), &accept);
            if warnings {
                answer.body.insert_str(0, PHP_WARNING);
            }
            answer
        }
    };
    lock().requests.push(record(answer.status, answer.endpoint));
    let mut response = Response::builder()
        .status(answer.status)
        .header("Server", "Apache/2.4.41 (Ubuntu)")
        .header("X-Powered-By", "PHP/5.6.40")
        .header("Content-Type", answer.content_type);
    if answer.rest_headers {
        response = response
            .header("access-control-allow-origin", "*")
            .header("Cache-Control", "no-cache, no-store, must-revalidate")
            .header("Pragma", "no-cache")
            .header("Expires", "0");
    }
    Ok(response.body(Drip::full(answer.body)).expect("valid response"))
}

/// CodeIgniter's page for a failed query (`db_debug` on).
const DATABASE_ERROR: &str = "<html>\n<head>\n<title>Database Error</title>\n</head>\n<body>\n\t<div id=\"content\">\n\
    \t\t<h1>A Database Error Occurred</h1>\n\t\t<p>Error Number: 2006</p><p>MySQL server has gone away</p>\n\t</div>\n\
    </body>\n</html>";

/// A PHP fatal error, answered with 200 as PHP does once output has started.
const FATAL_ERROR: &str = "<br />\n<b>Fatal error</b>:  Allowed memory size of 134217728 bytes exhausted \
    (tried to allocate 72 bytes) in /var/www/backoffice/system/database/drivers/mysql/mysql_result.php \
    on line 162<br />\n";

const APACHE_404: &str = "<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\">\n<html><head>\n\
    <title>404 Not Found</title>\n</head><body>\n<h1>Not Found</h1>\n\
    <p>The requested URL was not found on this server.</p>\n</body></html>\n";

/// The API methods `api.php` has (PHP method names are case-insensitive), by lowercase name.
const ENDPOINTS: [&str; 5] = [
    "jumlahPerizinan",
    "jenisperizinanlist",
    "listpermohonanterbit",
    "cekperizinan",
    "cekperizinanizin",
];

/// The API method a path calls, for the request records.
fn endpoint_of(path: &str) -> String {
    let Some(rest) = path
        .strip_prefix(BASE_PATH)
        .filter(|r| r.is_empty() || r.starts_with('/'))
    else {
        return String::new();
    };
    let decoded = wire::urldecode(rest, false);
    let segment = decoded.split('/').find(|s| !s.is_empty()).unwrap_or("index");
    canonical(segment).map_or_else(|| segment.to_string(), str::to_string)
}

fn canonical(segment: &str) -> Option<&'static str> {
    ENDPOINTS.into_iter().find(|e| e.eq_ignore_ascii_case(segment))
}

/// The formats the REST_Controller knows, in the order it tries them against `Accept`.
const FORMATS: [&str; 7] = ["xml", "rawxml", "json", "serialize", "php", "html", "csv"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Xml,
    RawXml,
    Json,
    /// serialize, php, html, csv, or a `format` the server does not know. The simulator renders
    /// none of these: it answers "Array", which is what PHP prints for an unknown format.
    Unrendered,
}

impl Format {
    fn named(name: &str) -> Format {
        match name.to_ascii_lowercase().as_str() {
            "xml" => Format::Xml,
            "rawxml" => Format::RawXml,
            "json" => Format::Json,
            _ => Format::Unrendered,
        }
    }
}

/// Arguments as the REST_Controller merges them: the query string first, then the path's
/// key/value segments (overriding in place). A key segment without a value is PHP's FALSE.
type Args = Vec<(String, Option<String>)>;

/// `_detect_format`: an extension on the last argument's value (stripped from it), then a
/// `format` argument, then the `Accept` header, then the default, XML.
fn detect_format(args: &mut Args, accept: &str) -> Format {
    if let Some((_, Some(last))) = args.last_mut() {
        for name in FORMATS {
            if let Some(stripped) = last.strip_suffix(&format!(".{name}")) {
                *last = stripped.to_string();
                return Format::named(name);
            }
        }
    }
    if let Some((_, value)) = args.iter().find(|(k, _)| k == "format") {
        return Format::named(value.as_deref().unwrap_or_default());
    }
    for name in FORMATS.into_iter().filter(|f| accept.contains(f)) {
        match name {
            // "If it is truly XML, it won't want any HTML", and the other way round.
            "xml" if accept.contains("html") => continue,
            "html" if accept.contains("xml") => continue,
            _ => return Format::named(name),
        }
    }
    Format::Xml
}

/// `$this->get($key)`: the argument through `xss_clean`, whose one effect on these values is a
/// `rawurldecode` (so `%2B` sent as `%252B` still arrives as `+`).
fn arg(args: &Args, key: &str) -> Option<String> {
    args.iter()
        .find(|(k, _)| k == key)
        .and_then(|(_, v)| v.as_deref())
        .map(|v| wire::urldecode(v, false))
}

/// PHP's truthiness of a string: "" and "0" are false.
fn truthy(v: &Option<String>) -> bool {
    v.as_deref().is_some_and(|v| !v.is_empty() && v != "0")
}

/// What an API method hands to `$this->response()`.
enum Outcome {
    /// 200 with the rows.
    Rows(Vec<Row>),
    /// `array('error' => …)` with 404.
    Error(&'static str),
    /// Empty data: `response()` sets 404 and writes nothing.
    Nothing,
}

fn route(s: &State, method: &str, path: &str, query: Option<&str>, accept: &str) -> Answer {
    let Some(rest) = path
        .strip_prefix(BASE_PATH)
        .filter(|r| r.is_empty() || r.starts_with('/'))
    else {
        return Answer {
            status: 404,
            content_type: "text/html; charset=iso-8859-1",
            body: APACHE_404.to_string(),
            rest_headers: false,
            endpoint: String::new(),
        };
    };
    // PATH_INFO reaches CodeIgniter decoded, and its segments must stay within
    // `permitted_uri_chars` (`a-z 0-9~.:_\-?=`): a base64 `+` or an encoded `%2F` cannot pass.
    let decoded = wire::urldecode(rest, false);
    let segments: Vec<&str> = decoded.split('/').filter(|s| !s.is_empty()).collect();
    let permitted = |c: char| c.is_ascii_alphanumeric() || " ~.:_-?=".contains(c);
    if segments.iter().any(|s| !s.chars().all(permitted)) {
        return Answer {
            status: 400,
            content_type: HTML,
            body: "The URI you submitted has disallowed characters.".to_string(),
            rest_headers: false,
            endpoint: endpoint_of(path),
        };
    }
    let called = segments.first().copied().unwrap_or("index");
    let mut args: Args = wire::parse_query(query.unwrap_or_default())
        .into_iter()
        .map(|(k, v)| (k, Some(v)))
        .collect();
    for pair in segments.get(1..).unwrap_or_default().chunks(2) {
        let value = pair.get(1).map(|v| v.to_string());
        match args.iter_mut().find(|(k, _)| k == pair[0]) {
            Some(slot) => slot.1 = value,
            None => args.push((pair[0].to_string(), value)),
        }
    }
    let format = detect_format(&mut args, accept);
    let endpoint = canonical(called);
    // Every request method but these four is taken as GET; only `_get` methods exist.
    let is_get = !matches!(method, "POST" | "PUT" | "DELETE");
    let outcome = match endpoint.filter(|_| is_get) {
        Some("jumlahPerizinan") => jumlah_perizinan(s),
        Some("jenisperizinanlist") => jenis_perizinan_list(s),
        Some("listpermohonanterbit") => list_permohonan_terbit(s, &args),
        Some("cekperizinan") => cek_perizinan(s, &args),
        Some("cekperizinanizin") => cek_perizinan_izin(s, &args),
        _ => Outcome::Error("Unknown method."),
    };
    let (status, rows) = match outcome {
        Outcome::Rows(rows) if !rows.is_empty() => (200, Some(Ok(rows))),
        Outcome::Rows(_) | Outcome::Nothing => (404, None),
        Outcome::Error(message) => (404, Some(Err(message))),
    };
    let (content_type, body) = match (rows, format) {
        (None, _) => (HTML, String::new()),
        (Some(_), Format::Unrendered) => (HTML, "Array".to_string()),
        (Some(Ok(rows)), Format::Json) => ("application/json", wire::php_json(&rows)),
        (Some(Err(message)), Format::Json) => ("application/json", wire::php_json_error(message)),
        (Some(Ok(rows)), xml) => ("application/xml", wire::php_xml(&rows, xml == Format::RawXml)),
        (Some(Err(message)), xml) => ("application/xml", wire::php_xml_error(message, xml == Format::RawXml)),
    };
    Answer {
        status,
        rest_headers: content_type != HTML,
        content_type,
        body,
        endpoint: endpoint.map_or_else(|| called.to_string(), str::to_string),
    }
}

/// `[{"jumlahPerizinan": <count of permit types>}]`, the count a number.
fn jumlah_perizinan(s: &State) -> Outcome {
    Outcome::Rows(vec![vec![("jumlahPerizinan", Cell::Int(s.types.len() as i64))]])
}

/// Permit types ordered by name; none is an empty 404.
fn jenis_perizinan_list(s: &State) -> Outcome {
    let mut types: Vec<_> = s.types.iter().collect();
    types.sort_by_key(|t| t.jenis_perizinan.to_lowercase());
    Outcome::Rows(
        types
            .into_iter()
            .map(|t| {
                vec![
                    ("id", Cell::Str(t.id.clone())),
                    ("jenis_perizinan", Cell::Str(t.jenis_perizinan.clone())),
                    ("kelompok_izin", Cell::Str(t.kelompok_izin.clone())),
                    ("v_hari", Cell::Str(t.v_hari.clone())),
                ]
            })
            .collect(),
    )
}

/// Issued permits, newest received first, `LIMIT offset, limit`, with a `num_rows` from a
/// count query with another condition (never the real total).
///
/// The source checks `!$this->get('limit') || !$this->get('offset')`, so "0" counts as
/// missing; but `response(NULL, 400)` does not stop the method, the query still runs and its
/// answer replaces the 404: offset 0 works and limit 0 finds nothing. A parameter that is
/// really absent (or not a number) breaks the SQL; the method dies after the 404 is set and
/// the answer is an empty 404.
fn list_permohonan_terbit(s: &State, args: &Args) -> Outcome {
    let number = |key: &str| {
        arg(args, key)
            .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|v| v.parse::<usize>().ok())
    };
    let (Some(limit), Some(offset)) = (number("limit"), number("offset")) else {
        return Outcome::Nothing;
    };
    let mut permits: Vec<&Permit> = s.permits.iter().collect();
    permits.sort_by(|a, b| {
        (&b.permit.d_terima_berkas, &b.permit.pendaftaran_id)
            .cmp(&(&a.permit.d_terima_berkas, &a.permit.pendaftaran_id))
    });
    let total = permits.len();
    let num_rows = (total + 13 + total / 7).to_string();
    let rows: Vec<Row> = permits
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|p| {
            let p = &p.permit;
            vec![
                ("pendaftaran_id", Cell::Str(p.pendaftaran_id.clone())),
                ("n_pemohon", Cell::Str(p.n_pemohon.clone())),
                ("n_perizinan", Cell::Str(p.n_perizinan.clone())),
                ("no_surat", Cell::Str(p.no_surat.clone())),
                ("num_rows", Cell::Str(num_rows.clone())),
            ]
        })
        .collect();
    if rows.is_empty() {
        Outcome::Error("Tidak ada data..")
    } else {
        Outcome::Rows(rows)
    }
}

/// `WHERE tmsk.base64 = '{$noizin}'`: the value is compared as text, never decoded. The query
/// INNER JOINs the company record, so a permit without one is "not registered".
fn cek_perizinan(s: &State, args: &Args) -> Outcome {
    let no_izin = arg(args, "no_izin");
    if !truthy(&no_izin) {
        return Outcome::Nothing;
    }
    let no_izin = no_izin.unwrap_or_default();
    detail(s.permits.iter().filter(|p| p.base64 == no_izin && p.permit.has_company))
}

/// `WHERE tmsk.no_surat = '{base64_decode($noizin)}'`, PHP's lenient decode.
///
/// Permits without a company record: the server source INNER JOINs `tmperusahaan` here too, so
/// the real endpoint misses them as `cekperizinan` does, and so does the simulator by default;
/// `SimSicantik::set_izin_requires_company(false)` makes the fallback find them.
fn cek_perizinan_izin(s: &State, args: &Args) -> Outcome {
    let no_izin = arg(args, "no_izin");
    if !truthy(&no_izin) {
        return Outcome::Nothing;
    }
    let no_surat = wire::base64_decode_lenient(&no_izin.unwrap_or_default());
    detail(s.permits.iter().filter(|p| {
        p.permit.no_surat.as_bytes() == no_surat.as_slice() && (p.permit.has_company || !s.izin_requires_company)
    }))
}

/// The 18 columns of the detail queries, in their SELECT order.
fn detail<'a>(found: impl Iterator<Item = &'a Permit>) -> Outcome {
    let rows: Vec<Row> = found
        .map(|p| {
            let p = &p.permit;
            let text = |s: &String| Cell::Str(s.clone());
            let mut row = vec![
                ("pendaftaran_id", text(&p.pendaftaran_id)),
                ("n_pemohon", text(&p.n_pemohon)),
                ("n_perizinan", text(&p.n_perizinan)),
                ("no_surat", text(&p.no_surat)),
                ("d_terima_berkas", text(&p.d_terima_berkas)),
                ("d_berlaku_izin", p.d_berlaku_izin.as_ref().map_or(Cell::Null, text)),
                ("a_pemohon", text(&p.a_pemohon)),
                ("telp_pemohon", text(&p.telp_pemohon)),
                ("tgl_surat", text(&p.tgl_surat)),
            ];
            row.extend(company_fields(p));
            row
        })
        .collect();
    if rows.is_empty() {
        Outcome::Error("No Izin tidak Terdaftar!")
    } else {
        Outcome::Rows(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(query: &str, path: &[&str]) -> Args {
        let mut args: Args = wire::parse_query(query)
            .into_iter()
            .map(|(k, v)| (k, Some(v)))
            .collect();
        for pair in path.chunks(2) {
            args.push((pair[0].to_string(), pair.get(1).map(|v| v.to_string())));
        }
        args
    }

    #[test]
    fn format_detection_follows_the_rest_controller() {
        let mut a = args("", &["limit", "5", "offset", "0.json"]);
        assert_eq!(detect_format(&mut a, ""), Format::Json);
        assert_eq!(a[1].1.as_deref(), Some("0"), "the extension is stripped from the value");
        assert_eq!(
            detect_format(&mut args("format=json", &[]), "application/xml"),
            Format::Json
        );
        assert_eq!(detect_format(&mut args("", &[]), "application/json"), Format::Json);
        assert_eq!(detect_format(&mut args("", &[]), "*/*"), Format::Xml);
        assert_eq!(detect_format(&mut args("", &[]), ""), Format::Xml);
        // A browser's Accept names html and xml: neither wins, the default does.
        let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
        assert_eq!(detect_format(&mut args("", &[]), browser), Format::Xml);
        assert_eq!(
            detect_format(&mut args("", &[]), "application/xml, application/json"),
            Format::Xml
        );
        assert_eq!(detect_format(&mut args("format=yaml", &[]), ""), Format::Unrendered);
    }
}
