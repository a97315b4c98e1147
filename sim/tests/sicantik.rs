//! The simulated SICANTIK is faithful to the real backoffice API: every answer here is checked
//! against `shared/protocols/sicantik.md` or, where it is more precise, against the server's
//! own source (CodeIgniter 1.7's REST_Controller and `modules/api/controllers/api.php`). The
//! SICANTIK client is tested against this simulator, so a difference here would hide a bug
//! there.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use linegate_sim::sicantik::{base64_encode, NewPermit, SicantikFault, SimSicantik, SimSicantikConfig};
use reqwest::StatusCode;
use serde_json::Value;

/// The 18 columns of `cekperizinan`, in order.
const DETAIL_FIELDS: [&str; 18] = [
    "pendaftaran_id",
    "n_pemohon",
    "n_perizinan",
    "no_surat",
    "d_terima_berkas",
    "d_berlaku_izin",
    "a_pemohon",
    "telp_pemohon",
    "tgl_surat",
    "n_perusahaan",
    "npwp",
    "a_perusahaan",
    "d_tgl_berdiri",
    "i_telp_perusahaan",
    "n_kecamatan",
    "n_kabupaten",
    "n_propinsi",
    "n_kelurahan",
];

const XML_HEAD: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n";

async fn start(config: SimSicantikConfig) -> SimSicantik {
    SimSicantik::start(config).await.expect("the simulated SICANTIK starts")
}

async fn sicantik() -> SimSicantik {
    start(SimSicantikConfig::default()).await
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

struct Raw {
    status: StatusCode,
    content_type: String,
    cors: bool,
    text: String,
}

impl Raw {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    fn rows(&self) -> Vec<serde_json::Map<String, Value>> {
        assert_eq!(self.status, StatusCode::OK, "{}", self.text);
        let rows = self.json();
        let rows = rows.as_array().unwrap_or_else(|| panic!("an array: {}", self.text));
        rows.iter().map(|r| r.as_object().expect("objects").clone()).collect()
    }

    fn ids(&self) -> Vec<String> {
        self.rows()
            .iter()
            .map(|r| r["pendaftaran_id"].as_str().expect("a string id").to_string())
            .collect()
    }
}

async fn send(request: reqwest::RequestBuilder) -> Raw {
    let response = request.send().await.expect("the simulated SICANTIK answers");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let content_type = header("content-type").unwrap_or_default();
    let cors = header("access-control-allow-origin").as_deref() == Some("*");
    Raw {
        status: response.status(),
        content_type,
        cors,
        text: response.text().await.expect("a body"),
    }
}

/// GET `<base><path_and_query>` as written (no re-encoding), without asking for a format.
async fn get(sim: &SimSicantik, path_and_query: &str) -> Raw {
    send(client().get(format!("{}{path_and_query}", sim.url()))).await
}

/// GET asking for JSON the way a client should: `Accept: application/json`.
async fn get_json(sim: &SimSicantik, path_and_query: &str) -> Raw {
    send(
        client()
            .get(format!("{}{path_and_query}", sim.url()))
            .header("Accept", "application/json"),
    )
    .await
}

/// `cekperizinan` or `cekperizinanizin` with `no_izin` URL-encoded by the client.
async fn detail(sim: &SimSicantik, endpoint: &str, no_izin: &str) -> Raw {
    send(
        client()
            .get(format!("{}/{endpoint}?no_izin={}", sim.url(), url_encode(no_izin)))
            .header("Accept", "application/json"),
    )
    .await
}

/// Percent-encodes everything but RFC 3986's unreserved characters, as a client must for a
/// base64 value (`+`, `/`, `=`).
fn url_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn assert_error(raw: &Raw, message: &str) {
    assert_eq!(raw.status, StatusCode::NOT_FOUND, "{}", raw.text);
    assert_eq!(raw.content_type, "application/json");
    assert_eq!(raw.text, format!("{{\"error\":\"{message}\"}}"));
}

fn assert_empty_404(raw: &Raw) {
    assert_eq!(raw.status, StatusCode::NOT_FOUND);
    assert_eq!(raw.text, "", "an empty body");
    assert!(raw.content_type.starts_with("text/html"), "{}", raw.content_type);
    assert!(!raw.cors, "no payload, no REST headers");
}

fn is_date(v: &Value) -> bool {
    let Some(s) = v.as_str() else { return false };
    let b = s.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        })
}

