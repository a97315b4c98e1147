//! The byte-level pieces of a PHP 5 / CodeIgniter 1.7 REST server, written out so the simulator
//! does not share a library (or a bug) with the client it tests: base64 as PHP's
//! `base64_encode`/`base64_decode`, `json_encode`, the REST_Controller's XML (SimpleXML fed
//! `htmlentities`), `parse_str` and `rawurldecode`.

/// One MySQL value as `result_array()` gives it: a string or NULL; counts from PHP are numbers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Cell {
    Str(String),
    Null,
    Int(i64),
}

/// A row: fields in the order of the SELECT (PHP arrays keep insertion order).
pub(super) type Row = Vec<(&'static str, Cell)>;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard-alphabet, padded base64, as PHP's `base64_encode`.
pub fn base64_encode(input: &[u8]) -> String {
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> shift & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// PHP's non-strict `base64_decode`: characters outside the alphabet (a space where a `+` was
/// sent unencoded, line breaks, `=`) are skipped, and a dangling sixth of a byte is dropped.
pub fn base64_decode_lenient(input: &str) -> Vec<u8> {
    let sextets: Vec<u32> = input
        .bytes()
        .filter_map(|c| ALPHABET.iter().position(|&a| a == c).map(|p| p as u32))
        .collect();
    let mut out = Vec::with_capacity(sextets.len() * 3 / 4);
    for group in sextets.chunks(4) {
        let n = group.iter().enumerate().fold(0u32, |n, (i, s)| n | s << (18 - 6 * i));
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        // 2 sextets make 1 byte, 3 make 2, 4 make 3; 1 alone makes none.
        out.extend_from_slice(&bytes[..group.len().saturating_sub(1)]);
    }
    out
}

/// PHP's `json_encode` with default flags: `/` as `\/`, everything beyond ASCII as `\uXXXX`.
pub(super) fn php_json(rows: &[Row]) -> String {
    let mut out = String::from("[");
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        php_json_object(&mut out, row);
    }
    out.push(']');
    out
}

/// `json_encode(array('error' => $message))`.
pub(super) fn php_json_error(message: &str) -> String {
    let mut out = String::new();
    php_json_object(&mut out, &vec![("error", Cell::Str(message.to_string()))]);
    out
}

fn php_json_object(out: &mut String, row: &Row) {
    out.push('{');
    for (i, (key, value)) in row.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        php_json_string(out, key);
        out.push(':');
        match value {
            Cell::Str(s) => php_json_string(out, s),
            Cell::Null => out.push_str("null"),
            Cell::Int(n) => out.push_str(&n.to_string()),
        }
    }
    out.push('}');
}

fn php_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' => out.push_str("\\/"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_ascii() && !c.is_ascii_control() => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
}

/// The REST_Controller's `_format_xml`: `<xml>` holding one `<item>` per row, element names
/// stripped of everything but letters and `_` (so digits go), values through
/// `htmlentities(…, ENT_NOQUOTES, 'UTF-8')`, empty and NULL values as empty elements.
/// `rawxml` differs only in keeping digits and `-` in element names.
pub(super) fn php_xml(rows: &[Row], raw: bool) -> String {
    let mut out = String::from(XML_HEAD);
    out.push_str("<xml>");
    for row in rows {
        out.push_str("<item>");
        xml_fields(&mut out, row, raw);
        out.push_str("</item>");
    }
    out.push_str("</xml>\n");
    out
}

/// `array('error' => $message)` through `_format_xml`: no `<item>`, the key is the element.
pub(super) fn php_xml_error(message: &str, raw: bool) -> String {
    let mut out = String::from(XML_HEAD);
    out.push_str("<xml>");
    xml_fields(&mut out, &vec![("error", Cell::Str(message.to_string()))], raw);
    out.push_str("</xml>\n");
    out
}

/// What SimpleXML's `asXML()` writes first.
const XML_HEAD: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n";

