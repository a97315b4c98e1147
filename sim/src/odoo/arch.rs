//! View architectures as Odoo combines them: an inheriting view's `<xpath expr="…"
//! position="…">` specs applied to its parent's arch, and the fields an arch names. Enough XML
//! for the views the simulator keeps: paths `//tag` and `//tag[@name='…']`, positions
//! `inside`, `before`, `after` and `replace`, specs alone or in a `<data>` root.

/// One `<xpath>` of an inheriting view.
pub(super) struct Spec {
    expr: String,
    position: String,
    content: String,
}

/// An element found in a document: where its opening tag starts and ends, where its closing
/// tag starts and ends (a self-closing one's `inner`, `close` and `end` coincide).
struct Element {
    open: usize,
    inner: usize,
    close: usize,
    end: usize,
}

/// The specs of an inheriting arch; Err(why) for what the simulator cannot read.
pub(super) fn specs(arch: &str) -> Result<Vec<Spec>, String> {
    let arch = arch.trim();
    let body = match find(arch, "data", None) {
        Some(data) if data.open == 0 && data.end == arch.len() => &arch[data.inner..data.close],
        _ => arch,
    };
    let mut specs = Vec::new();
    let mut rest = body;
    while !rest.trim().is_empty() {
        let xpath = find(rest, "xpath", None).filter(|x| rest[..x.open].trim().is_empty());
        let Some(xpath) = xpath else {
            return Err(format!("(simulated) only <xpath> specs are modelled: {}", rest.trim()));
        };
        let start_tag = &rest[xpath.open..xpath.inner];
        let expr = attr(start_tag, "expr").ok_or("an <xpath> without expr")?;
        specs.push(Spec {
            expr,
            position: attr(start_tag, "position").unwrap_or_else(|| "inside".into()),
            content: rest[xpath.inner..xpath.close].to_string(),
        });
        rest = &rest[xpath.end..];
    }
    Ok(specs)
}

/// `parent` with `specs` applied in order; Err(the expr) of the first that locates nothing.
pub(super) fn apply(parent: &str, specs: &[Spec]) -> Result<String, String> {
    let mut doc = parent.to_string();
    for spec in specs {
        let Some((tag, name)) = path(&spec.expr) else {
            return Err(spec.expr.clone());
        };
        let Some(at) = find(&doc, tag, name.as_deref()) else {
            return Err(spec.expr.clone());
        };
        let content = &spec.content;
        match spec.position.as_str() {
            "inside" if at.inner == at.end => {
                // `<tag …/>` becomes `<tag …>content</tag>`.
                let open = doc[at.open..at.end].trim_end_matches("/>").trim_end().to_string();
                doc.replace_range(at.open..at.end, &format!("{open}>{content}</{tag}>"));
            }
            "inside" => doc.insert_str(at.close, content),
            "before" => doc.insert_str(at.open, content),
            "after" => doc.insert_str(at.end, content),
            "replace" => doc.replace_range(at.open..at.end, content),
            _ => return Err(spec.expr.clone()),
        }
    }
    Ok(doc)
}

/// The `name` of every `<field>` in an arch, in order.
pub(super) fn field_names(arch: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut from = 0;
    while let Some(at) = next_open(arch, "field", from) {
        let end = arch[at..].find('>').map_or(arch.len(), |e| at + e + 1);
        names.extend(attr(&arch[at..end], "name"));
        from = end;
    }
    names
}

/// The start of the first element of `tag` at or after `from`.
fn next_open(doc: &str, tag: &str, from: usize) -> Option<usize> {
    let opener = format!("<{tag}");
    let mut from = from;
    while let Some(at) = doc.get(from..)?.find(&opener).map(|i| i + from) {
        from = at + opener.len();
        if doc[from..].starts_with(|c: char| c.is_whitespace() || c == '>' || c == '/') {
            return Some(at);
        }
    }
    None
}

