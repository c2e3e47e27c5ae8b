//! The inbound corpus (`tests/fixtures/mail/*.eml`, made by `generate.py` there): every
//! message is parsed, checked for machine signs, threaded or classified, and compared
//! with its entry in `expected.toml`. Every mismatch is reported at once.

use std::collections::BTreeMap;
use std::path::PathBuf;

use rightsdesk_domain::intake::{Classification, bundled_rules, classify};
use rightsdesk_mail::inbound::{self, Inbound, InboundLimits};
use serde::Deserialize;

/// The domain of our notifications' Message-IDs in the corpus.
const OUR_DOMAIN: &str = "@rightsdesk.example.com";

const MIN_FILES: usize = 40;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    files: BTreeMap<String, Entry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    outcome: String,
    kind: Option<String>,
    reason: Option<String>,
    reference: Option<String>,
    in_reply_to: Option<String>,
    subject: Option<String>,
    from: Option<String>,
    #[serde(default)]
    from_absent: bool,
    #[serde(default)]
    text_contains: Vec<String>,
    #[serde(default)]
    text_excludes: Vec<String>,
    attachments: Option<usize>,
    attachment_names: Option<Vec<String>>,
    dropped: Option<usize>,
    original_message_id: Option<String>,
    notification_id: Option<String>,
}

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/mail")
}

/// What intake would do with a parsed message, in the order core applies the steps.
#[derive(Debug, PartialEq)]
enum Outcome {
    Ignored(String),
    Reply,
    Request(String),
    Triage,
}

fn outcome(m: &Inbound, c: &Classification) -> Outcome {
    if let Some(auto) = &m.auto {
        return Outcome::Ignored(auto.code().to_owned());
    }
    let ours = |id: &String| id.ends_with(OUR_DOMAIN);
    if m.subject_reference().is_some()
        || m.in_reply_to.iter().any(ours)
        || m.references.iter().any(ours)
    {
        return Outcome::Reply;
    }
    match (c.confident, c.kind) {
        (true, Some(kind)) => Outcome::Request(kind.to_string()),
        _ => Outcome::Triage,
    }
}