fn permit(id: &str, received: &str, no_surat: &str) -> NewPermit {
    NewPermit {
        pendaftaran_id: id.to_string(),
        n_pemohon: "Afira Arva".to_string(),
        n_perizinan: "IZIN GANGGUAN USAHA (HO)".to_string(),
        no_surat: no_surat.to_string(),
        d_terima_berkas: received.to_string(),
        d_berlaku_izin: Some("2027-08-24".to_string()),
        tgl_surat: received.to_string(),
        telp_pemohon: "0812-3456-789".to_string(),
        a_pemohon: "Jl. Veteran No. 12, Kabanjahe".to_string(),
        has_company: true,
    }
}

/// A permit number whose standard base64 contains `+` (and so needs URL-encoding). ASCII text
/// never encodes to `+` or `/` unless it holds `>`, `?` or `~`; a non-ASCII character does,
/// here an en dash pasted from a word processor.
fn number_with_plus_in_base64() -> String {
    (0..10_000)
        .map(|n| format!("503/{n}\u{2013}DPMPPTSP-DS/2026"))
        .find(|s| base64_encode(s.as_bytes()).contains('+'))
        .expect("some number encodes with a +")
}

#[tokio::test]
async fn xml_is_the_default_and_json_comes_by_each_of_the_four_ways() {
    // Given a server with the ten permit types and two permits
    let sim = sicantik().await;
    sim.add_permit(permit(
        "0003200001082017",
        "2017-08-24",
        "503.530.570/0110/DPMPPTSP-DS/08/2017/KK",
    ));
    sim.add_permit(permit(
        "0003210002082017",
        "2017-08-25",
        "503.530.570/0111/DPMPPTSP-DS/08/2017/KK",
    ));

    // When the probe is called without asking for a format
    let xml = get(&sim, "/jumlahPerizinan").await;
    // Then the answer is SimpleXML's, the count a bare number
    assert_eq!(xml.status, StatusCode::OK);
    assert_eq!(xml.content_type, "application/xml");
    assert!(xml.cors);
    assert_eq!(
        xml.text,
        format!("{XML_HEAD}<xml><item><jumlahPerizinan>10</jumlahPerizinan></item></xml>\n")
    );

    // When JSON is asked for by the Accept header, a /format/json segment or ?format=json
    for answer in [
        get_json(&sim, "/jumlahPerizinan").await,
        get(&sim, "/jumlahPerizinan/format/json").await,
        get(&sim, "/jumlahPerizinan?format=json").await,
    ] {
        // Then the count comes as a number in a one-element array
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.content_type, "application/json");
        assert_eq!(answer.text, r#"[{"jumlahPerizinan":10}]"#);
    }

    // When the last argument's value carries a .json suffix
    let suffixed = get(&sim, "/listpermohonanterbit/limit/5/offset/0.json").await;
    // Then JSON comes back, and the suffix is not part of the offset
    assert_eq!(suffixed.content_type, "application/json");
    assert_eq!(suffixed.ids(), ["0003210002082017", "0003200001082017"]);
    let suffixed_query = get(&sim, "/listpermohonanterbit?limit=1&offset=1.json").await;
    assert_eq!(suffixed_query.ids(), ["0003200001082017"]);

    // When the suffix sits on the method segment of a call without arguments
    let on_method = get(&sim, "/jumlahPerizinan.json").await;
    // Then, as in the server source (the suffix is looked for on argument values only), there is
    // no such method, and the error comes in the default format
    assert_eq!(on_method.status, StatusCode::NOT_FOUND);
    assert_eq!(
        on_method.text,
        format!("{XML_HEAD}<xml><error>Unknown method.</error></xml>\n")
    );

    // When a browser-like Accept names both html and xml
    let browser = send(client().get(format!("{}/jumlahPerizinan", sim.url())).header(
        "Accept",
        "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    ))
    .await;
    // Then the default, XML, wins; and a format argument beats the Accept header
    assert_eq!(browser.content_type, "application/xml");
    let both = send(
        client()
            .get(format!("{}/jumlahPerizinan?format=xml", sim.url()))
            .header("Accept", "application/json"),
    )
    .await;
    assert_eq!(both.content_type, "application/xml");
}

#[tokio::test]
async fn every_value_is_a_string_or_null_written_by_php_json_encode() {
    // Given a seeded server
    let sim = sicantik().await;
    let permits = sim.seed(60);
    let with_company = permits
        .iter()
        .find(|p| p.has_company && !p.n_pemohon.is_empty() && p.n_pemohon != "0")
        .expect("a regular permit");

    // When the detail of a permit is fetched as JSON
    let raw = detail(&sim, "cekperizinan", &base64_encode(with_company.no_surat.as_bytes())).await;
    // Then it is an array of one object with the 18 columns, in the SELECT's order
    let rows = raw.rows();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    let keys: Vec<&str> = raw.text[2..]
        .split(",\"")
        .map(|part| part.trim_start_matches('"').split('"').next().unwrap_or_default())
        .collect();
    assert_eq!(keys, DETAIL_FIELDS, "{}", raw.text);
    // and every value is a string or null, the dates YYYY-MM-DD
    assert!(row.values().all(|v| v.is_string() || v.is_null()), "{row:?}");
    for date in ["d_terima_berkas", "d_berlaku_izin", "tgl_surat"] {
        assert!(is_date(&row[date]), "{date}: {}", row[date]);
    }
    assert_eq!(row["pendaftaran_id"], with_company.pendaftaran_id.as_str());
    assert_eq!(row["no_surat"], with_company.no_surat.as_str());
    assert_eq!(
        row["d_berlaku_izin"],
        with_company.d_berlaku_izin.as_deref().expect("seeded")
    );
    assert_eq!(row["telp_pemohon"], with_company.telp_pemohon.as_str());
    // and `/` is escaped as PHP's json_encode does
    assert!(
        raw.text.contains(&with_company.no_surat.replace('/', "\\/")),
        "{}",
        raw.text
    );

    // When a listing page is fetched
    let page = get_json(&sim, "/listpermohonanterbit/limit/100/offset/0").await;
    // Then every value is a string, and num_rows is not the total
    let rows = page.rows();
    assert_eq!(rows.len(), 60);
    for row in &rows {
        let keys: Vec<&str> = row.keys().map(String::as_str).collect();
        assert_eq!(
            keys.iter().copied().collect::<BTreeSet<_>>(),
            BTreeSet::from(["pendaftaran_id", "n_pemohon", "n_perizinan", "no_surat", "num_rows"])
        );
        assert!(row.values().all(Value::is_string), "{row:?}");
        let id = row["pendaftaran_id"].as_str().expect("a string");
        assert!(id.len() == 16 && id.bytes().all(|b| b.is_ascii_digit()), "{id}");
    }
    assert_ne!(rows[0]["num_rows"], "60", "num_rows comes from another count");
    // and junk rows are listed like the others
    assert!(rows.iter().any(|r| r["n_pemohon"] == "" || r["n_pemohon"] == "0"));
}

#[tokio::test]
async fn permit_types_are_ordered_by_name_and_none_is_an_empty_404() {
    // Given the default permit types
    let sim = sicantik().await;

    // When they are listed
    let rows = get_json(&sim, "/jenisperizinanlist").await.rows();
    // Then all come, ordered by name, with the four string fields
    let names: Vec<&str> = rows
        .iter()
        .map(|r| r["jenis_perizinan"].as_str().expect("a name"))
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert_eq!(rows.len(), sim.permit_types().len());
    for row in &rows {
        let keys: BTreeSet<&str> = row.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            BTreeSet::from(["id", "jenis_perizinan", "kelompok_izin", "v_hari"])
        );
        assert!(row.values().all(Value::is_string));
    }

    // When there are none
    sim.set_permit_types(Vec::new());
    // Then the list is an empty-bodied 404, and the count a 0
    assert_empty_404(&get_json(&sim, "/jenisperizinanlist").await);
    assert_eq!(
        get_json(&sim, "/jumlahPerizinan").await.text,
        r#"[{"jumlahPerizinan":0}]"#
    );
}

#[tokio::test]
async fn path_and_query_parameters_are_merged() {
    // Given five permits received on five days
    let sim = sicantik().await;
    for day in 1..=5 {
        sim.add_permit(permit(
            &format!("00032{day}0001082017"),
            &format!("2017-08-0{day}"),
            &format!("503.530.570/011{day}/DPMPPTSP-DS/08/2017/KK"),
        ));
    }

    // When limit and offset come as path segments, as a query, or one of each
    let path = get_json(&sim, "/listpermohonanterbit/limit/2/offset/1").await.ids();
    let query = get_json(&sim, "/listpermohonanterbit?limit=2&offset=1").await.ids();
    let mixed = get_json(&sim, "/listpermohonanterbit/limit/2?offset=1").await.ids();
    // Then they are the same page
    assert_eq!(path, ["0003240001082017", "0003230001082017"]);
    assert_eq!(query, path);
    assert_eq!(mixed, path);

    // When both give the same parameter
    let both = get_json(&sim, "/listpermohonanterbit/limit/1?limit=4&offset=0")
        .await
        .ids();
    // Then the path segment wins
    assert_eq!(both, ["0003250001082017"]);
}

#[tokio::test]
async fn paging_is_newest_first_and_past_the_end_is_tidak_ada_data() {
    // Given 25 seeded permits
    let sim = sicantik().await;
    let permits = sim.seed(25);

    // When they are paged through 10 at a time until the server says there is no more
    let mut seen = Vec::new();
    let mut offset = 0;
    let last = loop {
        let page = get_json(&sim, &format!("/listpermohonanterbit/limit/10/offset/{offset}")).await;
        if page.status != StatusCode::OK {
            break page;
        }
        seen.extend(page.ids());
        offset += 10;
    };
    // Then the end is a 404 with "Tidak ada data..", after 10 + 10 + 5 rows
    assert_error(&last, "Tidak ada data..");
    assert_eq!(offset, 30);
    // and every permit came once, newest received first (ties by id, descending)
    let mut expected: Vec<&NewPermit> = permits.iter().collect();
    expected.sort_by(|a, b| (&b.d_terima_berkas, &b.pendaftaran_id).cmp(&(&a.d_terima_berkas, &a.pendaftaran_id)));
    let expected: Vec<String> = expected.iter().map(|p| p.pendaftaran_id.clone()).collect();
    assert_eq!(seen, expected);

    // When a required parameter is missing, empty or not a number
    for path in [
        "/listpermohonanterbit/limit/10",
        "/listpermohonanterbit?offset=0",
        "/listpermohonanterbit/limit/10/offset",
        "/listpermohonanterbit?limit=10&offset=",
        "/listpermohonanterbit?limit=ten&offset=0",
        "/listpermohonanterbit",
    ] {
        // Then the answer is a 404 without a body
        assert_empty_404(&get_json(&sim, path).await);
    }

    // When the limit is 0 (PHP's "0" is false, but the query still runs)
    // Then nothing is found
    assert_error(
        &get_json(&sim, "/listpermohonanterbit/limit/0/offset/0").await,
        "Tidak ada data..",
    );
    // and past-the-end errors follow the requested format too
    let xml = get(&sim, "/listpermohonanterbit/limit/10/offset/100").await;
    assert_eq!(xml.status, StatusCode::NOT_FOUND);
    assert_eq!(
        xml.text,
        format!("{XML_HEAD}<xml><error>Tidak ada data..</error></xml>\n")
    );
}

#[tokio::test]
async fn a_permit_issued_between_two_pages_shifts_older_rows() {
    // Given six permits received on six days
    let sim = sicantik().await;
    for day in 1..=6 {
        sim.add_permit(permit(
            &format!("00032{day}0001082017"),
            &format!("2017-08-0{day}"),
            &format!("503.530.570/011{day}/DPMPPTSP-DS/08/2017/KK"),
        ));
    }

    // When the first page is read, a permit is issued, then the second page is read
    let first = get_json(&sim, "/listpermohonanterbit/limit/3/offset/0").await.ids();
    sim.add_permit(permit(
        "0003300001092017",
        "2017-09-01",
        "503.530.570/0120/DPMPPTSP-DS/09/2017/KK",
    ));
    let second = get_json(&sim, "/listpermohonanterbit/limit/3/offset/3").await.ids();

    // Then the oldest row of the first page shows again at the top of the second
    assert_eq!(first, ["0003260001082017", "0003250001082017", "0003240001082017"]);
    assert_eq!(second, ["0003240001082017", "0003230001082017", "0003220001082017"]);
    // and the oldest permit moved to a third page
    let third = get_json(&sim, "/listpermohonanterbit/limit/3/offset/6").await.ids();
    assert_eq!(third, ["0003210001082017"]);
}

#[tokio::test]
async fn cekperizinan_matches_the_url_encoded_base64_as_stored() {
    // Given a permit whose number's base64 contains a +
    let sim = sicantik().await;
    let number = number_with_plus_in_base64();
    let encoded = base64_encode(number.as_bytes());
    sim.add_permit(permit("0003200001082026", "2026-08-03", &number));

    // When the base64 is sent URL-encoded in the query
    let found = detail(&sim, "cekperizinan", &encoded).await;
    // Then the permit is found
    assert_eq!(found.ids(), ["0003200001082026"]);
    let requests = sim.requests();
    let last = requests.last().expect("recorded");
    assert_eq!(last.endpoint, "cekperizinan");
    assert!(
        last.query.as_deref().unwrap_or_default().contains("%2B"),
        "{:?}",
        last.query
    );

    // When the + is sent raw (the server's parse_str reads it as a space)
    let raw_plus = get_json(&sim, &format!("/cekperizinan?no_izin={encoded}")).await;
    // Then nothing matches, on either endpoint (base64_decode skips the space)
    assert_error(&raw_plus, "No Izin tidak Terdaftar!");
    assert_error(
        &get_json(&sim, &format!("/cekperizinanizin?no_izin={encoded}")).await,
        "No Izin tidak Terdaftar!",
    );

    // When the number itself, an unknown base64 or a lowercase variant is sent
    for no_izin in [number.clone(), base64_encode(b"503/9999/XX"), encoded.to_lowercase()] {
        // Then the answer is "No Izin tidak Terdaftar!"
        assert_error(
            &detail(&sim, "cekperizinan", &no_izin).await,
            "No Izin tidak Terdaftar!",
        );
    }

    // When an ASCII number's base64 (no `+` or `/`, only `=` padding) is sent unencoded
    let ascii = "503.530.570/0110/DPMPPTSP-DS/08/2017/K";
    sim.add_permit(permit("0003200002082017", "2017-08-24", ascii));
    let padded = base64_encode(ascii.as_bytes());
    assert!(padded.ends_with('=') && !padded.contains(['+', '/']), "{padded}");
    // Then it matches: parse_str splits a pair at its first `=` only
    assert_eq!(
        get_json(&sim, &format!("/cekperizinan?no_izin={padded}")).await.ids(),
        ["0003200002082017"]
    );

    // When the value is encoded twice (xss_clean's rawurldecode undoes the second encoding)
    let twice = encoded
        .replace('+', "%252B")
        .replace('/', "%252F")
        .replace('=', "%253D");
    // Then it still matches
    assert_eq!(
        get_json(&sim, &format!("/cekperizinan?no_izin={twice}")).await.ids(),
        ["0003200001082026"]
    );

    // When the base64 is sent as a path segment
    let segment = get_json(&sim, &format!("/cekperizinan/no_izin/{}", encoded.replace('/', "%2F"))).await;
    // Then CodeIgniter refuses the characters
    assert_eq!(segment.status, StatusCode::BAD_REQUEST);
    assert_eq!(segment.text, "The URI you submitted has disallowed characters.");

    // When no_izin is missing or empty
    for path in ["/cekperizinan", "/cekperizinan?no_izin=", "/cekperizinanizin"] {
        // Then the answer is a 404 without a body
        assert_empty_404(&get_json(&sim, path).await);
    }

    // When cekperizinanizin gets the same base64
    let izin = detail(&sim, "cekperizinanizin", &encoded).await;
    // Then it decodes it and finds the permit by its number
    assert_eq!(izin.ids(), ["0003200001082026"]);
    assert_eq!(sim.requests().last().expect("recorded").endpoint, "cekperizinanizin");
}

#[tokio::test]
async fn permits_without_company_are_listed_but_missed_by_cekperizinan() {
    // Given a permit without a company record
    let sim = sicantik().await;
    let number = "503.445/0042/DPMPPTSP-DS/03/2026/KK";
    sim.add_permit(NewPermit {
        has_company: false,
        ..permit("0004000042032026", "2026-03-02", number)
    });
    let encoded = base64_encode(number.as_bytes());

    // When it is listed and looked up
    let listed = get_json(&sim, "/listpermohonanterbit/limit/10/offset/0").await.ids();
    let cek = detail(&sim, "cekperizinan", &encoded).await;
    let izin = detail(&sim, "cekperizinanizin", &encoded).await;

    // Then it is listed, and both endpoints say it is not registered: the server's source
    // joins the company table in both queries
    assert_eq!(listed, ["0004000042032026"]);
    assert_error(&cek, "No Izin tidak Terdaftar!");
    assert_error(&izin, "No Izin tidak Terdaftar!");

    // When the simulator is told to find it on the fallback anyway
    sim.set_izin_requires_company(false);
    // Then cekperizinanizin answers with its 18 fields
    let rows = detail(&sim, "cekperizinanizin", &encoded).await.rows();
    assert_eq!(rows[0]["pendaftaran_id"], "0004000042032026");
    assert_eq!(rows[0].len(), 18);
}

#[tokio::test]
async fn a_stale_base64_column_is_missed_by_cekperizinan_and_found_by_cekperizinanizin() {
    // Given a permit whose stored base64 column was never filled
    let sim = sicantik().await;
    let number = "503.640/0007/DPMPPTSP-DS/01/2025/KK";
    sim.add_permit(permit("0005000007012025", "2025-01-06", number));
    sim.set_base64_column("0005000007012025", None);
    let encoded = base64_encode(number.as_bytes());

    // When it is looked up by both endpoints
    // Then only the one that decodes finds it
    assert_error(
        &detail(&sim, "cekperizinan", &encoded).await,
        "No Izin tidak Terdaftar!",
    );
    assert_eq!(
        detail(&sim, "cekperizinanizin", &encoded).await.ids(),
        ["0005000007012025"]
    );
}

#[tokio::test]
async fn a_renewal_changes_the_expiry_cekperizinan_reports() {
    // Given a permit expiring in 2027
    let sim = sicantik().await;
    let number = "503.530.570/0110/DPMPPTSP-DS/08/2017/KK";
    sim.add_permit(permit("0003200001082017", "2017-08-24", number));
    let encoded = base64_encode(number.as_bytes());
    assert_eq!(
        detail(&sim, "cekperizinan", &encoded).await.rows()[0]["d_berlaku_izin"],
        "2027-08-24"
    );

    // When it is renewed, then its expiry cleared
    sim.set_expiry("0003200001082017", Some("2030-08-24"));
    let renewed = detail(&sim, "cekperizinan", &encoded).await.rows();
    sim.set_expiry("0003200001082017", None);
    let cleared = detail(&sim, "cekperizinan", &encoded).await;

    // Then the detail shows the new date, then null (an empty element in XML)
    assert_eq!(renewed[0]["d_berlaku_izin"], "2030-08-24");
    assert_eq!(cleared.rows()[0]["d_berlaku_izin"], Value::Null);
    assert!(cleared.text.contains(r#""d_berlaku_izin":null"#));
    let xml = get(&sim, &format!("/cekperizinan?no_izin={}", encoded.replace('=', "%3D"))).await;
    assert!(xml.text.contains("<d_berlaku_izin/>"), "{}", xml.text);
}

#[tokio::test]
async fn xml_escapes_values_and_names_elements_after_the_fields() {
    // Given a permit whose applicant's name holds & and <, and é
    let sim = sicantik().await;
    let number = "503.556/0033/DPMPPTSP-DS/05/2026/KK";
    sim.add_permit(NewPermit {
        n_pemohon: "Toko A & B <Cabang> \"Baru\" José".to_string(),
        ..permit("0003300033052026", "2026-05-04", number)
    });
    let no_izin = base64_encode(number.as_bytes()).replace('=', "%3D");

    // When the detail is read as XML
    let xml = get(&sim, &format!("/cekperizinan?no_izin={no_izin}")).await;

    // Then the value is HTML-entity-encoded (quotes left alone)
    assert_eq!(xml.status, StatusCode::OK);
    assert_eq!(xml.content_type, "application/xml");
    assert!(
        xml.text
            .contains("<n_pemohon>Toko A &amp; B &lt;Cabang&gt; \"Baru\" Jos&eacute;</n_pemohon>"),
        "{}",
        xml.text
    );
    // and the body is one <item> in <xml>, its elements the 18 fields in order
    let body = xml
        .text
        .strip_prefix(&format!("{XML_HEAD}<xml><item>"))
        .and_then(|b| b.strip_suffix("</item></xml>\n"))
        .unwrap_or_else(|| panic!("{}", xml.text));
    let names: Vec<&str> = body
        .split('<')
        .filter(|t| !t.is_empty() && !t.starts_with('/'))
        .map(|t| t.trim_end_matches('>').split(['>', '/']).next().unwrap_or_default())
        .collect();
    assert_eq!(names, DETAIL_FIELDS);
    assert!(names.iter().all(|n| !n.bytes().any(|b| b.is_ascii_digit())));

    // When the same is read as JSON
    let json = get_json(&sim, &format!("/cekperizinan?no_izin={no_izin}")).await;
    // Then the value is plain, non-ASCII as \u escapes
    assert_eq!(json.rows()[0]["n_pemohon"], "Toko A & B <Cabang> \"Baru\" José");
    assert!(json.text.contains("Jos\\u00e9"));

    // When the listing is read as XML
    let listing = get(&sim, "/listpermohonanterbit/limit/1/offset/0").await;
    // Then it is one <item> with the five fields
    assert!(listing.text.starts_with(&format!(
        "{XML_HEAD}<xml><item><pendaftaran_id>0003300033052026</pendaftaran_id><n_pemohon>Toko A &amp; B"
    )));
    assert!(
        listing.text.ends_with("<num_rows>14</num_rows></item></xml>\n"),
        "{}",
        listing.text
    );
}

#[tokio::test]
async fn unknown_methods_answer_unknown_method() {
    // Given a server
    let sim = sicantik().await;

    // When an unknown method, a known one by POST, or the bare base is called
    let unknown = get_json(&sim, "/listpermohonan/limit/10/offset/0").await;
    let post = send(
        client()
            .post(format!("{}/jumlahPerizinan", sim.url()))
            .header("Accept", "application/json"),
    )
    .await;
    let bare = get_json(&sim, "").await;
    // Then each is a 404 "Unknown method."
    for answer in [&unknown, &post, &bare] {
        assert_error(answer, "Unknown method.");
    }
    // and the method names are case-insensitive, as PHP's are
    assert_eq!(get_json(&sim, "/JUMLAHPERIZINAN").await.status, StatusCode::OK);
    let endpoints: Vec<String> = sim.requests().iter().map(|r| r.endpoint.clone()).collect();
    assert_eq!(
        endpoints,
        ["listpermohonan", "jumlahPerizinan", "index", "jumlahPerizinan"]
    );
    assert_eq!(sim.requests()[1].method, "POST");

    // When a path outside the API is called
    let outside = send(client().get(sim.url().replace("/backoffice/api", "/api/jumlahPerizinan"))).await;
    // Then the web server answers its own 404 page
    assert_eq!(outside.status, StatusCode::NOT_FOUND);
    assert!(outside.text.contains("<h1>Not Found</h1>"));
}

#[tokio::test]
async fn php_warnings_are_prepended_to_every_body() {
    // Given a misconfigured server and a permit
    let sim = start(SimSicantikConfig {
        php_warnings: true,
        ..Default::default()
    })
    .await;
    sim.add_permit(permit(
        "0003200001082017",
        "2017-08-24",
        "503.530.570/0110/DPMPPTSP-DS/08/2017/KK",
    ));
    let warning = "<br />\n<b>Warning</b>:  Undefined variable $x in /var/www/api.php on line 42<br />\n";

    // When it answers JSON, XML, an error and an empty 404
    let json = get_json(&sim, "/listpermohonanterbit/limit/1/offset/0").await;
    let xml = get(&sim, "/jumlahPerizinan").await;
    let error = get_json(&sim, "/listpermohonanterbit/limit/1/offset/1").await;
    let empty = get_json(&sim, "/cekperizinan").await;

    // Then the warning comes first in each, and the JSON no longer parses
    assert_eq!(json.status, StatusCode::OK);
    assert!(
        json.text.starts_with(&format!("{warning}[{{\"pendaftaran_id\"")),
        "{}",
        json.text
    );
    assert!(serde_json::from_str::<Value>(&json.text).is_err());
    assert!(xml.text.starts_with(&format!("{warning}{XML_HEAD}")));
    assert_eq!(error.text, format!("{warning}{{\"error\":\"Tidak ada data..\"}}"));
    assert_eq!(empty.status, StatusCode::NOT_FOUND);
    assert_eq!(empty.text, warning);
}

#[tokio::test]
async fn injected_faults_take_the_next_requests() {
    // Given a server with a status 500, a garbage answer and a timeout queued
    let sim = sicantik().await;
    sim.fail_next(1, SicantikFault::Status500);
    sim.fail_next(1, SicantikFault::Garbage);
    sim.fail_next(1, SicantikFault::Timeout);

    // When three probes are sent
    let failed = get_json(&sim, "/jumlahPerizinan").await;
    let garbage = get_json(&sim, "/jumlahPerizinan").await;
    let started = Instant::now();
    let held = client()
        .get(format!("{}/jumlahPerizinan", sim.url()))
        .timeout(Duration::from_millis(300))
        .send()
        .await;

    // Then the first is a 500 page, the second a 200 that is not JSON, the third never answers
    assert_eq!(failed.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(failed.text.contains("A Database Error Occurred"));
    assert_eq!(garbage.status, StatusCode::OK);
    assert!(
        serde_json::from_str::<Value>(&garbage.text).is_err(),
        "{}",
        garbage.text
    );
    let error = held.expect_err("a held request times out");
    assert!(error.is_timeout(), "{error}");
    assert!(started.elapsed() >= Duration::from_millis(300));
    // and the fourth is answered normally
    assert_eq!(get_json(&sim, "/jumlahPerizinan").await.status, StatusCode::OK);
    let statuses: Vec<u16> = sim.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [500, 200, 0, 200]);

    // When the server is down
    sim.set_down(true);
    let down = client().get(format!("{}/jumlahPerizinan", sim.url())).send().await;
    // Then the connection is closed without an answer, until it is up again
    assert!(down.is_err(), "{down:?}");
    sim.set_down(false);
    assert_eq!(get_json(&sim, "/jumlahPerizinan").await.status, StatusCode::OK);

    // When it is shut down
    sim.shutdown();
    // Then nothing answers any more
    let mut refused = false;
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && !refused {
        refused = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .expect("a client")
            .get(format!("{}/jumlahPerizinan", sim.url()))
            .send()
            .await
            .is_err();
        tokio::task::yield_now().await;
    }
    assert!(refused, "the port still answers after shutdown");
}

#[tokio::test]
async fn latency_delays_every_answer() {
    // Given a server with 150 ms of latency
    let sim = start(SimSicantikConfig {
        latency: Duration::from_millis(150),
        ..Default::default()
    })
    .await;

    // When a probe is sent
    let started = Instant::now();
    assert_eq!(get_json(&sim, "/jumlahPerizinan").await.status, StatusCode::OK);
    // Then it takes at least that long
    assert!(started.elapsed() >= Duration::from_millis(150));

    // When the latency is removed
    sim.set_latency(Duration::ZERO);
    let started = Instant::now();
    get_json(&sim, "/jumlahPerizinan").await;
    // Then answers are quick again
    assert!(started.elapsed() < Duration::from_millis(150));
}

#[tokio::test]
async fn the_rate_counter_counts_requests_over_the_limit() {
    // Given a server counting against a 10 requests/s courtesy limit
    let sim = start(SimSicantikConfig {
        rate_limit: Some(10.0),
        ..Default::default()
    })
    .await;
    let client = client();

    // When a client sends 8 requests 120 ms apart
    let mut ticks = tokio::time::interval(Duration::from_millis(120));
    for _ in 0..8 {
        ticks.tick().await;
        get_json(&sim, "/jumlahPerizinan").await;
    }
    // Then it stays under the limit
    assert_eq!(sim.rate_violations(), 0);
    assert!(sim.peak_rate(Duration::from_secs(1)) <= 10.0);

    // When a client fires a burst of 30 at once
    sim.reset_requests();
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..30 {
        let request = client
            .get(format!("{}/jumlahPerizinan", sim.url()))
            .header("Accept", "application/json");
        burst.spawn(async move { request.send().await.expect("answered").status() });
    }
    let statuses = burst.join_all().await;
    // Then the server answers them all (it has no limit of its own)
    assert!(statuses.iter().all(|s| *s == StatusCode::OK));
    // and counts all but the first 11 (10/s plus one of burst tolerance) as violations
    assert_eq!(sim.requests().len(), 30);
    assert_eq!(sim.rate_violations(), 19);
    assert!(sim.peak_rate(Duration::from_secs(1)) >= 30.0);
    assert!(sim.peak_rate(Duration::from_millis(500)) >= 60.0);
}