fn xml_fields(out: &mut String, row: &Row, raw: bool) {
    for (key, value) in row {
        let name = xml_name(key, raw);
        let text = match value {
            Cell::Str(s) => htmlentities(s),
            Cell::Null => String::new(),
            Cell::Int(n) => n.to_string(),
        };
        if text.is_empty() {
            out.push_str(&format!("<{name}/>"));
        } else {
            out.push_str(&format!("<{name}>{text}</{name}>"));
        }
    }
}

/// `preg_replace('/[^a-z_]/i', '', $key)` (`/[^a-z0-9_-]/i` for rawxml).
pub(super) fn xml_name(key: &str, raw: bool) -> String {
    key.chars()
        .filter(|c| c.is_ascii_alphabetic() || *c == '_' || (raw && (c.is_ascii_digit() || *c == '-')))
        .collect()
}

/// `htmlentities($s, ENT_NOQUOTES, 'UTF-8')`: `&`, `<`, `>` and every character HTML names
/// (Latin-1 and common punctuation here) become named entities; quotes stay. SimpleXML keeps
/// the names it does not know as entity references, so `&eacute;` reaches the wire as is,
/// which a strict XML parser rejects.
pub(super) fn htmlentities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => match entity_name(c) {
                Some(name) => {
                    out.push('&');
                    out.push_str(name);
                    out.push(';');
                }
                None => out.push(c),
            },
        }
    }
    out
}

/// HTML 4 entity names for U+00A0..=U+00FF, in order.
const LATIN1: [&str; 96] = [
    "nbsp", "iexcl", "cent", "pound", "curren", "yen", "brvbar", "sect", "uml", "copy", "ordf", "laquo", "not", "shy",
    "reg", "macr", "deg", "plusmn", "sup2", "sup3", "acute", "micro", "para", "middot", "cedil", "sup1", "ordm",
    "raquo", "frac14", "frac12", "frac34", "iquest", "Agrave", "Aacute", "Acirc", "Atilde", "Auml", "Aring", "AElig",
    "Ccedil", "Egrave", "Eacute", "Ecirc", "Euml", "Igrave", "Iacute", "Icirc", "Iuml", "ETH", "Ntilde", "Ograve",
    "Oacute", "Ocirc", "Otilde", "Ouml", "times", "Oslash", "Ugrave", "Uacute", "Ucirc", "Uuml", "Yacute", "THORN",
    "szlig", "agrave", "aacute", "acirc", "atilde", "auml", "aring", "aelig", "ccedil", "egrave", "eacute", "ecirc",
    "euml", "igrave", "iacute", "icirc", "iuml", "eth", "ntilde", "ograve", "oacute", "ocirc", "otilde", "ouml",
    "divide", "oslash", "ugrave", "uacute", "ucirc", "uuml", "yacute", "thorn", "yuml",
];

fn entity_name(c: char) -> Option<&'static str> {
    let code = c as u32;
    if (0xA0..=0xFF).contains(&code) {
        return Some(LATIN1[(code - 0xA0) as usize]);
    }
    Some(match c {
        '\u{2013}' => "ndash",
        '\u{2014}' => "mdash",
        '\u{2018}' => "lsquo",
        '\u{2019}' => "rsquo",
        '\u{201C}' => "ldquo",
        '\u{201D}' => "rdquo",
        '\u{2022}' => "bull",
        '\u{2026}' => "hellip",
        '\u{20AC}' => "euro",
        '\u{2122}' => "trade",
        _ => return None,
    })
}

/// PHP's `parse_str` on a query string: `+` is a space, `%XX` a byte, a key without `=` has
/// the value "", a repeated key keeps its first place and its last value, and spaces and dots
/// in keys become `_`.
pub(super) fn parse_query(query: &str) -> Vec<(String, String)> {
    let mut args: Vec<(String, String)> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key: String = urldecode(key, true)
            .trim_start_matches(' ')
            .chars()
            .map(|c| if c == ' ' || c == '.' { '_' } else { c })
            .collect();
        if key.is_empty() {
            continue;
        }
        let value = urldecode(value, true);
        match args.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => args.push((key, value)),
        }
    }
    args
}

