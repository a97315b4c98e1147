//! The house keeps its shape: every `crate::` path in `src/` points at a room on its own layer or
//! below, as the table in `src/lib.rs` lays them out, and no rooms import each other in a
//! circle. A new room must be given a layer there before it can be used.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Room → layer (0 is the top), from the table in lib.rs's layout section.
fn layers() -> BTreeMap<String, usize> {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let mut layers = BTreeMap::new();
    let rows = lib
        .lines()
        .filter_map(|l| l.strip_prefix("//! |"))
        .filter(|row| !row.trim_start().starts_with("layer") && !row.trim_start().starts_with('-'));
    for (depth, row) in rows.enumerate() {
        let rooms = row.split('|').nth(1).expect("a layer row has its rooms");
        for room in rooms.split(',') {
            layers.insert(room.trim().to_string(), depth);
        }
    }
    assert!(
        layers.len() > 10,
        "lib.rs's layout table is missing or unreadable: {layers:?}"
    );
    layers
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level rooms a file names through `crate::`, unit tests left out.
fn imports(text: &str) -> BTreeSet<String> {
    let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or(text);
    let mut found = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // The group's own top-level items: `{a::{b, c}, d}` names a and d.
            let mut depth = 0;
            let mut name = String::new();
            let mut naming = true;
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => naming = true,
                    c if naming && depth == 0 && (c.is_alphanumeric() || c == '_') => name.push(c),
                    c if naming && depth == 0 && c.is_whitespace() && name.is_empty() => {}
                    _ => {
                        if naming && !name.is_empty() {
                            found.insert(std::mem::take(&mut name));
                        }
                        naming = false;
                    }
                }
                if c == ',' && depth == 0 && !name.is_empty() {
                    found.insert(std::mem::take(&mut name));
                }
            }
            if !name.is_empty() {
                found.insert(name);
            }
        } else {
            found.insert(rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect());
        }
    }
    found.retain(|n| !n.is_empty() && n != "self");
    found
}

/// Which rooms each room imports.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    sources(&src(), &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(src()).unwrap();
        let room = relative.components().next().unwrap().as_os_str().to_string_lossy();
        let room = room.trim_end_matches(".rs").to_string();
        if room == "lib" || room == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let used: Vec<String> = imports(&text).into_iter().filter(|u| *u != room).collect();
        graph.entry(room).or_default().extend(used);
    }
    graph
}

#[test]
fn every_room_has_a_layer_and_imports_point_down_or_sideways() {
    let layers = layers();
    let mut wrong = Vec::new();
    for (room, used) in graph() {
        let Some(&mine) = layers.get(&room) else {
            wrong.push(format!("{room} has no layer in lib.rs"));
            continue;
        };
        for u in used {
            match layers.get(&u) {
                None => wrong.push(format!("{room} uses {u}, which has no layer in lib.rs")),
                Some(&theirs) if theirs < mine => wrong.push(format!("{room} imports {u} from a layer above it")),
                Some(_) => {}
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn no_rooms_import_each_other_in_a_circle() {
    let graph = graph();
    // Depth-first search for a back edge.
    fn visit(
        room: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|r| r == room) {
            let mut cycle = path[at..].to_vec();
            cycle.push(room.to_string());
            return Some(cycle);
        }
        if !done.insert(room.to_string()) {
            return None;
        }
        path.push(room.to_string());
        for next in graph.get(room).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    for room in graph.keys() {
        let cycle = visit(room, &graph, &mut Vec::new(), &mut done);
        assert!(cycle.is_none(), "import cycle: {}", cycle.unwrap().join(" -> "));
    }
}

#[test]
fn the_checker_sees_imports_and_groups() {
    let text = "use crate::store::{self, Store};\nuse crate::{clock, mo::{Phase, MoRow}, uplink};\nfn f() { crate::http::client(); }\n#[cfg(test)]\nmod tests { use crate::app; }";
    assert_eq!(
        imports(text),
        ["clock", "http", "mo", "store", "uplink"]
            .map(String::from)
            .into_iter()
            .collect()
    );
}

#[test]
fn only_the_command_room_reaches_the_protected_writer() {
    // The store writes protected columns only inside store::command's transaction; only the
    // command layer may call it.
    let mut files = Vec::new();
    sources(&src(), &mut files);
    let callers: Vec<String> = files
        .iter()
        .filter(|f| !f.starts_with(src().join("store")) && !f.starts_with(src().join("command")))
        .filter(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            text.contains("store::command") || text.contains("exactly_once")
        })
        .map(|f| f.display().to_string())
        .collect();
    assert!(callers.is_empty(), "outside the command layer: {callers:?}");
}
