//! A simulated SICANTIK backoffice API that answers like the real one
//! (`../shared/protocols/sicantik.md`, and the server's own source: the CodeIgniter 1.7
//! `REST_Controller` and `modules/api/controllers/api.php` of `dotakaro/SICANTIK`): XML unless
//! JSON is asked for, PHP's `json_encode` and SimpleXML bodies, every value a string or null,
//! the 404s that are not failures, the wrong `num_rows`, newest-first paging that shifts when a
//! permit is issued, the base64 column `cekperizinan` matches without decoding, permits without
//! a company record — plus the latency, faults and request records a test asks for, and a rate
//! counter for the client-side courtesy limit (the server itself has none).

mod http;
mod wire;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::clock;

pub use wire::{base64_decode_lenient, base64_encode};

/// Where a regency's install serves the API.
pub const BASE_PATH: &str = "/backoffice/api";

#[derive(Clone, Debug, Default)]
pub struct SimSicantikConfig {
    /// Added to every request before it is answered.
    pub latency: Duration,
    /// Prepend a PHP warning to every body, as a misconfigured server does.
    pub php_warnings: bool,
    /// Requests per second a client must not exceed; see [`SimSicantik::rate_violations`].
    /// The server never refuses anything because of it.
    pub rate_limit: Option<f64>,
}

/// What `display_errors` prints ahead of the answer on a misconfigured server.
pub const PHP_WARNING: &str = "<br />\n<b>Warning</b>:  Undefined variable $x in /var/www/api.php on line 42<br />\n";

/// An issued permit as the backoffice stores it (tmpermohonan, tmpemohon, tmsk, trperizinan).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NewPermit {
    /// 16 digits with leading zeros; the key.
    pub pendaftaran_id: String,
    /// "" or "0" on junk rows.
    pub n_pemohon: String,
    /// The permit type's name.
    pub n_perizinan: String,
    /// The permit number, e.g. `503.530.570/0110/DPMPPTSP-DS/08/2026/KK`.
    pub no_surat: String,
    /// `YYYY-MM-DD`, the date the file was received: listings are newest first by it.
    pub d_terima_berkas: String,
    /// `YYYY-MM-DD` expiry; None is NULL.
    pub d_berlaku_izin: Option<String>,
    /// `YYYY-MM-DD`, the letter (issue) date.
    pub tgl_surat: String,
    /// Local format, e.g. `0812-3456-7890`.
    pub telp_pemohon: String,
    pub a_pemohon: String,
    /// Without a company record, the detail endpoints' INNER JOIN finds nothing.
    pub has_company: bool,
}

/// A permit type (trperizinan) as `jenisperizinanlist` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PermitType {
    pub id: String,
    pub jenis_perizinan: String,
    pub kelompok_izin: String,
    /// Processing SLA in days.
    pub v_hari: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SicantikFault {
    /// Hold the request for 60 s, then close the connection without an answer.
    Timeout,
    /// HTTP 500 with CodeIgniter's database error page.
    Status500,
    /// HTTP 200 with a body that is not JSON (a PHP fatal error).
    Garbage,
}

#[derive(Clone, Debug)]
pub struct SicantikRequest {
    /// The request path, as sent (percent-encoded).
    pub path: String,
    /// The query string, as sent, if any.
    pub query: Option<String>,
    pub method: String,
    /// The API method called: `jumlahPerizinan`, `jenisperizinanlist`, `listpermohonanterbit`,
    /// `cekperizinan`, `cekperizinanizin`; the segment as sent for an unknown one; "" outside
    /// the API.
    pub endpoint: String,
    /// 0 when no answer was given (down, or a `Timeout` fault).
    pub status: u16,
    /// When the request arrived.
    pub at: Instant,
}

struct Permit {
    permit: NewPermit,
    /// tmsk.base64, which `cekperizinan` compares with `no_izin` as text.
    base64: String,
}

pub(crate) struct State {
    config: SimSicantikConfig,
    /// In insertion order; listings sort.
    permits: Vec<Permit>,
    types: Vec<PermitType>,
    down: bool,
    faults: VecDeque<SicantikFault>,
    requests: Vec<SicantikRequest>,
    /// Whether `cekperizinanizin` needs a company record too (as the server source does).
    izin_requires_company: bool,
    random: u64,
    /// Seeded permits so far: makes their ids and numbers unique.
    seeded: u64,
}

