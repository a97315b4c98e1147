//! The "Shop floor" page on the MO form: the arch of a view inheriting
//! `mrp.mrp_production_form_view`, as recorded on 19.0, and what an arch read back shows. Odoo
//! may store the arch re-serialised, so a view is compared by what it shows (its title and
//! fields), not byte for byte.

/// The view's name: how the command finds its page again.
pub(crate) const VIEW_NAME: &str = "linegate.mo.form";

/// A page named `linegate` in the form's notebook, titled `title`, showing `fields`.
pub(crate) fn arch(title: &str, fields: &[&str]) -> String {
    let fields: String = fields
        .iter()
        .map(|f| format!("<field name=\"{}\"/>", escape(f)))
        .collect();
    format!(
        "<xpath expr=\"//notebook\" position=\"inside\"><page string=\"{}\" name=\"linegate\"><group>{fields}</group></page></xpath>",
        escape(title)
    )
}

/// The title of the page an arch adds, and the fields it shows, in order.
pub(crate) fn shows(arch: &str) -> (Option<String>, Vec<String>) {
    let title = start_tags(arch, "<page").first().and_then(|tag| attr(tag, "string"));
    let fields = start_tags(arch, "<field")
        .iter()
        .filter_map(|tag| attr(tag, "name"))
        .collect();
    (title, fields)
}

/// The start tags (`<tag …>` or `<tag …/>`) that begin with `opener` (`<tag`).
fn start_tags<'a>(arch: &'a str, opener: &str) -> Vec<&'a str> {
    let mut tags = Vec::new();
    for (at, _) in arch.match_indices(opener) {
        let rest = &arch[at + opener.len()..];
        let boundary = rest.starts_with(|c: char| c.is_whitespace() || c == '>' || c == '/');
        if let Some(end) = rest.find('>').filter(|_| boundary) {
            tags.push(&arch[at..at + opener.len() + end + 1]);
        }
    }
    tags
}

/// An attribute's value, in double or single quotes, its entities decoded.
fn attr(tag: &str, name: &str) -> Option<String> {
    tag.match_indices(name).find_map(|(at, _)| {
        let spaced = tag[..at].ends_with(char::is_whitespace);
        let rest = tag[at + name.len()..].trim_start().strip_prefix('=')?.trim_start();
        let quote = rest.chars().next().filter(|q| *q == '"' || *q == '\'')?;
        let value = &rest[1..];
        let value = &value[..value.find(quote)?];
        spaced.then(|| unescape(value))
    })
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_is_the_recorded_arch_and_reads_back_as_what_it_shows() {
        let arch = arch("Shop floor", &["x_roll_number"]);
        assert_eq!(
            arch,
            "<xpath expr=\"//notebook\" position=\"inside\"><page string=\"Shop floor\" name=\"linegate\"><group>\
             <field name=\"x_roll_number\"/></group></page></xpath>"
        );
        assert_eq!(shows(&arch), (Some("Shop floor".into()), vec!["x_roll_number".into()]));
    }

    #[test]
    fn an_arch_odoo_serialised_again_shows_the_same() {
        let stored = "<xpath expr='//notebook' position='inside'>\n  <page name='linegate' string='A &amp; B'>\n    \
                      <group>\n      <field name='x_a' />\n      <field  name=\"x_b\"></field>\n    </group>\n  </page>\n</xpath>";
        assert_eq!(shows(stored), (Some("A & B".into()), vec!["x_a".into(), "x_b".into()]));
        assert_eq!(shows(&arch("A & B", &["x_a", "x_b"])), shows(stored));
    }
}
