//! Odoo domains in the config (`odoo.mo_domain`), checked as Odoo reads them: their shape, and
//! whether they keep a gateway to its own line group.

use serde_json::Value;

/// `mrp.production` fields that say where an MO is made: its work orders' work centers, and
/// its operation type (one per production line or warehouse). A dotted path counts when it
/// ends at one (`workorder_ids.workcenter_id`), or at its `id` or `name`; one that goes on to
/// another field (`picking_type_id.company_id`) selects by that field instead.
pub(super) const LINE_GROUP_FIELDS: [&str; 3] = ["workcenter_id", "workcenter_ids", "picking_type_id"];

/// Odoo's `normalize_domain`, as a check: the count of expressions still expected, where a
/// complete expression followed by more terms gets an implicit `&` in front (so
/// `[A, "|", B, C]` is `A & (B | C)`), and any operator still short of operands at the end
/// makes the domain "syntactically not correct". Checking it here turns what would be an
/// Odoo error on every sync into a configuration error at start.
pub(super) fn check_arity(terms: &[Value]) -> Result<(), String> {
    let mut expected: usize = 1;
    for term in terms {
        if expected == 0 {
            expected = 1;
        }
        match term {
            Value::String(op) if op == "&" || op == "|" => expected += 1,
            Value::String(op) if op == "!" => {}
            Value::Array(leaf) if is_leaf(leaf) => expected -= 1,
            other => return Err(format!("not a domain term: {other}")),
        }
    }
    if !terms.is_empty() && expected > 0 {
        return Err("an operator lacks operands".into());
    }
    Ok(())
}

/// `[field, operator, value]`, or Odoo's TRUE_LEAF `[1, "=", 1]` / FALSE_LEAF `[0, "=", 1]`.
fn is_leaf(leaf: &[Value]) -> bool {
    let constant = |v: &Value| *v == 0 || *v == 1;
    leaf.len() == 3 && (leaf[0].is_string() || constant(&leaf[0])) && leaf[1].is_string()
}

/// The leaves of a domain (checked by [`check_arity`]) that restrict every MO it selects to
/// some line group: by one of [`LINE_GROUP_FIELDS`] or of `also` (the site's own fields), to
/// given values. Empty when some MO could get through without one: two gateways with such
/// domains can both hold an MO, and both report on it.
///
/// A leaf under `|` counts only when the other side restricts too; one under `!` never does
/// (`not on line 1` is every other line).
pub(super) fn line_group_leaves<'a>(terms: &'a [Value], also: &[String]) -> Vec<&'a Value> {
    // Prefix notation, read from the end: each operator takes the values of the expressions
    // after it. Iterative, so that no nesting of the file's makes a deep recursion.
    let mut stack: Vec<Vec<&Value>> = Vec::new();
    for term in terms.iter().rev() {
        let restricting = match term.as_str() {
            Some("!") => {
                stack.pop();
                Vec::new()
            }
            Some(op @ ("&" | "|")) => {
                let (first, second) = (stack.pop().unwrap_or_default(), stack.pop().unwrap_or_default());
                match op {
                    "&" => [first, second].concat(),
                    _ if first.is_empty() || second.is_empty() => Vec::new(),
                    _ => [first, second].concat(),
                }
            }
            _ if restricts(term, also) => vec![term],
            _ => Vec::new(),
        };
        stack.push(restricting);
    }
    // What is left is ANDed.
    stack.into_iter().rev().flatten().collect()
}

/// Whether a leaf keeps MOs to given values of a line-group field.
fn restricts(leaf: &Value, also: &[String]) -> bool {
    let Some([Value::String(path), Value::String(operator), value]) = leaf.as_array().map(Vec::as_slice) else {
        return false;
    };
    let by_group = names_line_group(path, also);
    match operator.as_str() {
        // A subdomain on a related model (`workorder_ids any [workcenter_id in …]`), or on the
        // line group's own records (`picking_type_id any [id = 7]`). Its depth is bounded by
        // the JSON parser's.
        "any" => {
            let Value::Array(terms) = value else { return false };
            let mut inner = also.to_vec();
            if by_group {
                inner.extend(["id".to_string(), "name".to_string()]);
            }
            !line_group_leaves(terms, &inner).is_empty()
        }
        // `!=`, `not in`, `>`: what they let through is everything else, and so is `= false`.
        "=" | "in" | "child_of" | "parent_of" => {
            by_group
                && match value {
                    Value::Null | Value::Bool(false) => false,
                    Value::Array(values) => !values.is_empty(),
                    Value::String(text) => !text.is_empty(),
                    _ => true,
                }
        }
        // A pattern of wildcards alone matches every name.
        "like" | "ilike" | "=like" | "=ilike" => {
            by_group && value.as_str().is_some_and(|p| p.chars().any(|c| c != '%' && c != '_'))
        }
        _ => false,
    }
}