pub struct SimSicantik {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    /// Stops the accept loop and open connections when fired (or dropped with the server).
    stop: tokio::sync::watch::Sender<bool>,
}

/// (id, jenis_perizinan, kelompok_izin, v_hari, the first part of its permit numbers).
const TYPES: [(&str, &str, &str, &str, &str); 10] = [
    (
        "3",
        "IZIN GANGGUAN USAHA (HO)",
        "PERDAGANGAN DAN USAHA",
        "14",
        "503.530.570",
    ),
    ("5", "IZIN MENDIRIKAN BANGUNAN (IMB)", "BANGUNAN", "14", "503.640"),
    (
        "7",
        "SURAT IZIN USAHA PERDAGANGAN (SIUP)",
        "PERDAGANGAN DAN USAHA",
        "3",
        "503.510",
    ),
    (
        "8",
        "TANDA DAFTAR PERUSAHAAN (TDP)",
        "PERDAGANGAN DAN USAHA",
        "3",
        "503.511",
    ),
    ("12", "IZIN PRAKTEK DOKTER UMUM", "KESEHATAN", "7", "503.445"),
    ("14", "IZIN APOTEK", "KESEHATAN", "12", "503.446"),
    ("27", "IZIN REKLAME", "REKLAME", "5", "503.300"),
    (
        "33",
        "TANDA DAFTAR USAHA PARIWISATA (HOTEL & RESTORAN)",
        "PARIWISATA",
        "7",
        "503.556",
    ),
    ("41", "IZIN PRAKTEK BIDAN", "KESEHATAN", "7", "503.447"),
    ("52", "IZIN TRAYEK", "PERHUBUNGAN", "10", "503.551"),
];

const FIRST_NAMES: [&str; 16] = [
    "Afira", "Budi", "Siti", "Rina", "Andi", "Dewi", "Hendra", "Yusuf", "Maria", "Joko", "Lestari", "Rudi", "Nur",
    "Ita", "Darwin", "Sri",
];
const FAMILY_NAMES: [&str; 12] = [
    "Ginting",
    "Sembiring",
    "Tarigan",
    "Perangin-angin",
    "Karo-karo",
    "Sitepu",
    "Bangun",
    "Surbakti",
    "Purba",
    "Barus",
    "Br. Ginting",
    "Sinulingga",
];
const STREETS: [&str; 8] = [
    "Jl. Veteran",
    "Jl. Kapten Pala Bangun",
    "Jl. Jamin Ginting",
    "Jl. Letnan Rata Perangin-angin",
    "Jl. Udara",
    "Jl. Kota Cane",
    "Jl. Gundaling",
    "Jl. Pahlawan",
];
/// (kecamatan, kelurahan).
const PLACES: [(&str, &str); 6] = [
    ("KABANJAHE", "GUNG LETO"),
    ("KABANJAHE", "PADANG MAS"),
    ("BERASTAGI", "GUNDALING I"),
    ("BERASTAGI", "TAMBAK LAU MULGAP II"),
    ("TIGAPANAH", "TIGAPANAH"),
    ("SIMPANG EMPAT", "SURBAKTI"),
];
const COMPANIES: [&str; 8] = [
    "CV. MAJU BERSAMA",
    "PT. KARO AGRO LESTARI",
    "UD. SINAR TANI",
    "CV. BERASTAGI JAYA & SONS",
    "APOTEK SEHAT SENTOSA",
    "PT. SIBAYAK PERMAI",
    "TOKO MURAH REZEKI",
    "KLINIK PRATAMA HARAPAN",
];
const PHONE_PREFIXES: [&str; 8] = ["0811", "0812", "0813", "0821", "0822", "0823", "0852", "0853"];

