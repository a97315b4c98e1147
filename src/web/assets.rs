//! The pages, styles and scripts: files in `assets/`, compiled into the binary, so a gateway
//! on a closed network serves all of it and the build needs no Node toolchain.

use std::sync::OnceLock;

use crate::config::Language;

/// The pages; each is a shell its script fills.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Page {
    Index,
    Line,
    Panel,
}

/// A page in the server's default language (the page may switch; see `common.js`).
pub(crate) fn page(page: Page, language: Language) -> String {
    let html = match page {
        Page::Index => include_str!("assets/index.html"),
        Page::Line => include_str!("assets/line.html"),
        Page::Panel => include_str!("assets/panel.html"),
    };
    html.replace("{{lang}}", language.code())
}

/// A style sheet or script.
pub(crate) struct Asset {
    pub(crate) name: &'static str,
    pub(crate) content_type: &'static str,
    pub(crate) body: &'static str,
    etag: OnceLock<String>,
}

impl Asset {
    /// Changes when the file does (a new linegate): the browser asks, and gets it again only
    /// then.
    pub(crate) fn etag(&self) -> String {
        self.etag
            .get_or_init(|| format!("\"{:016x}\"", tag([self.body])))
            .clone()
    }
}

/// A hash of `texts` that is the same in every run (SipHash with fixed keys).
fn tag<'a>(texts: impl IntoIterator<Item = &'a str>) -> u64 {
    use std::hash::{Hash, Hasher};
    #[allow(deprecated, reason = "SipHasher's fixed keys are the point here")]
    let mut hasher = std::hash::SipHasher::new();
    for text in texts {
        text.hash(&mut hasher);
    }
    hasher.finish()
}

const fn asset(name: &'static str, content_type: &'static str, body: &'static str) -> Asset {
    Asset {
        name,
        content_type,
        body,
        etag: OnceLock::new(),
    }
}

const JS: &str = "text/javascript; charset=utf-8";

static FILES: [Asset; 5] = [
    asset("app.css", "text/css; charset=utf-8", include_str!("assets/app.css")),
    asset("common.js", JS, include_str!("assets/common.js")),
    asset("index.js", JS, include_str!("assets/index.js")),
    asset("line.js", JS, include_str!("assets/line.js")),
    asset("panel.js", JS, include_str!("assets/panel.js")),
];

/// What this build serves, as a tag: a page open across an upgrade sees it change and loads
/// the new pages.
pub(crate) fn build() -> &'static str {
    static BUILD: OnceLock<String> = OnceLock::new();
    BUILD.get_or_init(|| {
        let pages = [Page::Index, Page::Line, Page::Panel].map(|p| page(p, Language::En));
        let files = FILES.iter().map(|f| f.body);
        format!(
            "{}-{:016x}",
            env!("CARGO_PKG_VERSION"),
            tag(pages.iter().map(String::as_str).chain(files))
        )
    })
}

/// The file named `name`, if it is one of ours.
pub(crate) fn file(name: &str) -> Option<&'static Asset> {
    FILES.iter().find(|f| f.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_name_only_our_own_files_and_nothing_outside() {
        for page in [Page::Index, Page::Line, Page::Panel] {
            let html = super::page(page, Language::En);
            assert!(html.contains("lang=\"en\""), "{page:?}");
            for (at, _) in html.match_indices("/static/") {
                let name: String = html[at + 8..].chars().take_while(|c| *c != '"').collect();
                assert!(file(&name).is_some(), "{page:?} names {name}");
            }
            // No address outside the gateway, no inline script or style (the CSP forbids them).
            for forbidden in ["http:", "https:", "//", "<script>", "style=", " on"] {
                let found = html.replace("<!doctype html>", "");
                assert!(!found.contains(forbidden), "{page:?} has {forbidden}");
            }
        }
        for f in &FILES {
            assert!(
                !f.body.contains("http://") && !f.body.contains("https://"),
                "{}",
                f.name
            );
            assert!(
                !f.body.contains("innerHTML"),
                "{}: text is set as text, never as markup",
                f.name
            );
        }
    }

    #[test]
    fn every_refusal_of_the_contract_has_a_sentence_in_both_languages() {
        let contract = include_str!("../../docs/mqtt.md");
        let table = contract
            .split("| code | meaning |")
            .nth(1)
            .expect("docs/mqtt.md's refusal table");
        let codes: Vec<&str> = table
            .lines()
            .skip(2)
            .map_while(|l| l.strip_prefix("| `")?.split('`').next())
            .collect();
        assert!(codes.len() >= 15, "{codes:?}");
        let words = file("common.js").unwrap().body;
        let (indonesian, english) = words.split_once("\n  en: {").expect("both languages");
        for code in codes {
            for (language, text) in [("id", indonesian), ("en", english)] {
                assert!(
                    text.contains(&format!("err_{code}:")),
                    "{code} has no sentence in {language}"
                );
            }
        }
    }

    #[test]
    fn a_tag_is_stable_and_differs_between_files() {
        let css = file("app.css").unwrap();
        assert_eq!(css.etag(), css.etag());
        assert_ne!(css.etag(), file("line.js").unwrap().etag());
    }
}
