//! Odoo domains (prefix notation, `&` implied between consecutive expressions) and `order`
//! clauses, evaluated over the simulated records as PostgreSQL would.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use super::orm::{Field, OrmError};

pub(super) enum Expr {
    True,
    False,
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Leaf {
        field: String,
        op: String,
        value: Value,
        relational: bool,
    },
}

pub(super) fn parse(domain: &Value, fields: &[Field], model: &str) -> Result<Expr, OrmError> {
    let terms = domain
        .as_array()
        .ok_or_else(|| OrmError::value(format!("Invalid domain: {domain}")))?;
    let mut pos = 0;
    let mut expr = Expr::True;
    while pos < terms.len() {
        let next = parse_one(terms, &mut pos, fields, model)?;
        expr = match expr {
            Expr::True => next,
            e => Expr::And(Box::new(e), Box::new(next)),
        };
    }
    Ok(expr)
}

fn parse_one(terms: &[Value], pos: &mut usize, fields: &[Field], model: &str) -> Result<Expr, OrmError> {
    let term = terms
        .get(*pos)
        .ok_or_else(|| OrmError::value("Invalid domain: an operator lacks operands".into()))?;
    *pos += 1;
    match term {
        Value::String(op) if op == "&" || op == "|" => {
            let a = parse_one(terms, pos, fields, model)?;
            let b = parse_one(terms, pos, fields, model)?;
            Ok(if op == "&" {
                Expr::And(Box::new(a), Box::new(b))
            } else {
                Expr::Or(Box::new(a), Box::new(b))
            })
        }
        Value::String(op) if op == "!" => Ok(Expr::Not(Box::new(parse_one(terms, pos, fields, model)?))),
        Value::Array(leaf) if leaf.len() == 3 => {
            // TRUE_LEAF and FALSE_LEAF.
            if leaf[0] == 1 && leaf[1] == "=" && leaf[2] == 1 {
                return Ok(Expr::True);
            }
            if leaf[0] == 0 && leaf[1] == "=" && leaf[2] == 1 {
                return Ok(Expr::False);
            }
            let name = leaf[0].as_str().unwrap_or_default();
            let op = leaf[1].as_str().unwrap_or_default();
            let field = fields
                .iter()
                .find(|f| f.name == name)
                .filter(|f| f.stored)
                .ok_or_else(|| {
                    OrmError::value(format!(
                        "Invalid field {model}.{name} in condition ({}, {}, {})",
                        py_repr(&leaf[0]),
                        py_repr(&leaf[1]),
                        py_repr(&leaf[2])
                    ))
                })?;
            const OPS: [&str; 13] = [
                "=",
                "!=",
                ">",
                ">=",
                "<",
                "<=",
                "in",
                "not in",
                "like",
                "ilike",
                "not ilike",
                "=like",
                "=ilike",
            ];
            if !OPS.contains(&op) {
                return Err(OrmError::value(format!(
                    "Invalid operator {} in condition",
                    py_repr(&leaf[1])
                )));
            }
            // A date alone compared with a datetime means its midnight.
            let value = match &leaf[2] {
                Value::String(s) if field.kind == "datetime" && s.len() == 10 => Value::String(format!("{s} 00:00:00")),
                other => other.clone(),
            };
            Ok(Expr::Leaf {
                field: name.to_string(),
                op: op.to_string(),
                value,
                relational: field.relation.is_some(),
            })
        }
        other => Err(OrmError::value(format!("Invalid leaf {}", py_repr(other)))),
    }
}

/// A JSON value as Python's `repr` prints it (Odoo's messages quote conditions this way).
pub(super) fn py_repr(value: &Value) -> String {
    match value {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => {
            let quote = if s.contains('\'') && !s.contains('"') {
                '"'
            } else {
                '\''
            };
            let mut out = String::from(quote);
            for c in s.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    c if c == quote => {
                        out.push('\\');
                        out.push(c);
                    }
                    c => out.push(c),
                }
            }
            out.push(quote);
            out
        }
        Value::Array(items) => format!("[{}]", items.iter().map(py_repr).collect::<Vec<_>>().join(", ")),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{}: {}", py_repr(&Value::String(k.clone())), py_repr(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

impl Expr {
    pub(super) fn matches(&self, record: &Map<String, Value>) -> bool {
        match self {
            Expr::True => true,
            Expr::False => false,
            Expr::And(a, b) => a.matches(record) && b.matches(record),
            Expr::Or(a, b) => a.matches(record) || b.matches(record),
            Expr::Not(a) => !a.matches(record),
            Expr::Leaf {
                field,
                op,
                value,
                relational,
            } => leaf(record.get(field).unwrap_or(&Value::Bool(false)), op, value, *relational),
        }
    }
}