/// The first element of `tag` (with that `name` attribute, when given).
fn find(doc: &str, tag: &str, name: Option<&str>) -> Option<Element> {
    let closer = format!("</{tag}>");
    let mut from = 0;
    while let Some(open) = next_open(doc, tag, from) {
        let inner = open + doc[open..].find('>')? + 1;
        from = inner;
        if name.is_some_and(|n| attr(&doc[open..inner], "name").as_deref() != Some(n)) {
            continue;
        }
        if doc[open..inner].ends_with("/>") {
            return Some(Element {
                open,
                inner,
                close: inner,
                end: inner,
            });
        }
        // Its closing tag: the first one that is not a nested element's.
        let mut depth = 1;
        let mut pos = inner;
        loop {
            let close = pos + doc[pos..].find(&closer)?;
            match next_open(doc, tag, pos).filter(|o| *o < close) {
                Some(nested) => {
                    let nested_end = nested + doc[nested..].find('>')? + 1;
                    if !doc[nested..nested_end].ends_with("/>") {
                        depth += 1;
                    }
                    pos = nested_end;
                }
                None => {
                    depth -= 1;
                    pos = close + closer.len();
                    if depth == 0 {
                        return Some(Element {
                            open,
                            inner,
                            close,
                            end: pos,
                        });
                    }
                }
            }
        }
    }
    None
}

/// `//tag` or `//tag[@name='…']`: the tag and the name.
fn path(expr: &str) -> Option<(&str, Option<String>)> {
    let rest = expr.strip_prefix("//")?;
    match rest.split_once('[') {
        None => rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
            .then_some((rest, None)),
        Some((tag, filter)) => {
            let value = filter.strip_prefix("@name=")?.strip_suffix(']')?;
            let name = value
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .or_else(|| value.strip_prefix('"').and_then(|v| v.strip_suffix('"')))?;
            Some((tag, Some(name.to_string())))
        }
    }
}

/// An attribute's value in a start tag, its entities decoded.
fn attr(start_tag: &str, name: &str) -> Option<String> {
    let mut from = 0;
    while let Some(at) = start_tag[from..].find(name).map(|i| i + from) {
        from = at + name.len();
        let before = start_tag[..at].chars().next_back();
        let rest = start_tag[from..].trim_start();
        if !before.is_some_and(char::is_whitespace) || !rest.starts_with('=') {
            continue;
        }
        let rest = rest[1..].trim_start();
        let quote = rest.chars().next().filter(|q| *q == '"' || *q == '\'')?;
        let value = &rest[1..];
        let value = &value[..value.find(quote)?];
        return Some(
            value
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&amp;", "&"),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORM: &str = r#"<form><sheet><notebook><page string="A" name="a"><field name="x"/></page></notebook></sheet><chatter/></form>"#;

    #[test]
    fn a_page_goes_inside_the_notebook_and_its_fields_are_named() {
        let specs = specs(r#"<xpath expr="//notebook" position="inside"><page string="B &amp; C" name="b"><field name="y"/></page></xpath>"#).unwrap();
        let combined = apply(FORM, &specs).unwrap();
        assert_eq!(
            combined,
            r#"<form><sheet><notebook><page string="A" name="a"><field name="x"/></page><page string="B &amp; C" name="b"><field name="y"/></page></notebook></sheet><chatter/></form>"#
        );
        assert_eq!(field_names(&combined), ["x", "y"]);
    }

    #[test]
    fn named_paths_positions_and_data_roots_apply_and_a_missing_element_is_named() {
        let arch = r#"<data><xpath expr="//page[@name='a']" position="after"><page name="c"/></xpath>
            <xpath expr="//chatter" position="before"><div/></xpath></data>"#;
        let combined = apply(FORM, &specs(arch).unwrap()).unwrap();
        assert!(
            combined.contains(r#"</page><page name="c"/></notebook></sheet><div/><chatter/>"#),
            "{combined}"
        );
        let missing = specs(r#"<xpath expr="//page[@name='zz']" position="inside"/>"#).unwrap();
        assert_eq!(apply(FORM, &missing).unwrap_err(), "//page[@name='zz']");
    }
}