impl SimSicantik {
    /// Binds 127.0.0.1 on a free port and serves on the current tokio runtime.
    pub async fn start(config: SimSicantikConfig) -> std::io::Result<SimSicantik> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State {
            config,
            permits: Vec::new(),
            types: TYPES
                .iter()
                .map(|(id, name, group, days, _)| PermitType {
                    id: id.to_string(),
                    jenis_perizinan: name.to_string(),
                    kelompok_izin: group.to_string(),
                    v_hari: days.to_string(),
                })
                .collect(),
            down: false,
            faults: VecDeque::new(),
            requests: Vec::new(),
            izin_requires_company: true,
            // Fixed: `seed` gives the same permits (relative to today) on every run.
            random: 0x5EED_51CA_2017_0001,
            seeded: 0,
        }));
        let (stop, stopped) = tokio::sync::watch::channel(false);
        tokio::spawn(http::serve(listener, state.clone(), stopped));
        Ok(SimSicantik { addr, state, stop })
    }

    /// The API base, like a regency's install: `http://127.0.0.1:PORT/backoffice/api`.
    pub fn url(&self) -> String {
        format!("http://{}{BASE_PATH}", self.addr)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores a permit; its base64 column is the base64 of its `no_surat`.
    pub fn add_permit(&self, p: NewPermit) {
        let base64 = base64_encode(p.no_surat.as_bytes());
        self.state().permits.push(Permit { permit: p, base64 });
    }

    /// `n` realistic permits: received over the past two years, expiring from 100 days ago to
    /// three years ahead, about 5 % junk rows (`n_pemohon` "" or "0") and 5 % without a company
    /// record. Deterministic apart from being relative to today.
    pub fn seed(&self, n: usize) -> Vec<NewPermit> {
        let today = clock::now_unix().div_euclid(86_400);
        let mut state = self.state();
        let permits: Vec<NewPermit> = (0..n).map(|_| state.seed_one(today)).collect();
        for p in &permits {
            let base64 = base64_encode(p.no_surat.as_bytes());
            state.permits.push(Permit {
                permit: p.clone(),
                base64,
            });
        }
        permits
    }

    /// A renewal: the permit's expiry (`d_berlaku_izin`) becomes `d_berlaku_izin`.
    pub fn set_expiry(&self, pendaftaran_id: &str, d_berlaku_izin: Option<&str>) {
        for p in self
            .state()
            .permits
            .iter_mut()
            .filter(|p| p.permit.pendaftaran_id == pendaftaran_id)
        {
            p.permit.d_berlaku_izin = d_berlaku_izin.map(str::to_string);
        }
    }

    /// Overwrites the stored base64 column (None: NULL), as on legacy rows whose column was
    /// never filled or was computed from an older number: `cekperizinan` then answers
    /// "No Izin tidak Terdaftar!" while `cekperizinanizin` still finds the permit.
    pub fn set_base64_column(&self, pendaftaran_id: &str, value: Option<&str>) {
        for p in self
            .state()
            .permits
            .iter_mut()
            .filter(|p| p.permit.pendaftaran_id == pendaftaran_id)
        {
            p.base64 = value.unwrap_or_default().to_string();
        }
    }

    /// Whether `cekperizinanizin` also misses permits without a company record. Off by default:
    /// the fallback finds them. The server source joins `tmperusahaan` with an INNER JOIN in both
    /// detail queries, so turn this on to have both endpoints miss them.
    pub fn set_izin_requires_company(&self, on: bool) {
        self.state().izin_requires_company = on;
    }

    /// (id, jenis_perizinan) of every permit type, in stored order.
    pub fn permit_types(&self) -> Vec<(String, String)> {
        self.state()
            .types
            .iter()
            .map(|t| (t.id.clone(), t.jenis_perizinan.clone()))
            .collect()
    }

    /// Replaces the permit types (an empty list makes `jenisperizinanlist` an empty 404).
    pub fn set_permit_types(&self, types: Vec<PermitType>) {
        self.state().types = types;
    }

    pub fn set_latency(&self, d: Duration) {
        self.state().config.latency = d;
    }

    /// While down, every request is answered by closing the connection.
    pub fn set_down(&self, down: bool) {
        self.state().down = down;
    }

    /// The next `n` requests meet `fault` instead of the API.
    pub fn fail_next(&self, n: usize, fault: SicantikFault) {
        self.state().faults.extend(std::iter::repeat_n(fault, n));
    }

    pub fn requests(&self) -> Vec<SicantikRequest> {
        self.state().requests.clone()
    }

    pub fn reset_requests(&self) {
        self.state().requests.clear();
    }

    /// The most requests that arrived within any `window`, per second of `window`.
    pub fn peak_rate(&self, window: Duration) -> f64 {
        if window.is_zero() {
            return 0.0;
        }
        let times = self.arrivals();
        let mut peak = 0;
        let mut end = 0;
        for (start, t) in times.iter().enumerate() {
            while end < times.len() && times[end].duration_since(*t) < window {
                end += 1;
            }
            peak = peak.max(end - start);
        }
        peak as f64 / window.as_secs_f64()
    }

    /// With `rate_limit = Some(r)`: how many requests arrived when the 1 s window ending at
    /// their arrival (open at its start, and counting them) held more than `r + 1` requests —
    /// the limit plus one request of burst tolerance. 0 without a limit.
    pub fn rate_violations(&self) -> usize {
        let Some(limit) = self.state().config.rate_limit else {
            return 0;
        };
        let times = self.arrivals();
        let mut start = 0;
        let mut violations = 0;
        for (i, t) in times.iter().enumerate() {
            while t.duration_since(times[start]) >= Duration::from_secs(1) {
                start += 1;
            }
            if (i + 1 - start) as f64 > limit + 1.0 {
                violations += 1;
            }
        }
        violations
    }

    fn arrivals(&self) -> Vec<Instant> {
        let mut times: Vec<Instant> = self.state().requests.iter().map(|r| r.at).collect();
        times.sort();
        times
    }

    /// Stops accepting and drops open connections; the port is released.
    pub fn shutdown(&self) {
        self.stop.send_replace(true);
    }
}

