//! `docs/openapi.yaml` and the routers agree: every `(path, method)` the document describes is one a
//! worker answers and the other way round. The routers' table is `switchboard_core::routes::ROUTES`
//! (the chat worker) and `NOTIFICATIONS_ROUTES` (the notifications worker); this test also holds
//! those tables to the routers' own matches (`src/api/mod.rs`, `services/notifications/src/api.rs`),
//! read as text, so none of the four can drift from the others.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use switchboard_core::routes::{sample_path, Route, NOTIFICATIONS_ROUTES, ROUTES};

const METHODS: &[&str] = &["get", "put", "post", "delete", "options", "head", "patch", "trace"];

fn repo_file(rel: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// What the document's `paths:` section says: path → (its methods, its `x-worker`).
struct Doc {
    operations: BTreeSet<(String, String)>,
    workers: BTreeMap<String, String>,
}

/// A small reader of the document's own layout: `paths:` at the left margin, a path at two spaces,
/// its methods (and `parameters`, `servers`, `x-worker`...) at four.
fn read_paths(yaml: &str) -> Doc {
    let mut doc = Doc { operations: BTreeSet::new(), workers: BTreeMap::new() };
    let mut in_paths = false;
    let mut path: Option<String> = None;
    for line in yaml.lines() {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        if indent == 0 {
            in_paths = line.trim_end() == "paths:";
            path = None;
            continue;
        }
        if !in_paths {
            continue;
        }
        let text = line.trim();
        if indent == 2 {
            let key = text.strip_suffix(':').unwrap_or_else(|| panic!("a path key: {line:?}"));
            let key = key.trim_matches(|c| c == '\'' || c == '"');
            assert!(key.starts_with('/'), "a path key: {line:?}");
            assert!(doc.workers.insert(key.to_string(), "chat".to_string()).is_none(), "{key} twice in paths");
            path = Some(key.to_string());
        } else if indent == 4 {
            let p = path.clone().unwrap_or_else(|| panic!("a key outside a path: {line:?}"));
            let (key, value) = text.split_once(':').unwrap_or_else(|| panic!("a key: {line:?}"));
            if METHODS.contains(&key) {
                assert!(doc.operations.insert((p.clone(), key.to_uppercase())), "{key} {p} twice");
            } else if key == "x-worker" {
                doc.workers.insert(p, value.trim().to_string());
            }
        }
    }
    doc
}

fn table(rows: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    rows.iter().map(|(p, m)| (p.to_string(), m.to_string())).collect()
}

#[test]
fn openapi_document_and_routers_agree() {
    let yaml = repo_file("docs/openapi.yaml");
    assert!(yaml.lines().any(|l| l.starts_with("openapi: 3.1")), "an OpenAPI 3.1 document");
    let doc = read_paths(&yaml);
    let chat = table(ROUTES);
    let notifications = table(NOTIFICATIONS_ROUTES);
    let routers: BTreeSet<_> = chat.union(&notifications).cloned().collect();

    let undocumented: Vec<_> = routers.difference(&doc.operations).collect();
    let unrouted: Vec<_> = doc.operations.difference(&routers).collect();
    assert!(
        undocumented.is_empty() && unrouted.is_empty(),
        "docs/openapi.yaml and the routers disagree.\n  answered but not in the document: {undocumented:?}\n  \
         in the document but answered by no router: {unrouted:?}"
    );

    // A path only the notifications worker answers says so; every other path is the chat worker's.
    let chat_paths: BTreeSet<_> = chat.iter().map(|(p, _)| p.clone()).collect();
    for (path, worker) in &doc.workers {
        let want = if chat_paths.contains(path) { "chat" } else { "notifications" };
        assert_eq!(worker, want, "{path}: x-worker");
    }
}

#[test]
fn openapi_references_resolve() {
    let yaml = repo_file("docs/openapi.yaml");
    // Names defined under components: `  kind:` at two spaces, `    Name:` at four.
    let mut defined = BTreeSet::new();
    let mut in_components = false;
    let mut kind = String::new();
    for line in yaml.lines() {
        let indent = line.len() - line.trim_start().len();
        let text = line.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        if indent == 0 {
            in_components = text == "components:";
        } else if in_components && indent == 2 {
            kind = text.trim_end_matches(':').to_string();
        } else if in_components && indent == 4 && text.ends_with(':') {
            defined.insert(format!("#/components/{kind}/{}", text.trim_end_matches(':')));
        }
    }
    let mut refs = 0;
    for line in yaml.lines() {
        if let Some((_, rest)) = line.split_once("$ref:") {
            let rest = rest.trim_start();
            let quote = rest.chars().next().filter(|c| *c == '\'' || *c == '"');
            let target = match quote {
                Some(q) => rest[1..].split(q).next().unwrap_or(""),
                None => rest.split(|c: char| c == '}' || c.is_whitespace()).next().unwrap_or(""),
            };
            assert!(defined.contains(target), "unresolved $ref {target}");
            refs += 1;
        }
    }
    assert!(refs > 100, "read the document's references: {refs}");
}

/// The `(variant, method)` arms of the chat worker's match (`_` for a route handed on whole).
fn chat_router_arms() -> BTreeSet<(String, String)> {
    let src = repo_file("src/api/mod.rs");
    let mut arms = BTreeSet::new();
    for (at, _) in src.match_indices("(Route::") {
        let rest = &src[at + "(Route::".len()..];
        let arm = &rest[..rest.find("=>").expect("an arm")];
        let name: String = arm.chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
        let method = match arm.split_once("Method::") {
            Some((_, m)) => m.chars().take_while(|c| c.is_ascii_alphabetic()).collect::<String>().to_uppercase(),
            None => "_".to_string(),
        };
        arms.insert((name, method));
    }
    assert!(arms.len() > 30, "read the router's match: {arms:?}");
    arms
}

fn variant(route: &Route) -> String {
    let debug = format!("{route:?}");
    debug.split('(').next().unwrap_or(&debug).to_string()
}

#[test]
fn routes_table_matches_the_chat_router() {
    let arms = chat_router_arms();
    let whole: BTreeSet<_> = arms.iter().filter(|(_, m)| m == "_").map(|(v, _)| v.clone()).collect();
    let table: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(t, m)| {
            let route = Route::parse(&sample_path(t)).unwrap_or_else(|| panic!("{t} does not parse"));
            let v = variant(&route);
            let m = if whole.contains(&v) { "_".to_string() } else { m.to_string() };
            (v, m)
        })
        .collect();
    let missing: Vec<_> = arms.difference(&table).collect();
    let extra: Vec<_> = table.difference(&arms).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "routes::ROUTES and src/api/mod.rs disagree.\n  arms with no row: {missing:?}\n  rows with no arm: {extra:?}"
    );
}

#[test]
fn notifications_table_matches_the_notifications_router() {
    let src = repo_file("services/notifications/src/api.rs");
    let mut arms = BTreeSet::new();
    for (at, _) in src.match_indices("(\"/") {
        let rest = &src[at + 2..];
        let Some((path, after)) = rest.split_once('"') else { continue };
        let Some(method) = after.trim_start().strip_prefix(", Method::").or_else(|| after.strip_prefix(", Method::"))
        else {
            continue; // `("/path", _)`: the 405 arm
        };
        let method: String = method.chars().take_while(|c| c.is_ascii_alphabetic()).collect();
        arms.insert((path.to_string(), method.to_uppercase()));
    }
    assert_eq!(arms, table(NOTIFICATIONS_ROUTES), "routes::NOTIFICATIONS_ROUTES and services/notifications/src/api.rs");
}