/// Whether `path` ends at a line-group field (or at its `id` or `name`).
fn names_line_group(path: &str, also: &[String]) -> bool {
    let parts: Vec<&str> = path.split('.').collect();
    let field = match parts.as_slice() {
        [.., field, "id" | "name"] => field,
        [.., field] => field,
        [] => return false,
    };
    LINE_GROUP_FIELDS.contains(field) || also.iter().any(|f| f == field || f == path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(domain: &str, also: &[&str]) -> usize {
        let terms: Value = serde_json::from_str(domain).unwrap();
        let terms = terms.as_array().unwrap();
        check_arity(terms).unwrap();
        let also: Vec<String> = also.iter().map(|f| f.to_string()).collect();
        line_group_leaves(terms, &also).len()
    }

    #[test]
    fn a_domain_restricts_by_line_group_only_when_every_mo_it_selects_must_match_one() {
        let state = r#"["state", "in", ["confirmed", "progress"]]"#;
        let line1 = r#"["workorder_ids.workcenter_id", "in", [1]]"#;
        let line2 = r#"["picking_type_id", "=", 7]"#;
        // By a work center or an operation type, beside other terms or alone
        assert_eq!(leaves(&format!("[{state}, {line1}]"), &[]), 1);
        assert_eq!(leaves(&format!("[{line2}]"), &[]), 1);
        assert_eq!(leaves(&format!(r#"["&", {state}, {line2}]"#), &[]), 1);
        assert_eq!(leaves(r#"[["picking_type_id.id", "=", 2]]"#, &[]), 1);
        assert_eq!(
            leaves(r#"[["workorder_ids.workcenter_id.name", "=ilike", "press%"]]"#, &[]),
            1
        );
        // A subdomain on the work orders, or on the operation type's own records
        assert_eq!(
            leaves(r#"[["workorder_ids", "any", [["workcenter_id", "in", [3]]]]]"#, &[]),
            1
        );
        assert_eq!(leaves(r#"[["picking_type_id", "any", [["id", "=", 7]]]]"#, &[]), 1);
        // Either of two line groups: still a line group
        assert_eq!(leaves(&format!(r#"["|", {line1}, {line2}]"#), &[]), 2);
        assert_eq!(leaves(&format!(r#"[{state}, "|", {line1}, {line2}]"#), &[]), 2);
        // A site's own field counts once configured
        let own = r#"["x_line_group", "=", "press"]"#;
        assert_eq!(leaves(&format!("[{state}, {own}]"), &[]), 0);
        assert_eq!(leaves(&format!("[{state}, {own}]"), &["x_line_group"]), 1);
        // Not restricted: the default, a line group OR anything, a negation, "not this one",
        // "none", no values
        assert_eq!(leaves(&format!("[{state}]"), &[]), 0);
        assert_eq!(leaves("[]", &[]), 0);
        assert_eq!(leaves(&format!(r#"["|", {line1}, {state}]"#), &[]), 0);
        assert_eq!(leaves(&format!(r#"["!", {line1}]"#), &[]), 0);
        assert_eq!(leaves(&format!(r#"["!", "!", {line1}]"#), &[]), 0);
        assert_eq!(leaves(r#"[["picking_type_id", "!=", 7]]"#, &[]), 0);
        assert_eq!(leaves(r#"[["picking_type_id", "=", false]]"#, &[]), 0);
        assert_eq!(leaves(r#"[["workcenter_id", "in", []]]"#, &[]), 0);
        // A field that only contains a line-group field's name is not one, nor a path that goes
        // on from one to another field, nor a pattern of wildcards, nor an id under another model
        assert_eq!(leaves(r#"[["x_workcenter_id_old", "=", 1]]"#, &[]), 0);
        assert_eq!(leaves(r#"[["picking_type_id.code", "=", "mrp_operation"]]"#, &[]), 0);
        assert_eq!(leaves(r#"[["workcenter_id.company_id", "=", 1]]"#, &[]), 0);
        assert_eq!(leaves(r#"[["workorder_ids.workcenter_id", "ilike", "%"]]"#, &[]), 0);
        assert_eq!(
            leaves(r#"[["workorder_ids", "any", [["state", "=", "ready"]]]]"#, &[]),
            0
        );
        assert_eq!(leaves(r#"[["workorder_ids", "any", [["id", "=", 3]]]]"#, &[]), 0);
        assert_eq!(
            leaves(r#"[["workorder_ids", "not any", [["workcenter_id", "in", [3]]]]]"#, &[]),
            0
        );
    }

    #[test]
    fn a_deeply_nested_domain_is_read_without_recursion() {
        let mut terms = vec![Value::from("!"); 200_000];
        terms.push(serde_json::json!(["picking_type_id", "=", 1]));
        check_arity(&terms).unwrap();
        assert!(line_group_leaves(&terms, &[]).is_empty());
    }
}