/// `urldecode` (`plus_is_space`) or `rawurldecode`: `%XX` with two hex digits is that byte,
/// anything else stays as it is.
pub(super) fn urldecode(s: &str, plus_is_space: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() && hex(b[i + 1]).is_some() && hex(b[i + 2]).is_some() => {
                out.push(hex(b[i + 1]).unwrap_or(0) << 4 | hex(b[i + 2]).unwrap_or(0));
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_and_matches_rfc4648_vectors() {
        // RFC 4648 section 10.
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(base64_encode(plain.as_bytes()), encoded);
            assert_eq!(base64_decode_lenient(encoded), plain.as_bytes());
        }
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(base64_decode_lenient(&base64_encode(&all)), all);
        // `+` and `/` are the standard alphabet's 62 and 63.
        assert_eq!(base64_encode(&[0xfb, 0xff]), "+/8=");
        let surat = "503.530.570/0110/DPMPPTSP-DS/08/2017/KK";
        assert_eq!(
            base64_encode(surat.as_bytes()),
            "NTAzLjUzMC41NzAvMDExMC9EUE1QUFRTUC1EUy8wOC8yMDE3L0tL"
        );
    }

    #[test]
    fn base64_decode_skips_what_is_not_in_the_alphabet_as_php_does() {
        assert_eq!(base64_decode_lenient("Zm9v\nYmFy"), b"foobar");
        assert_eq!(base64_decode_lenient("Zm9vYg"), b"foob", "padding is optional");
        // A `+` that arrived as a space is skipped, so the rest shifts: no longer the input.
        assert_eq!(base64_decode_lenient("+/8="), [0xfb, 0xff]);
        assert_ne!(base64_decode_lenient(" /8="), [0xfb, 0xff]);
    }

    #[test]
    fn json_is_written_as_php_writes_it() {
        let rows = vec![vec![
            ("no_surat", Cell::Str("503/01 \"é\"".into())),
            ("d_berlaku_izin", Cell::Null),
            ("jumlahPerizinan", Cell::Int(89)),
        ]];
        assert_eq!(
            php_json(&rows),
            r#"[{"no_surat":"503\/01 \"\u00e9\"","d_berlaku_izin":null,"jumlahPerizinan":89}]"#
        );
        assert_eq!(php_json_error("Tidak ada data.."), r#"{"error":"Tidak ada data.."}"#);
    }

    #[test]
    fn xml_drops_digits_from_names_and_entity_encodes_values() {
        assert_eq!(xml_name("alamat2_pemohon", false), "alamat_pemohon");
        assert_eq!(xml_name("alamat2-x", true), "alamat2-x");
        let rows = vec![vec![
            ("n_pemohon2", Cell::Str("A & B <C> \"d\" José".into())),
            ("d_berlaku_izin", Cell::Null),
            ("x", Cell::Str(String::new())),
        ]];
        assert_eq!(
            php_xml(&rows, false),
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<xml><item><n_pemohon>A &amp; B &lt;C&gt; \"d\" Jos&eacute;\
             </n_pemohon><d_berlaku_izin/><x/></item></xml>\n"
        );
        assert_eq!(
            php_xml_error("No Izin tidak Terdaftar!", false),
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<xml><error>No Izin tidak Terdaftar!</error></xml>\n"
        );
    }

    #[test]
    fn query_strings_parse_as_parse_str() {
        assert_eq!(
            parse_query("no_izin=QU+C%2BD%3D&limit=1&limit=2&flag&a.b=x"),
            vec![
                ("no_izin".to_string(), "QU C+D=".to_string()),
                ("limit".to_string(), "2".to_string()),
                ("flag".to_string(), String::new()),
                ("a_b".to_string(), "x".to_string()),
            ]
        );
        assert_eq!(urldecode("a+b%2Bc%zz%2", false), "a+b+c%zz%2");
    }
}