fn check(name: &str, raw: &[u8], e: &Entry) -> Vec<String> {
    let mut problems = Vec::new();
    let mut fail = |what: String| problems.push(format!("{name}: {what}"));
    let parsed = inbound::parse(raw, &InboundLimits::default());

    let m = match (parsed, e.outcome.as_str()) {
        (Err(err), "failed") => {
            if e.reason.as_deref() != Some(err.code()) {
                fail(format!(
                    "failed with {}, expected {:?}",
                    err.code(),
                    e.reason
                ));
            }
            return problems;
        }
        (Err(err), expected) => {
            fail(format!("expected {expected}, but parsing failed: {err}"));
            return problems;
        }
        (Ok(m), "failed") => {
            fail(format!(
                "expected failure {:?}, but it parsed (auto {:?}, subject {:?})",
                e.reason, m.auto, m.subject
            ));
            return problems;
        }
        (Ok(m), _) => m,
    };

    let c = classify(&m.subject, &m.text, &bundled_rules());
    let got = outcome(&m, &c);
    let describe = || {
        format!(
            "got {got:?} (auto {:?}, kind {:?}, confidence {:.2}, scores {:?}, matched {:?})",
            m.auto.as_ref().map(|a| a.code()),
            c.kind,
            c.confidence,
            c.scores,
            c.matched
        )
    };
    match e.outcome.as_str() {
        "ignored" => {
            if got != Outcome::Ignored(e.reason.clone().unwrap_or_default()) {
                fail(format!("expected ignored {:?}, {}", e.reason, describe()));
            }
            if let Some(inbound::AutoKind::Bounce {
                original_message_id,
                notification_id,
            }) = &m.auto
            {
                if e.original_message_id.is_some() && e.original_message_id != *original_message_id
                {
                    fail(format!(
                        "bounce of {original_message_id:?}, expected {:?}",
                        e.original_message_id
                    ));
                }
                if e.notification_id != *notification_id {
                    fail(format!(
                        "bounce of notification {notification_id:?}, expected {:?}",
                        e.notification_id
                    ));
                }
            } else if e.original_message_id.is_some() || e.notification_id.is_some() {
                fail("bounce ids expected on a message that is not a bounce".into());
            }
        }
        "reply" => {
            if got != Outcome::Reply {
                fail(format!("expected a reply, {}", describe()));
            }
            if let Some(reference) = &e.reference
                && m.subject_reference().as_ref() != Some(reference)
            {
                fail(format!(
                    "reference {:?}, expected {reference}",
                    m.subject_reference()
                ));
            }
            if let Some(id) = &e.in_reply_to
                && !m.in_reply_to.contains(id)
            {
                fail(format!("in_reply_to {:?}, expected {id}", m.in_reply_to));
            }
            if e.reference.is_none() && e.in_reply_to.is_none() {
                fail("a reply entry needs reference or in_reply_to".into());
            }
        }
        "request" => {
            let kind = e.kind.clone().unwrap_or_default();
            if got != Outcome::Request(kind.clone()) {
                fail(format!("expected request {kind}, {}", describe()));
            }
        }
        "triage" => {
            if got != Outcome::Triage {
                fail(format!("expected triage, {}", describe()));
            }
        }
        other => fail(format!("unknown outcome {other:?} in expected.toml")),
    }

    if let Some(subject) = &e.subject
        && &m.subject != subject
    {
        fail(format!("subject {:?}, expected {subject:?}", m.subject));
    }
    if let Some(from) = &e.from {
        let got = m.from.as_ref().map(|f| f.address.as_str());
        if got != Some(from.as_str()) {
            fail(format!("from {got:?}, expected {from:?}"));
        }
    }
    if e.from_absent && m.from.is_some() {
        fail(format!("from {:?}, expected none", m.from));
    }
    for needle in &e.text_contains {
        if !m.text.contains(needle.as_str()) {
            fail(format!(
                "text lacks {needle:?}; text is {:?}",
                head(&m.text)
            ));
        }
    }
    for needle in &e.text_excludes {
        if m.text.contains(needle.as_str()) {
            fail(format!(
                "text holds {needle:?}; text is {:?}",
                head(&m.text)
            ));
        }
    }
    if let Some(n) = e.attachments
        && m.attachments.len() != n
    {
        fail(format!(
            "{} attachments ({:?}), expected {n}",
            m.attachments.len(),
            m.attachments
                .iter()
                .map(|a| (&a.filename, &a.content_type))
                .collect::<Vec<_>>()
        ));
    }
    if let Some(names) = &e.attachment_names {
        let got: Vec<String> = m
            .attachments
            .iter()
            .map(|a| a.filename.clone().unwrap_or_default())
            .collect();
        if &got != names {
            fail(format!("attachment names {got:?}, expected {names:?}"));
        }
    }
    if let Some(n) = e.dropped
        && m.dropped_attachments.len() != n
    {
        fail(format!(
            "{} dropped attachments, expected {n}",
            m.dropped_attachments.len()
        ));
    }
    problems
}

fn head(text: &str) -> String {
    text.chars().take(300).collect()
}

#[test]
fn the_corpus_parses_and_classifies_as_expected() {
    let dir = corpus_dir();
    let expected: Expected =
        toml::from_str(&std::fs::read_to_string(dir.join("expected.toml")).expect("expected.toml"))
            .expect("expected.toml parses");

    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("corpus folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".eml"))
        .collect();
    files.sort();

    let mut problems = Vec::new();
    if files.len() < MIN_FILES {
        problems.push(format!(
            "the corpus has {} messages, fewer than {MIN_FILES}",
            files.len()
        ));
    }
    for name in &files {
        let Some(entry) = expected.files.get(name) else {
            problems.push(format!("{name}: no entry in expected.toml"));
            continue;
        };
        let raw = std::fs::read(dir.join(name)).expect("read message");
        problems.extend(check(name, &raw, entry));
    }
    for name in expected.files.keys() {
        if !files.contains(name) {
            problems.push(format!("{name}: in expected.toml but not in the folder"));
        }
    }
    assert!(
        problems.is_empty(),
        "{} of {} messages do not match:\n{}",
        problems.len(),
        files.len(),
        problems.join("\n")
    );
}
