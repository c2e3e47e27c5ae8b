//! `docs/pipl-map.md` stays honest (issue 9): every test it names as `<file>::<function>`
//! is a test function of that file, every source it maps has its section, and every row
//! names a test or says plainly what is missing (`gap:`). Whether a test really proves its
//! row is for review to judge; this only keeps the map from pointing at nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The map, from the repository's root.
const MAP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/pipl-map.md");

/// The repository's root, against which the map's paths are read.
const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// The sections the map must have: each is a heading that holds one of these, followed by
/// at least one row.
const SECTIONS: &[&str] = &[
    "PIPL art. 44",
    "PIPL art. 45",
    "PIPL art. 46",
    "PIPL art. 47",
    "PIPL art. 48",
    "PIPL art. 49",
    "PIPL art. 50",
    "NDSMR art. 23",
    "NDSMR art. 25",
    "GB/T 35273 §8.1",
    "GB/T 35273 §8.2",
    "GB/T 35273 §8.3",
    "GB/T 35273 §8.4",
    "GB/T 35273 §8.5",
    "GB/T 35273 §8.6",
    "GB/T 35273 §8.7",
    "GB/T 35273 §8.8",
    "Policy §六",
    "Policy §八",
];

/// What a row says when the obligation is not (or only partly) kept.
const GAP: &str = "gap:";

/// A test named by the map: the file, from the repository's root, and the function.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct TestRef {
    path: String,
    name: String,
}

impl std::fmt::Display for TestRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}::{}", self.path, self.name)
    }
}

fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-')
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Every `<path>.rs::<name>` in `text`, in order.
fn references(text: &str) -> Vec<TestRef> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find("::").map(|i| from + i) {
        from = at + 2;
        let before = &text[..at];
        let start = before
            .char_indices()
            .rev()
            .take_while(|&(_, c)| is_path_char(c))
            .last()
            .map_or(at, |(i, _)| i);
        let path = &text[start..at];
        if !path.ends_with(".rs") {
            continue;
        }
        let after = &text[from..];
        let end = after
            .char_indices()
            .find(|&(_, c)| !is_ident_char(c))
            .map_or(after.len(), |(i, _)| i);
        found.push(TestRef {
            path: path.to_owned(),
            name: after[..end].to_owned(),
        });
    }
    found
}

/// The name of the function `line` declares, if it declares one: `fn name(` or
/// `fn name<`, after qualifiers or attributes only.
fn declared_fn(line: &str) -> Option<(&str, &str)> {
    let at = if line.trim_start().starts_with("fn ") {
        line.find("fn ")?
    } else {
        line.find(" fn ")? + 1
    };
    let prefix = &line[..at];
    if prefix.contains("//") || prefix.contains('"') || prefix.contains('=') {
        return None;
    }
    let rest = &line[at + 3..];
    let end = rest.find(|c: char| !is_ident_char(c)).unwrap_or(rest.len());
    let name = &rest[..end];
    let next = rest[end..].trim_start().chars().next();
    (!name.is_empty() && matches!(next, Some('(' | '<'))).then_some((prefix, name))
}

/// Whether the attributes in `text` make a test of the function they precede.
fn has_test_attribute(text: &str) -> bool {
    [
        "#[test]",
        "#[tokio::test",
        "#[actix_web::test",
        "#[actix_rt::test",
        "#[sqlx::test",
    ]
    .iter()
    .any(|a| text.contains(a))
}

/// The line ranges of the `proptest! { … }` blocks of `lines`, whose functions are tests.
fn proptest_blocks(lines: &[&str]) -> Vec<(usize, usize)> {
    let mut blocks = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if !lines[i].contains("proptest!") || lines[i].trim_start().starts_with("//") {
            i += 1;
            continue;
        }
        let (start, mut depth, mut opened) = (i, 0i64, false);
        while i < lines.len() {
            for c in lines[i].chars() {
                match c {
                    '{' => (depth, opened) = (depth + 1, true),
                    '}' => depth -= 1,
                    _ => {}
                }
            }
            if opened && depth <= 0 {
                break;
            }
            i += 1;
        }
        blocks.push((start, i));
        i += 1;
    }
    blocks
}

/// The test functions of a Rust source file: a `fn` whose attribute lines include
/// `#[test]`, `#[tokio::test…]`, `#[actix_web::test]` or `#[sqlx::test…]`, and every `fn`
/// of a `proptest!` block.
fn test_functions(source: &str) -> BTreeSet<String> {
    let lines: Vec<&str> = source.lines().collect();
    let proptests = proptest_blocks(&lines);
    let mut tests = BTreeSet::new();
    for (i, line) in lines.iter().enumerate() {
        let Some((prefix, name)) = declared_fn(line) else {
            continue;
        };
        // The attributes and comments right above it; an attribute may span lines.
        let mut attributes = prefix.to_owned();
        let mut j = i;
        let mut inside_attribute = false;
        while j > 0 {
            j -= 1;
            let t = lines[j].trim();
            if inside_attribute {
                attributes.push_str(t);
                inside_attribute = !t.starts_with("#[");
            } else if t.starts_with("#[") || t.starts_with("//") {
                attributes.push_str(t);
            } else if t.ends_with(']') {
                attributes.push_str(t);
                inside_attribute = true;
            } else {
                break;
            }
        }
        let in_proptest = proptests.iter().any(|&(a, b)| a < i && i <= b);
        if in_proptest || has_test_attribute(&attributes) {
            tests.insert(name.to_owned());
        }
    }
    tests
}

