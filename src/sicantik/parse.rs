//! SICANTIK bodies: JSON when asked for, XML by default, sometimes with PHP warnings in front.
//! Every value becomes text or nothing (the server's values come straight from MySQL).

use std::collections::BTreeMap;

use serde_json::Value;

/// One record: field name → value (None for null).
pub(crate) type Row = BTreeMap<String, Option<String>>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct ParseError(pub String);

/// The records in a body, and whether PHP warnings had to be skipped to find them.
pub(crate) fn rows(body: &str) -> Result<(Vec<Row>, bool), ParseError> {
    let text = body.trim_start_matches('\u{feff}').trim();
    if text.starts_with('[') || text.starts_with('{') {
        return json_rows(text).map(|r| (r, false));
    }
    if let Some(at) = text.find("<xml") {
        // Anything before the root other than an XML declaration is a PHP warning.
        let before = text[..at].trim();
        let warned = !(before.is_empty() || (before.starts_with("<?xml") && before.ends_with("?>")));
        return xml_rows(&text[at..]).map(|r| (r, warned));
    }
    // A misconfigured server prints warnings (HTML) before the JSON: find where it starts.
    if text.starts_with('<') {
        if let Some(start) = text
            .lines()
            .scan(0, |offset, line| {
                let here = *offset;
                *offset += line.len() + 1;
                Some((here, line))
            })
            .find(|(_, line)| line.starts_with('[') || line.starts_with('{'))
            .map(|(offset, _)| offset)
        {
            return json_rows(&text[start..]).map(|r| (r, true));
        }
    }
    Err(ParseError(format!(
        "neither JSON nor XML: {}",
        crate::http::snippet(text)
    )))
}

fn json_rows(text: &str) -> Result<Vec<Row>, ParseError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| ParseError(format!("bad JSON ({e}): {}", crate::http::snippet(text))))?;
    let items = match value {
        Value::Array(items) => items,
        Value::Object(_) => vec![value],
        other => {
            return Err(ParseError(format!(
                "expected records, got {}",
                crate::http::snippet(&other.to_string())
            )))
        }
    };
    items
        .into_iter()
        .map(|item| match item {
            Value::Object(map) => Ok(map.into_iter().map(|(k, v)| (k, scalar(v))).collect()),
            other => Err(ParseError(format!(
                "expected a record, got {}",
                crate::http::snippet(&other.to_string())
            ))),
        })
        .collect()
}

fn scalar(v: Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s),
        other => Some(other.to_string()),
    }
}

/// `<xml><item><field>value</field>…</item>…</xml>`, values HTML-entity-encoded.
fn xml_rows(text: &str) -> Result<Vec<Row>, ParseError> {
    let mut rows = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("<item>") {
        let end = rest[start..]
            .find("</item>")
            .ok_or_else(|| ParseError("unterminated <item>".into()))?
            + start;
        rows.push(xml_fields(&rest[start + 6..end])?);
        rest = &rest[end + 7..];
    }
    if rows.is_empty() && !text.contains("</xml>") && !text.contains("<xml/>") {
        return Err(ParseError(format!("unterminated XML: {}", crate::http::snippet(text))));
    }
    Ok(rows)
}

fn xml_fields(mut inner: &str) -> Result<Row, ParseError> {
    let mut row = Row::new();
    loop {
        inner = inner.trim_start();
        if inner.is_empty() {
            return Ok(row);
        }
        if !inner.starts_with('<') {
            return Err(ParseError(format!(
                "text outside a field: {}",
                crate::http::snippet(inner)
            )));
        }
        let open_end = inner.find('>').ok_or_else(|| ParseError("broken tag".into()))?;
        let tag = &inner[1..open_end];
        if let Some(name) = tag.strip_suffix('/') {
            row.insert(name.trim().to_string(), None);
            inner = &inner[open_end + 1..];
            continue;
        }
        let close = format!("</{tag}>");
        let value_end = inner.find(&close).ok_or_else(|| ParseError(format!("no {close}")))?;
        row.insert(tag.to_string(), Some(decode_entities(&inner[open_end + 1..value_end])));
        inner = &inner[value_end + close.len()..];
    }
}

