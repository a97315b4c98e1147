//! TOML and deserialization errors, named by the dotted key they are about.

use super::ConfigError;

/// A TOML or deserialization error, named by the dotted key it is about. serde's messages name
/// only the last part of a key (`unknown field \`foo\``) or none at all (`invalid type: string
/// "abc", expected u32`), so the key is found from where the error points in the document.
pub(super) fn toml_error(text: &str, e: &toml::de::Error) -> ConfigError {
    let message = e.message().trim().replace('\n', " ");
    let Some(span) = e.span() else {
        let key = quoted_name(&message).unwrap_or("(syntax)").to_string();
        return ConfigError::new(key, message);
    };
    let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
    let key = match key_at(text, span.start) {
        // A table is named when one of its keys is missing: add that key.
        Some((path, true)) if message.starts_with("missing field") => match quoted_name(&message) {
            Some(field) => format!("{path}.{field}"),
            None => path,
        },
        Some((path, _)) => path,
        None => quoted_name(&message).unwrap_or("(syntax)").to_string(),
    };
    ConfigError::new(key, format!("line {line}: {message}"))
}

/// The first `name` quoted in backticks in a serde message.
fn quoted_name(message: &str) -> Option<&str> {
    message.split('`').nth(1)
}

/// The dotted path of the key or value at byte `offset` of `text`, and whether it is a table.
fn key_at(text: &str, offset: usize) -> Option<(String, bool)> {
    let (document, _) = toml::de::DeTable::parse_recoverable(text);
    let mut path = Vec::new();
    let found = locate(document.get_ref(), offset, &mut path)?;
    Some((path.join("."), found))
}

/// Walks `table` for the entry whose key or value covers `offset`, leaving its path in `path`.
/// Nested tables are searched first: a `[table]`'s span is its header, away from its keys.
fn locate(table: &toml::de::DeTable, offset: usize, path: &mut Vec<String>) -> Option<bool> {
    use toml::de::DeValue;
    let covers = |span: std::ops::Range<usize>| span.contains(&offset);
    for (key, value) in table.iter() {
        path.push(key.get_ref().to_string());
        if covers(key.span()) {
            return Some(matches!(value.get_ref(), DeValue::Table(_)));
        }
        let children: Vec<&toml::de::DeTable> = match value.get_ref() {
            DeValue::Table(t) => vec![t],
            DeValue::Array(items) => items
                .iter()
                .filter_map(|item| match item.get_ref() {
                    DeValue::Table(t) => Some(t),
                    _ => None,
                })
                .collect(),
            _ => vec![],
        };
        for child in children {
            if let Some(is_table) = locate(child, offset, path) {
                return Some(is_table);
            }
        }
        if covers(value.span()) {
            return Some(matches!(value.get_ref(), DeValue::Table(_)));
        }
        path.pop();
    }
    None
}
