//! What `linegate odoo-setup` would change, decided from the configuration and what Odoo has,
//! before anything is changed: so that a refusal leaves nothing half-made, a second run finds
//! nothing to do, and `--remove` takes away only what was made.

use crate::config::Language;

use super::page;

/// A floor value as Odoo keeps it: the field type it is written as, its label in each language.
pub(crate) struct FloorValue {
    pub(crate) key: &'static str,
    pub(crate) kind: &'static str,
    en: &'static str,
    id: &'static str,
}

impl FloorValue {
    pub(crate) fn label(&self, language: Language) -> &'static str {
        match language {
            Language::En => self.en,
            Language::Id => self.id,
        }
    }
}

/// Every value of `[odoo.push.fields]`. Codes and ids are text (their leading zeros count),
/// the floor's times datetimes (naive UTC, as Odoo keeps them), the count produced a number.
pub(crate) const FLOOR_VALUES: [FloorValue; 9] = [
    value("auth_first", "char", "First sticker code", "Kode stiker pertama"),
    value("auth_last", "char", "Last sticker code", "Kode stiker terakhir"),
    value("roll_number", "char", "Roll number", "Nomor rol"),
    value("leader_id", "char", "Line leader ID", "ID ketua lini"),
    value("line", "char", "Floor line", "Lini produksi"),
    value("operator", "char", "Floor operator", "Operator lantai produksi"),
    value("date_start", "datetime", "Floor start", "Mulai di lantai produksi"),
    value("date_finished", "datetime", "Floor end", "Selesai di lantai produksi"),
    value(
        "produced",
        "integer",
        "Produced on the floor",
        "Jumlah diproduksi di lantai produksi",
    ),
];

const fn value(key: &'static str, kind: &'static str, en: &'static str, id: &'static str) -> FloorValue {
    FloorValue { key, kind, en, id }
}

/// The page's title on the MO form.
pub(crate) fn page_title(language: Language) -> &'static str {
    match language {
        Language::En => "Shop floor",
        Language::Id => "Lantai produksi",
    }
}

/// The help text of a field this command makes. It is also how a later run knows the field
/// as its own (a field Odoo had before is never taken away): the marker is in every language.
pub(crate) fn help(language: Language) -> String {
    let text = match language {
        Language::En => "Written by linegate from the shop floor; made by",
        Language::Id => "Ditulis oleh linegate dari lantai produksi; dibuat oleh",
    };
    format!("{text} {MARKER}.")
}

const MARKER: &str = "linegate odoo-setup";

pub(crate) fn made_here(help: &str) -> bool {
    help.contains(MARKER)
}

fn floor_value(key: &str) -> Option<&'static FloorValue> {
    FLOOR_VALUES.iter().find(|v| v.key == key)
}

/// A field of `mrp.production` as Odoo has it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Existing {
    pub(crate) id: i64,
    pub(crate) name: String,
    pub(crate) kind: String,
    /// Made by this command (its help carries the marker).
    pub(crate) ours: bool,
}

/// What Odoo has that the command is concerned with.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Found {
    /// `mrp.production`'s id in `ir.model`.
    pub(crate) model_id: i64,
    /// The MO form's view (`mrp.mrp_production_form_view`).
    pub(crate) form: i64,
    /// The fields the configuration maps, and every field this command made.
    pub(crate) fields: Vec<Existing>,
    /// This command's pages on the MO form (one, unless someone copied it): id and arch.
    pub(crate) pages: Vec<(i64, String)>,
}

/// One mapped value's field.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FieldStep {
    Make {
        key: &'static str,
        name: String,
        kind: &'static str,
        label: &'static str,
    },
    /// There already, of the right type: made by this command before, or Odoo's own.
    Keep {
        key: &'static str,
        name: String,
        kind: &'static str,
        ours: bool,
    },
}