impl Drop for SimSicantik {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// `YYYY-MM-DD` for a count of days since 1970-01-01.
fn date(days: i64) -> String {
    clock::format_odoo(days * 86_400)[..10].to_string()
}

/// FNV-1a: stable company details derived from a permit's id.
fn hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

impl State {
    fn next_random(&mut self) -> u64 {
        // xorshift64: plenty for test data.
        self.random ^= self.random << 13;
        self.random ^= self.random >> 7;
        self.random ^= self.random << 17;
        self.random
    }

    fn pick(&mut self, n: usize) -> usize {
        (self.next_random() % n as u64) as usize
    }

    fn seed_one(&mut self, today: i64) -> NewPermit {
        let k = self.seeded;
        self.seeded += 1;
        let (_, type_name, _, days, prefix) = TYPES[self.pick(TYPES.len())];
        let received = today - self.pick(730) as i64;
        let issued = (received + days.parse::<i64>().unwrap_or(7) + self.pick(10) as i64).min(today);
        let expiry = today - 100 + self.pick(100 + 3 * 365 + 1) as i64;
        let received_text = date(received);
        let (year, month) = (&received_text[..4], &received_text[5..7]);
        let n_pemohon = match k % 40 {
            3 => String::new(),
            23 => "0".to_string(),
            _ => format!(
                "{} {}",
                FIRST_NAMES[self.pick(FIRST_NAMES.len())],
                FAMILY_NAMES[self.pick(FAMILY_NAMES.len())]
            ),
        };
        let last = if self.pick(4) == 0 {
            format!("{:03}", self.pick(1000))
        } else {
            format!("{:04}", self.pick(10_000))
        };
        let telp_pemohon = format!(
            "{}-{:04}-{last}",
            PHONE_PREFIXES[self.pick(PHONE_PREFIXES.len())],
            self.pick(10_000)
        );
        let (kecamatan, kelurahan) = PLACES[self.pick(PLACES.len())];
        let a_pemohon = format!(
            "{} No. {}, {}, Kec. {}",
            STREETS[self.pick(STREETS.len())],
            1 + self.pick(150),
            title_case(kelurahan),
            title_case(kecamatan)
        );
        NewPermit {
            pendaftaran_id: format!("{:06}{:04}{month}{year}", 320 + k, 1 + self.pick(999)),
            n_pemohon,
            n_perizinan: type_name.to_string(),
            no_surat: format!("{prefix}/{:04}/DPMPPTSP-DS/{month}/{year}/KK", 110 + k % 9_890),
            d_terima_berkas: received_text.clone(),
            d_berlaku_izin: Some(date(expiry)),
            tgl_surat: date(issued),
            telp_pemohon,
            a_pemohon,
            has_company: k % 20 != 7,
        }
    }
}

fn title_case(s: &str) -> String {
    s.split(' ')
        .map(|w| {
            let lower = w.to_lowercase();
            let mut chars = lower.chars();
            match chars.next() {
                Some(c) => c.to_uppercase().chain(chars).collect(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The company-side columns of `cekperizinan` (tmperusahaan and its region), derived from the
/// permit's id so they are stable.
fn company_fields(permit: &NewPermit) -> [(&'static str, wire::Cell); 9] {
    use wire::Cell::{Null, Str};
    let h = hash(&permit.pendaftaran_id);
    let digit = |shift: u32, n: u64| (h >> shift) % n;
    let (kecamatan, kelurahan) = PLACES[digit(0, PLACES.len() as u64) as usize];
    let founded = clock::parse_odoo(&permit.d_terima_berkas)
        .map(|t| date(t.div_euclid(86_400) - 365 - digit(8, 3650) as i64))
        .map_or(Null, Str);
    let founded = if digit(20, 5) == 0 { Null } else { founded };
    [
        (
            "n_perusahaan",
            Str(COMPANIES[digit(4, COMPANIES.len() as u64) as usize].to_string()),
        ),
        (
            "npwp",
            Str(format!(
                "{:02}.{:03}.{:03}.{}-{:03}.000",
                digit(12, 100),
                digit(16, 1000),
                digit(24, 1000),
                digit(32, 10),
                digit(36, 1000)
            )),
        ),
        (
            "a_perusahaan",
            Str(format!(
                "{} No. {}",
                STREETS[digit(40, STREETS.len() as u64) as usize],
                1 + digit(44, 200)
            )),
        ),
        ("d_tgl_berdiri", founded),
        ("i_telp_perusahaan", Str(format!("(0628) {:05}", digit(48, 100_000)))),
        ("n_kecamatan", Str(kecamatan.to_string())),
        ("n_kabupaten", Str("KARO".to_string())),
        ("n_propinsi", Str("SUMATERA UTARA".to_string())),
        ("n_kelurahan", Str(kelurahan.to_string())),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn seeded_permits_are_realistic() {
        let sim = SimSicantik::start(SimSicantikConfig::default()).await.expect("starts");
        let permits = sim.seed(400);
        let today = clock::now_unix().div_euclid(86_400);
        let day = |s: &str| clock::parse_odoo(s).expect("a date").div_euclid(86_400);
        let ids: std::collections::BTreeSet<_> = permits.iter().map(|p| &p.pendaftaran_id).collect();
        assert_eq!(ids.len(), 400, "ids are unique");
        let junk = permits
            .iter()
            .filter(|p| p.n_pemohon.is_empty() || p.n_pemohon == "0")
            .count();
        let no_company = permits.iter().filter(|p| !p.has_company).count();
        assert!((10..=30).contains(&junk), "{junk} junk rows");
        assert!((10..=30).contains(&no_company), "{no_company} without company");
        for p in &permits {
            assert_eq!(p.pendaftaran_id.len(), 16);
            assert!(p.pendaftaran_id.bytes().all(|b| b.is_ascii_digit()));
            assert!(p.no_surat.contains('/') && p.no_surat.contains('.'), "{}", p.no_surat);
            let received = day(&p.d_terima_berkas);
            assert!((today - 730..=today).contains(&received));
            assert!((received..=today).contains(&day(&p.tgl_surat)));
            let expiry = day(p.d_berlaku_izin.as_deref().expect("an expiry"));
            assert!((today - 100..=today + 3 * 365).contains(&expiry));
            let phone: Vec<&str> = p.telp_pemohon.split('-').collect();
            assert_eq!(phone.len(), 3, "{}", p.telp_pemohon);
            assert!(phone[0].starts_with("08") && phone[0].len() == 4);
        }
        let types: std::collections::BTreeSet<_> = permits.iter().map(|p| &p.n_perizinan).collect();
        assert_eq!(types.len(), TYPES.len(), "every type is used");
    }
}