/// The value compared: a many2one compares by id, except for text operators, which see its name.
fn leaf(stored: &Value, op: &str, wanted: &Value, relational: bool) -> bool {
    // Borrowed throughout: a page's picking lookup evaluates hundreds of leaves per record.
    let number_text;
    let (id, text): (&Value, Option<&str>) = match stored {
        Value::Array(pair) if relational && pair.len() == 2 => (&pair[0], pair[1].as_str()),
        Value::String(s) => (stored, Some(s.as_str())),
        Value::Number(n) => {
            number_text = n.to_string();
            (stored, Some(number_text.as_str()))
        }
        _ => (&Value::Bool(false), None),
    };
    let empty = matches!(stored, Value::Bool(false) | Value::Null) || matches!(stored, Value::Array(a) if a.is_empty());
    match op {
        "=" if *wanted == Value::Bool(false) => empty,
        "!=" if *wanted == Value::Bool(false) => !empty,
        "=" => !empty && compare(id, wanted) == Some(Ordering::Equal),
        "!=" => empty || compare(id, wanted) != Some(Ordering::Equal),
        ">" => !empty && compare(id, wanted) == Some(Ordering::Greater),
        ">=" => !empty && matches!(compare(id, wanted), Some(Ordering::Greater | Ordering::Equal)),
        "<" => !empty && compare(id, wanted) == Some(Ordering::Less),
        "<=" => !empty && matches!(compare(id, wanted), Some(Ordering::Less | Ordering::Equal)),
        "in" | "not in" => {
            let list = wanted.as_array().map(Vec::as_slice).unwrap_or_default();
            let found = list.iter().any(|w| {
                if *w == Value::Bool(false) {
                    empty
                } else {
                    !empty && compare(id, w) == Some(Ordering::Equal)
                }
            });
            found == (op == "in")
        }
        "like" | "ilike" | "not ilike" => {
            let pattern = wanted.as_str().unwrap_or_default();
            let hit = text.is_some_and(|t| {
                if op == "like" {
                    t.contains(pattern)
                } else if t.is_ascii() && pattern.is_ascii() {
                    let (t, p) = (t.as_bytes(), pattern.as_bytes());
                    p.is_empty() || t.windows(p.len()).any(|w| w.eq_ignore_ascii_case(p))
                } else {
                    t.to_lowercase().contains(&pattern.to_lowercase())
                }
            });
            hit == (op != "not ilike")
        }
        "=like" | "=ilike" => {
            let pattern = wanted.as_str().unwrap_or_default();
            text.is_some_and(|t| {
                if op == "=like" {
                    like(t, pattern)
                } else {
                    like(&t.to_lowercase(), &pattern.to_lowercase())
                }
            })
        }
        _ => false,
    }
}

/// SQL LIKE: `%` any run, `_` one character.
fn like(text: &str, pattern: &str) -> bool {
    let t: Vec<char> = text.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    fn go(t: &[char], p: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('%', rest)) => (0..=t.len()).any(|i| go(&t[i..], rest)),
            Some(('_', rest)) => !t.is_empty() && go(&t[1..], rest),
            Some((c, rest)) => t.first() == Some(c) && go(&t[1..], rest),
        }
    }
    go(&t, &p)
}

/// Numbers numerically, text as PostgreSQL compares this format (bytewise for ASCII).
fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Number(x), Value::String(y)) => x.as_f64()?.partial_cmp(&y.parse::<f64>().ok()?),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// Sorts by an `order` clause (`field [asc|desc], …`). Empty values sort last ascending, as
/// PostgreSQL's NULLs do.
pub(super) fn sort<'a>(
    records: &mut [&'a Map<String, Value>],
    order: &str,
    fields: &[Field],
    model: &str,
) -> Result<(), OrmError> {
    let mut keys = Vec::new();
    for part in order.split(',') {
        let mut words = part.split_whitespace();
        let name = words.next().unwrap_or_default();
        let descending = match words.next().map(str::to_lowercase).as_deref() {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(other) => {
                return Err(OrmError::value(format!(
                    "Invalid order direction {}",
                    py_repr(&Value::String(other.to_string()))
                )))
            }
        };
        if !fields.iter().any(|f| f.name == name && f.stored) {
            return Err(OrmError::value(format!("Invalid field '{name}' on model '{model}'")));
        }
        keys.push((name.to_string(), descending));
    }
    records.sort_by(|a, b| {
        for (name, descending) in &keys {
            const EMPTY: Value = Value::Bool(false);
            let key = |r: &'a Map<String, Value>| -> &'a Value {
                match r.get(name) {
                    Some(Value::Array(pair)) if pair.len() == 2 => &pair[0],
                    Some(v) => v,
                    None => &EMPTY,
                }
            };
            let (x, y) = (key(a), key(b));
            let ordering = match (*x == EMPTY, *y == EMPTY) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                _ => compare(x, y).unwrap_or(Ordering::Equal),
            };
            let ordering = if *descending { ordering.reverse() } else { ordering };
            if ordering != Ordering::Equal {
                return ordering;
            }
        }
        Ordering::Equal
    });
    Ok(())
}
