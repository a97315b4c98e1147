//! The two languages linegate speaks to people: Bahasa Indonesia (the floor's) and English.

use serde::Deserialize;

/// `id` (Bahasa Indonesia) or `en`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    En,
    Id,
}

impl Language {
    /// Its code, as a page's `lang` says it.
    pub(crate) fn code(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::Id => "id",
        }
    }

    /// Its name, in itself.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Language::En => "English",
            Language::Id => "Bahasa Indonesia",
        }
    }
}