impl FieldStep {
    pub(crate) fn name(&self) -> &str {
        match self {
            FieldStep::Make { name, .. } | FieldStep::Keep { name, .. } => name,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PageStep {
    Make {
        arch: String,
    },
    /// The page shows other fields or another title than the configuration says.
    Update {
        id: i64,
        arch: String,
    },
    Keep {
        id: i64,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Plan {
    pub(crate) fields: Vec<FieldStep>,
    pub(crate) page: PageStep,
    pub(crate) title: &'static str,
}

impl Plan {
    pub(crate) fn changes_nothing(&self) -> bool {
        matches!(self.page, PageStep::Keep { .. }) && self.fields.iter().all(|f| matches!(f, FieldStep::Keep { .. }))
    }
}

/// What the configuration asks that Odoo could never make, known without asking it: a name
/// without `x_`, one name for two values, a value that is not a floor value. Each names the
/// key at fault.
pub(crate) fn refusals(mapped: &[(&str, &str)]) -> Vec<String> {
    let mut refused = Vec::new();
    for (i, (key, name)) in mapped.iter().enumerate() {
        if !name.starts_with("x_") {
            refused.push(format!(
                "odoo.push.fields.{key}: `{name}` does not start with x_, as Odoo requires of a field made \
                 over the API: name it x_{name}"
            ));
        } else if name.len() > 63 {
            // PostgreSQL's longest name: the field is a column of the MOs' table.
            refused.push(format!(
                "odoo.push.fields.{key}: `{name}` is longer than Odoo's 63 characters"
            ));
        } else if let Some((other, _)) = mapped[..i].iter().find(|(_, n)| n == name) {
            refused.push(format!(
                "odoo.push.fields.{key}: `{name}` is odoo.push.fields.{other}'s field already: give each value a field of its own"
            ));
        } else if floor_value(key).is_none() {
            refused.push(format!("odoo.push.fields.{key}: not a floor value linegate knows"));
        }
    }
    refused
}

/// The steps that make Odoo show every mapped value; Err(why) for each field Odoo has with
/// another type than its value is written as (the type of a field cannot change).
pub(crate) fn plan(mapped: &[(&str, &str)], language: Language, found: &Found) -> Result<Plan, Vec<String>> {
    let mut fields = Vec::new();
    let mut clashes = Vec::new();
    for (key, name) in mapped {
        let Some(value) = floor_value(key) else { continue };
        let step = match found.fields.iter().find(|f| f.name == *name) {
            None => FieldStep::Make {
                key: value.key,
                name: name.to_string(),
                kind: value.kind,
                label: value.label(language),
            },
            Some(f) if f.kind == value.kind => FieldStep::Keep {
                key: value.key,
                name: name.to_string(),
                kind: value.kind,
                ours: f.ours,
            },
            Some(f) => {
                clashes.push(format!(
                    "odoo.push.fields.{key}: Odoo's `{name}` is a {} field, where linegate writes {} {}: map \
                     {key} to another x_ name, or remove or change that field in Odoo",
                    f.kind,
                    article(value.kind),
                    value.kind
                ));
                continue;
            }
        };
        fields.push(step);
    }
    if !clashes.is_empty() {
        return Err(clashes);
    }
    let title = page_title(language);
    let names: Vec<&str> = fields.iter().map(FieldStep::name).collect();
    let arch = page::arch(title, &names);
    let page = match found.pages.first() {
        None => PageStep::Make { arch },
        Some((id, now))
            if page::shows(now) == (Some(title.to_string()), names.iter().map(|n| n.to_string()).collect()) =>
        {
            PageStep::Keep { id: *id }
        }
        Some((id, _)) => PageStep::Update { id: *id, arch },
    };
    Ok(Plan { fields, page, title })
}

fn article(kind: &str) -> &'static str {
    if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(fields: Vec<Existing>, pages: Vec<(i64, String)>) -> Found {
        Found {
            model_id: 490,
            form: 843,
            fields,
            pages,
        }
    }

    fn existing(id: i64, name: &str, kind: &str, ours: bool) -> Existing {
        Existing {
            id,
            name: name.into(),
            kind: kind.into(),
            ours,
        }
    }

    const MAPPED: [(&str, &str); 3] = [
        ("roll_number", "x_roll_number"),
        ("produced", "x_produced"),
        ("date_start", "x_floor_start"),
    ];

    #[test]
    fn on_a_bare_odoo_every_field_and_the_page_are_made_with_their_types_and_labels() {
        let plan = plan(&MAPPED, Language::Id, &found(vec![], vec![])).unwrap();
        assert_eq!(
            plan.fields,
            [
                FieldStep::Make {
                    key: "roll_number",
                    name: "x_roll_number".into(),
                    kind: "char",
                    label: "Nomor rol"
                },
                FieldStep::Make {
                    key: "produced",
                    name: "x_produced".into(),
                    kind: "integer",
                    label: "Jumlah diproduksi di lantai produksi"
                },
                FieldStep::Make {
                    key: "date_start",
                    name: "x_floor_start".into(),
                    kind: "datetime",
                    label: "Mulai di lantai produksi"
                },
            ]
        );
        let PageStep::Make { arch } = &plan.page else {
            panic!("{:?}", plan.page)
        };
        assert_eq!(
            page::shows(arch),
            (
                Some("Lantai produksi".into()),
                vec!["x_roll_number".into(), "x_produced".into(), "x_floor_start".into()]
            )
        );
        assert!(!plan.changes_nothing());
    }

    #[test]
    fn what_is_there_is_kept_and_a_second_run_changes_nothing() {
        let made = plan(&MAPPED, Language::En, &found(vec![], vec![])).unwrap();
        let PageStep::Make { arch } = made.page else { panic!() };
        let fields = vec![
            existing(1, "x_roll_number", "char", false),
            existing(2, "x_produced", "integer", true),
            existing(3, "x_floor_start", "datetime", true),
        ];
        let again = plan(&MAPPED, Language::En, &found(fields.clone(), vec![(899, arch.clone())])).unwrap();
        assert!(again.changes_nothing(), "{again:?}");
        assert_eq!(
            again.fields[0],
            FieldStep::Keep {
                key: "roll_number",
                name: "x_roll_number".into(),
                kind: "char",
                ours: false
            }
        );
        // A value mapped since, or the page in another language, updates the page
        let fewer = plan(
            &MAPPED[..2],
            Language::En,
            &found(fields.clone(), vec![(899, arch.clone())]),
        )
        .unwrap();
        assert!(matches!(fewer.page, PageStep::Update { id: 899, .. }), "{fewer:?}");
        let other = plan(&MAPPED, Language::Id, &found(fields, vec![(899, arch)])).unwrap();
        assert!(matches!(other.page, PageStep::Update { id: 899, .. }), "{other:?}");
    }

    #[test]
    fn a_field_of_another_type_is_refused_naming_the_key_and_both_types() {
        let fields = vec![
            existing(1, "x_produced", "char", false),
            existing(2, "x_floor_start", "date", false),
        ];
        let refused = plan(&MAPPED, Language::En, &found(fields, vec![])).unwrap_err();
        assert_eq!(
            refused,
            [
                "odoo.push.fields.produced: Odoo's `x_produced` is a char field, where linegate writes an integer: \
                 map produced to another x_ name, or remove or change that field in Odoo",
                "odoo.push.fields.date_start: Odoo's `x_floor_start` is a date field, where linegate writes a \
                 datetime: map date_start to another x_ name, or remove or change that field in Odoo",
            ]
        );
    }

    #[test]
    fn names_odoo_could_never_make_are_refused_before_asking_it() {
        let mapped = [
            ("roll_number", "roll"),
            ("auth_first", "x_code"),
            ("auth_last", "x_code"),
            ("line", "x_line"),
        ];
        let refused = refusals(&mapped);
        assert_eq!(refused.len(), 2, "{refused:?}");
        assert!(refused[0].starts_with("odoo.push.fields.roll_number: `roll` does not start with x_"));
        assert!(refused[1].starts_with("odoo.push.fields.auth_last: `x_code` is odoo.push.fields.auth_first's"));
        assert!(refusals(&MAPPED).is_empty());
    }

    #[test]
    fn every_mapped_key_is_a_floor_value_and_the_marker_survives_a_language() {
        let every = crate::config::PushFields {
            auth_first: Some("x_a".into()),
            auth_last: Some("x_b".into()),
            roll_number: Some("x_c".into()),
            leader_id: Some("x_d".into()),
            line: Some("x_e".into()),
            operator: Some("x_f".into()),
            date_start: Some("x_g".into()),
            date_finished: Some("x_h".into()),
            produced: Some("x_i".into()),
        };
        let keys: Vec<&str> = every.mapped().iter().map(|(k, _)| *k).collect();
        let values: Vec<&str> = FLOOR_VALUES.iter().map(|v| v.key).collect();
        assert_eq!(keys, values);
        assert!(made_here(&help(Language::En)) && made_here(&help(Language::Id)));
        assert!(!made_here("Roll number, typed by the planner"));
    }
}