fn decode_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let Some(semi) = tail.find(';').filter(|&s| s <= 10) else {
            out.push('&');
            rest = &tail[1..];
            continue;
        };
        let entity = &tail[1..semi];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "nbsp" => Some('\u{a0}'),
            e if e.starts_with("#x") || e.starts_with("#X") => {
                u32::from_str_radix(&e[2..], 16).ok().and_then(char::from_u32)
            }
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            // PHP's htmlentities names Latin-1 letters (a strict XML parser would refuse them).
            e => latin1_entity(e),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &tail[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// `&eacute;` and its kin: a letter and an accent, as HTML names the Latin-1 letters.
fn latin1_entity(name: &str) -> Option<char> {
    let base = name.chars().next().filter(char::is_ascii_alphabetic)?;
    let accent = &name[1..];
    let combos: &[(&str, &str, &str)] = &[
        ("acute", "aeiouyAEIOUY", "áéíóúýÁÉÍÓÚÝ"),
        ("grave", "aeiouAEIOU", "àèìòùÀÈÌÒÙ"),
        ("circ", "aeiouAEIOU", "âêîôûÂÊÎÔÛ"),
        ("uml", "aeiouyAEIOU", "äëïöüÿÄËÏÖÜ"),
        ("tilde", "anoANO", "ãñõÃÑÕ"),
        ("cedil", "cC", "çÇ"),
        ("ring", "aA", "åÅ"),
    ];
    let (_, bases, letters) = combos.iter().find(|(a, _, _)| *a == accent)?;
    let at = bases.find(base)?;
    letters.chars().nth(bases[..at].chars().count())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(row: &'a Row, k: &str) -> Option<&'a str> {
        row.get(k).and_then(|v| v.as_deref())
    }

    #[test]
    fn json_values_become_text_or_nothing() {
        let (rows, warned) =
            rows(r#"[{"pendaftaran_id":"0003200001082017","num_rows":"12","n":null},{"jumlahPerizinan":89}]"#).unwrap();
        assert!(!warned);
        assert_eq!(get(&rows[0], "pendaftaran_id"), Some("0003200001082017"));
        assert_eq!(rows[0].get("n"), Some(&None));
        assert_eq!(get(&rows[1], "jumlahPerizinan"), Some("89"));
    }

    #[test]
    fn xml_is_read_with_entities_decoded() {
        let body = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<xml><item><no_surat>503.530/01 &amp; 02</no_surat><n_pemohon>PT &lt;Maju&gt; Jos&eacute; &#233;</n_pemohon><x/></item><item><no_surat>B</no_surat></item></xml>";
        let (rows, _) = rows(body).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(get(&rows[0], "no_surat"), Some("503.530/01 & 02"));
        assert_eq!(get(&rows[0], "n_pemohon"), Some("PT <Maju> José é"));
        assert_eq!(rows[0].get("x"), Some(&None));
    }

    #[test]
    fn php_warnings_before_the_json_are_skipped_and_reported() {
        let body =
            "<br />\n<b>Warning</b>:  Undefined variable $x in /var/www/api.php on line 42<br />\n[{\"id\":\"1\"}]";
        let (rows, warned) = rows(body).unwrap();
        assert!(warned);
        assert_eq!(get(&rows[0], "id"), Some("1"));
    }

    #[test]
    fn an_xml_declaration_is_not_a_warning() {
        let (_, warned) = rows("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<xml><item><a>1</a></item></xml>").unwrap();
        assert!(!warned);
    }

    #[test]
    fn odd_entities_are_kept_as_text_not_a_crash() {
        let (rows, _) = rows("<xml><item><a>x &; y &\u{e9}t\u{e9}; z</a></item></xml>").unwrap();
        assert_eq!(get(&rows[0], "a"), Some("x &; y &\u{e9}t\u{e9}; z"));
    }

    #[test]
    fn garbage_is_a_clear_error() {
        for body in [
            "",
            "Fatal error",
            "<html><body>502</body></html>",
            "[{\"a\":1}",
            "<xml><item><a>1</a>",
            "<xml><item>text<a>1</a></item></xml>",
        ] {
            let err = rows(body).unwrap_err();
            assert!(!err.0.is_empty(), "{body:?}");
        }
    }

    /// SICANTIK-shaped bodies (JSON, XML, warnings in front), cut anywhere, and bytes.
    fn body() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..400).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
            "\\PC{0,200}",
            Just(r#"[{"pendaftaran_id": "1", "no_surat": "503/1", "n_pemohon": "Budi", "v_hari": 14}]"#.to_string()),
            Just("<?xml version=\"1.0\"?><xml><item><id>4</id><jenis_perizinan>IMB &amp; HO</jenis_perizinan></item></xml>".to_string()),
            Just("<br />\n<b>Warning</b>: x<br />\n[{\"id\": \"4\"}]".to_string()),
        ]
        .prop_flat_map(|b| {
            let len = b.len();
            (Just(b), 0..=len)
        })
        .prop_map(|(b, cut)| {
            let mut end = cut.min(b.len());
            while !b.is_char_boundary(end) {
                end -= 1;
            }
            b[..end].to_string()
        })
    }

    proptest::proptest! {
        /// Whatever the server answers, it is read as rows or refused with an error that says
        /// why; it never panics.
        #[test]
        fn fuzz_sicantik_bodies_read_or_fail_cleanly(text in body()) {
            if let Err(e) = rows(&text) {
                proptest::prop_assert!(!e.0.is_empty(), "an error that says nothing");
            }
        }
    }
}