/// Every problem of `map`, with the files it names read from `root`.
fn check(map: &str, root: &Path) -> Vec<String> {
    let mut problems = Vec::new();

    // Sections and rows.
    let lines: Vec<&str> = map.lines().collect();
    let mut rows_under: BTreeMap<&str, usize> = BTreeMap::new();
    let mut heading = "(before the first heading)";
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        if line.starts_with('#') {
            heading = line;
            rows_under.entry(heading).or_default();
        } else if line.starts_with('|') {
            let separator = |l: &str| {
                l.starts_with('|') && l.chars().all(|c| matches!(c, '|' | '-' | ':' | ' '))
            };
            if lines.get(i + 1).is_some_and(|next| separator(next.trim())) {
                i += 2; // a table's header and its separator
                continue;
            }
            if !separator(line) {
                *rows_under.entry(heading).or_default() += 1;
                if references(line).is_empty() && !line.contains(GAP) {
                    let first = line.split('|').nth(1).unwrap_or("").trim();
                    problems.push(format!(
                        "row {first:?} under {heading:?} names no test and has no \"{GAP}\" note"
                    ));
                }
            }
        }
        i += 1;
    }
    for section in SECTIONS {
        let found: Vec<_> = rows_under
            .iter()
            .filter(|(h, _)| h.contains(section))
            .collect();
        if found.is_empty() {
            problems.push(format!("no section for {section}"));
        } else if found.iter().all(|(_, rows)| **rows == 0) {
            problems.push(format!("the section for {section} has no rows"));
        }
    }

    // The tests named.
    let mut files: BTreeMap<String, Option<BTreeSet<String>>> = BTreeMap::new();
    let named: BTreeSet<TestRef> = references(map).into_iter().collect();
    for r in &named {
        if r.path.starts_with('/') || r.path.split('/').any(|part| part == "..") {
            problems.push(format!("{r}: not a path inside the repository"));
            continue;
        }
        let tests = files.entry(r.path.clone()).or_insert_with(|| {
            std::fs::read_to_string(root.join(&r.path))
                .ok()
                .map(|source| test_functions(&source))
        });
        match tests {
            None => problems.push(format!("{r}: no such file")),
            Some(tests) if !tests.contains(&r.name) => {
                problems.push(format!("{r}: {} has no test function {}", r.path, r.name));
            }
            Some(_) => {}
        }
    }
    problems
}

#[test]
fn every_test_the_map_names_exists_and_every_obligation_has_a_test_or_a_gap() {
    let map = std::fs::read_to_string(MAP).unwrap_or_else(|e| panic!("{MAP}: {e}"));
    let problems = check(&map, Path::new(ROOT));
    assert!(
        problems.is_empty(),
        "docs/pipl-map.md: {} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert!(
        references(&map).len() >= SECTIONS.len(),
        "the map names hardly any test"
    );
}

#[test]
fn the_checker_rejects_made_up_tests_missing_files_bare_rows_and_missing_sections() {
    let real = "crates/server/tests/binary/pipl_map.rs::\
                every_test_the_map_names_exists_and_every_obligation_has_a_test_or_a_gap";
    let mut map = String::from("# A map\n\nIntro: a `<file>::<test>` per row.\n");
    for section in SECTIONS.iter().filter(|s| **s != "NDSMR art. 25") {
        map.push_str(&format!(
            "\n## {section}: something\n\n| # | Obligation | Tests |\n| --- | --- | --- |\n\
             | 1 | kept | `{real}` |\n"
        ));
    }
    map.push_str(
        "| 2 | made up | `tests/e2e/lifecycle.rs::a_test_nobody_wrote` |\n\
         | 3 | no file | `tests/e2e/no_such_file.rs::anything` |\n\
         | 4 | a helper, not a test | `crates/server/tests/binary/main.rs::count` |\n\
         | 5 | nothing named | kept, trust me |\n\
         | 6 | not built | gap: nobody wrote it |\n\
         | 7 | outside | `../secrets.rs::x` |\n",
    );
    let problems = check(&map, Path::new(ROOT));
    let expected = [
        "row \"5\" under \"## Policy §八: something\" names no test and has no \"gap:\" note",
        "no section for NDSMR art. 25",
        "../secrets.rs::x: not a path inside the repository",
        "crates/server/tests/binary/main.rs::count: crates/server/tests/binary/main.rs has no test \
         function count",
        "tests/e2e/lifecycle.rs::a_test_nobody_wrote: tests/e2e/lifecycle.rs has no test function \
         a_test_nobody_wrote",
        "tests/e2e/no_such_file.rs::anything: no such file",
    ];
    assert_eq!(problems, expected, "{problems:#?}");

    // A section without rows is one too.
    let empty = "## PIPL art. 44\n\nNothing here yet.\n";
    assert!(
        check(empty, Path::new(ROOT)).contains(&"the section for PIPL art. 44 has no rows".into())
    );
}

#[test]
fn test_functions_are_found_by_their_attributes_or_their_proptest_block() {
    let source = r#"
fn helper() {}

/// Documented.
#[test]
fn plain() {}

#[tokio::test(
    flavor = "multi_thread",
    worker_threads = 2
)]
async fn multi_line_attribute() {}

#[cfg(test)]
mod tests {
    #[sqlx::test]
    pub async fn with_sqlx<T>() {}

    #[actix_web::test]
    async fn with_actix() {}

    #[allow(dead_code)]
    fn not_a_test() {}
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]
    fn a_property(x in 0..10u8) {
        prop_assert!(x < 10);
    }
}

// fn commented_out() {}
let s = "fn in_a_string() {}";
"#;
    let found: Vec<String> = test_functions(source).into_iter().collect();
    assert_eq!(
        found,
        [
            "a_property",
            "multi_line_attribute",
            "plain",
            "with_actix",
            "with_sqlx"
        ]
    );
}
