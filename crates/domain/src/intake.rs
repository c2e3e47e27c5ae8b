//! Email intake classification (SPEC §6): which right a written message exercises.
//!
//! The rules are data, not code: a bundled file (`intake/rules.toml`, see
//! [`bundled_rules`]) that officers can extend with their own rules (stored as JSON, see
//! [`IntakeRules::extend`]). A rule names a request kind and the terms that point to it;
//! [`classify`] scores every kind from the terms found in the subject and the body, and
//! turns the best score and its distance to the runner-up into a confidence. Messages at
//! or above the rules' threshold become requests; the rest wait in the triage lane,
//! where an officer decides. A wrong guess there costs an officer a click, a wrong
//! request costs the requester a wrong acknowledgement, so ambiguity lowers confidence.
//!
//! ## Matching
//!
//! Text and terms are normalised the same way: lower case, full-width ASCII folded to
//! ASCII, every run of white space to one space, and no space between two CJK
//! characters (so `撤回 同意` matches `撤回同意`). Then:
//!
//! - a term whose first (last) character is a Latin letter or digit only matches at a
//!   word start (end), so `port` does not match `report` and `copy` not `copyright`;
//! - a term ending in `*` matches any word starting with it (`delet*`: delete, deleted,
//!   deletion);
//! - `...` inside a term is a short gap: `close ... account` matches "close my
//!   account" and "close the shopping account" (the next part must start within
//!   [`GAP_BYTES`] bytes of the end of the previous one);
//! - CJK terms match anywhere (Chinese has no spaces between words).
//!
//! Quoted text of a reply (lines starting with `>`, everything after "On … wrote:",
//! "在 … 写道：", "-----Original Message-----" and Outlook's "From: … Sent: …" block)
//! is dropped before the body is matched: it is what we or someone else wrote earlier,
//! not what the sender asks now ([`strip_quoted`]). Forwarded messages are kept: a
//! forwarded request is the request.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::kinds::RequestKind;

/// The bundled rules file.
pub const BUNDLED_RULES: &str = include_str!("../intake/rules.toml");

/// How far (in bytes of normalised text) the next part of a `...` term may start after
/// the previous part ends: about six English words or a dozen Chinese characters.
pub const GAP_BYTES: usize = 40;

/// Where a rule looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    /// Subject and body; a hit in each counts once each.
    #[default]
    Any,
    Subject,
    Body,
}

/// One rule: if any of `terms` occurs (and none of `unless` does) in a field the rule
/// looks at, `kind` gains `weight` times that field's factor. A negative weight makes a
/// rule count against a kind (e.g. `修改密码`, a password change, is not a correction).
/// A rule counts at most once per field however many of its terms occur, so listing
/// synonyms (and translations) in one rule does not inflate a bilingual message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub kind: RequestKind,
    pub terms: Vec<String>,
    #[serde(default = "one")]
    pub weight: f64,
    #[serde(default)]
    pub field: Field,
    /// Terms that, occurring in the same field, switch this rule off there: `投诉` in
    /// "否则我将向监管部门投诉" is a threat attached to another request, not a complaint.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unless: Vec<String>,
}

fn one() -> f64 {
    1.0
}

/// When `kind` scores at all, the kinds it `absorbs` leave the competition: asking to
/// close an account usually also says "delete my data", and a relative of a deceased
/// user asking to see or delete the deceased's data is a next-of-kin request whatever
/// else it says. Without this, such messages would look ambiguous.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Absorb {
    pub kind: RequestKind,
    pub absorbs: Vec<RequestKind>,
}

/// A whole rule set: the bundled file, possibly extended by officers' rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntakeRules {
    /// Messages whose confidence reaches this become requests; the rest go to triage.
    pub threshold: f64,
    /// The score at which strength is one half: `strength = score / (score + saturation)`.
    #[serde(default = "default_saturation")]
    pub saturation: f64,
    /// A subject hit weighs this much (people name what they want in the subject).
    #[serde(default = "default_subject_factor")]
    pub subject_factor: f64,
    #[serde(default = "one")]
    pub body_factor: f64,
    /// Paragraphs of the body (blocks between blank lines) holding any of these terms
    /// are not read: a legal disclaimer says "delete this email", a signature may say
    /// "unsubscribe"; neither is what the sender asks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore: Vec<String>,
    #[serde(default, rename = "absorb", skip_serializing_if = "Vec::is_empty")]
    pub absorbs: Vec<Absorb>,
    #[serde(default, rename = "rule")]
    pub rules: Vec<Rule>,
}

fn default_saturation() -> f64 {
    0.5
}

fn default_subject_factor() -> f64 {
    2.0
}

/// A rules file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RulesError {
    #[error("the intake rules cannot be read: {0}")]
    Syntax(String),
    #[error("the intake rules are invalid: {0}")]
    Invalid(String),
}

/// The rules shipped with rightsdesk (`crates/domain/intake/rules.toml`).
pub fn bundled_rules() -> IntakeRules {
    // The bundled file is checked by a unit test; should it ever fail to load, an empty
    // rule set sends every message to triage, which loses nothing.
    IntakeRules::from_toml(BUNDLED_RULES).unwrap_or_else(|_| IntakeRules::empty())
}

impl IntakeRules {
    /// No rules: everything goes to triage.
    pub fn empty() -> Self {
        Self {
            threshold: 0.6,
            saturation: default_saturation(),
            subject_factor: default_subject_factor(),
            body_factor: 1.0,
            ignore: Vec::new(),
            absorbs: Vec::new(),
            rules: Vec::new(),
        }
    }

    pub fn from_toml(text: &str) -> Result<Self, RulesError> {
        let rules: Self = toml::from_str(text).map_err(|e| RulesError::Syntax(e.to_string()))?;
        rules.validate()?;
        Ok(rules)
    }

    pub fn from_json(text: &str) -> Result<Self, RulesError> {
        let rules: Self =
            serde_json::from_str(text).map_err(|e| RulesError::Syntax(e.to_string()))?;
        rules.validate()?;
        Ok(rules)
    }

    /// Adds rules (e.g. an officer's, kept as JSON) after the existing ones. The
    /// threshold and factors stay those of `self`.
    pub fn extend(&mut self, rules: impl IntoIterator<Item = Rule>) -> Result<(), RulesError> {
        let rules: Vec<Rule> = rules.into_iter().collect();
        for (i, rule) in rules.iter().enumerate() {
            rule.validate(i)?;
        }
        self.rules.extend(rules);
        Ok(())
    }

    /// Threshold in (0, 1], factors and weights finite, every rule with a usable term.
    pub fn validate(&self) -> Result<(), RulesError> {
        let invalid = |m: String| Err(RulesError::Invalid(m));
        if !(self.threshold > 0.0 && self.threshold <= 1.0) {
            return invalid("threshold must be greater than 0 and at most 1".into());
        }
        for (name, value) in [
            ("saturation", self.saturation),
            ("subject_factor", self.subject_factor),
            ("body_factor", self.body_factor),
        ] {
            if !(value.is_finite() && value > 0.0) {
                return invalid(format!("{name} must be a positive number"));
            }
        }
        if self.ignore.iter().any(|t| Pattern::new(t).is_none()) {
            return invalid("an ignore term is empty".into());
        }
        for (i, rule) in self.rules.iter().enumerate() {
            rule.validate(i)?;
        }
        Ok(())
    }
}

impl Rule {
    fn validate(&self, index: usize) -> Result<(), RulesError> {
        let invalid = |m: &str| Err(RulesError::Invalid(format!("rule {index}: {m}")));
        if !self.weight.is_finite() || self.weight == 0.0 {
            return invalid("weight must be a non-zero number");
        }
        if self.terms.is_empty() {
            return invalid("terms must not be empty");
        }
        for term in self.terms.iter().chain(&self.unless) {
            if Pattern::new(term).is_none() {
                return invalid("a term is empty");
            }
        }
        Ok(())
    }
}

/// What [`classify`] found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Classification {
    /// The best-scoring kind, if any term matched; a suggestion even when not confident.
    pub kind: Option<RequestKind>,
    /// 0..=1: high when one kind scores clearly and far ahead of the others.
    pub confidence: f64,
    /// Whether `confidence` reaches the rules' threshold: make a request, not a triage item.
    pub confident: bool,
    /// Every kind that scored above zero, best first.
    pub scores: Vec<(RequestKind, f64)>,
    /// What matched, as `kind/field: term`, for the officer who reviews the decision.
    /// Terms come from the rules, never from the message.
    pub matched: Vec<String>,
}

/// Scores `subject` and `body` (the readable text; quoted reply text is dropped here).
pub fn classify(subject: &str, body: &str, rules: &IntakeRules) -> Classification {
    let body = if is_forward_subject(subject) {
        without_paragraphs(body, &rules.ignore)
    } else {
        without_paragraphs(&strip_quoted(body), &rules.ignore)
    };
    let body = normalise(&body);
    let subject = normalise(subject);

    let mut scores: HashMap<RequestKind, f64> = HashMap::new();
    let mut matched = Vec::new();
    let fields: [(&str, &str, f64); 2] = [
        ("subject", subject.as_str(), rules.subject_factor),
        ("body", body.as_str(), rules.body_factor),
    ];
    for rule in &rules.rules {
        for &(name, text, factor) in &fields {
            let wanted = match rule.field {
                Field::Any => true,
                Field::Subject => name == "subject",
                Field::Body => name == "body",
            };
            if !wanted || text.is_empty() {
                continue;
            }
            let Some(term) = rule.terms.iter().find(|t| matches_term(text, t)) else {
                continue;
            };
            if rule.unless.iter().any(|t| matches_term(text, t)) {
                continue;
            }
            *scores.entry(rule.kind).or_insert(0.0) += rule.weight * factor;
            matched.push(format!("{}/{name}: {term}", rule.kind));
        }
    }

    for absorb in &rules.absorbs {
        if scores.get(&absorb.kind).is_some_and(|s| *s > 0.0) {
            for k in &absorb.absorbs {
                if *k != absorb.kind {
                    scores.remove(k);
                }
            }
        }
    }

    let mut scores: Vec<(RequestKind, f64)> =
        scores.into_iter().filter(|(_, s)| *s > 0.0).collect();
    // Best first; ties in the order of RequestKind::ALL, so the result never depends on
    // hash order.
    let rank = |k: &RequestKind| {
        RequestKind::ALL
            .iter()
            .position(|x| x == k)
            .unwrap_or(usize::MAX)
    };
    scores.sort_by(|a, b| {
        b.1.total_cmp(&a.1)
            .then_with(|| rank(&a.0).cmp(&rank(&b.0)))
    });

    let (kind, confidence) = match scores.first() {
        None => (None, 0.0),
        Some(&(kind, top)) => {
            let second = scores.get(1).map_or(0.0, |s| s.1);
            let strength = top / (top + rules.saturation);
            let ratio = second / top;
            let confidence = (strength * (1.0 - ratio * ratio)).clamp(0.0, 1.0);
            (Some(kind), confidence)
        }
    };
    Classification {
        kind,
        confidence,
        confident: kind.is_some() && confidence >= rules.threshold,
        scores,
        matched,
    }
}

// ---------------------------------------------------------------------------------------
// Quoted text

/// The body without what it quotes: `>` lines are skipped, and the text stops at the
/// first reply header ("On … wrote:", "在 … 写道：", "-----Original Message-----",
/// "-----原始邮件-----", Foxmail's "------------------ Original ------------------",
/// Outlook's "From: … / Sent: …" block, and a signature's "-- " line). Forward
/// markers ("---------- Forwarded message ----------", "转发的邮件") do not stop it.
pub fn strip_quoted(body: &str) -> String {
    let lines: Vec<&str> = body.lines().collect();
    let mut out = String::with_capacity(body.len().min(64 * 1024));
    // Between a forward marker and the next blank line come the forwarded message's
    // headers, which look like Outlook's quote block but open the forwarded text.
    let mut in_forward_headers = false;
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            in_forward_headers = false;
        }
        if trimmed.starts_with('>') || trimmed.starts_with('＞') {
            continue;
        }
        if line.trim_end() == "--" {
            // "-- " opens a signature (its space is often trimmed on the way).
            break;
        }
        if is_forward_marker(trimmed) {
            in_forward_headers = true;
        } else if is_reply_header(trimmed, lines.get(i + 1).map(|l| l.trim()))
            || (!in_forward_headers && is_outlook_header_block(&lines[i..]))
        {
            break;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// `body` without the paragraphs (blocks between blank lines) that hold any of `terms`.
pub fn without_paragraphs(body: &str, terms: &[String]) -> String {
    if terms.is_empty() {
        return body.to_owned();
    }
    let mut out = String::with_capacity(body.len());
    let mut paragraph = String::new();
    let flush = |paragraph: &mut String, out: &mut String| {
        let text = normalise(paragraph);
        if !terms.iter().any(|t| matches_term(&text, t)) {
            out.push_str(paragraph);
        }
        paragraph.clear();
    };
    for line in body.lines() {
        paragraph.push_str(line);
        paragraph.push('\n');
        if line.trim().is_empty() {
            flush(&mut paragraph, &mut out);
        }
    }
    flush(&mut paragraph, &mut out);
    out
}

/// Whether a subject says the message forwards another (`Fwd:`, `FW:`, `转发：`): then
/// the whole body is the request, whatever quote markers it holds (Foxmail marks a
/// forwarded message exactly as a quoted one).
pub fn is_forward_subject(subject: &str) -> bool {
    let s = normalise(subject);
    ["fwd:", "fw:", "转发:", "转发 :", "fwd :", "fw :"]
        .iter()
        .any(|p| s.starts_with(p))
}

fn is_forward_marker(line: &str) -> bool {
    let lower = line.to_lowercase();
    lower.contains("forwarded message")
        || lower.starts_with("begin forwarded message")
        || lower.contains("转发的邮件")
        || lower.contains("转发邮件")
}

fn is_reply_header(line: &str, next: Option<&str>) -> bool {
    let lower = line.to_lowercase();
    let dashed = lower.trim_matches(|c: char| c == '-' || c == '_' || c == ' ' || c == '=');
    if lower.starts_with("---")
        && (dashed == "original message"
            || dashed == "original"
            || dashed == "原始邮件"
            || dashed == "原邮件"
            || dashed == "回复的原邮件")
    {
        return true;
    }
    let wrote = |s: &str| {
        let s = s.trim_end();
        s.ends_with("wrote:") || s.ends_with("写道：") || s.ends_with("写道:")
    };
    if (lower.starts_with("on ") && (wrote(&lower) || next.is_some_and(wrote)))
        || ((line.starts_with('在') || line.starts_with('于')) && wrote(line))
    {
        return true;
    }
    false
}

/// Outlook and Foxmail quote the previous message under a block of header lines:
/// `From:`/`发件人:` followed within three lines by `Sent:`/`Date:`/`发送时间:`/`日期:`.
fn is_outlook_header_block(lines: &[&str]) -> bool {
    let starts = |l: &str, keys: &[&str]| {
        let l = l.trim_start_matches(['*', ' ', '\t']);
        keys.iter().any(|k| {
            l.get(..k.len()).is_some_and(|p| p.eq_ignore_ascii_case(k))
                && l[k.len()..]
                    .trim_start_matches(['*', ' '])
                    .starts_with([':', '：'])
        })
    };
    let Some(&first) = lines.first() else {
        return false;
    };
    if !starts(first, &["from", "发件人"]) {
        return false;
    }
    lines
        .iter()
        .skip(1)
        .take(3)
        .any(|&l| starts(l, &["sent", "date", "发送时间", "日期", "时间"]))
}

// ---------------------------------------------------------------------------------------
// Normalisation and matching

fn is_cjk(c: char) -> bool {
    matches!(c,
        '\u{3040}'..='\u{30FF}'   // kana
        | '\u{3400}'..='\u{4DBF}' // CJK extension A
        | '\u{4E00}'..='\u{9FFF}' // CJK unified ideographs
        | '\u{F900}'..='\u{FAFF}' // compatibility ideographs
        | '\u{AC00}'..='\u{D7AF}' // hangul
    )
}

/// Lower case, full-width ASCII to ASCII, white space runs to one space, no space
/// between two CJK characters.
pub fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    let mut prev_cjk = false;
    for c in text.chars() {
        let c = match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            '\u{3000}' | '\u{00A0}' => ' ',
            '\u{2018}' | '\u{2019}' => '\'',
            '\u{201C}' | '\u{201D}' => '"',
            _ => c,
        };
        if c.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        let cjk = is_cjk(c);
        if pending_space && !(prev_cjk && cjk) {
            out.push(' ');
        }
        pending_space = false;
        prev_cjk = cjk;
        out.extend(c.to_lowercase());
    }
    out
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric()
}

/// A term, normalised and split at `...` gaps.
struct Pattern {
    parts: Vec<Part>,
}

struct Part {
    text: String,
    /// Ends in `*`: the last word may continue.
    prefix: bool,
    word_start: bool,
    word_end: bool,
}

impl Pattern {
    fn new(term: &str) -> Option<Self> {
        let mut parts = Vec::new();
        for raw in term.split("...") {
            let raw = raw.trim();
            let (raw, prefix) = match raw.strip_suffix('*') {
                Some(r) => (r, true),
                None => (raw, false),
            };
            let text = normalise(raw);
            if text.is_empty() {
                return None;
            }
            parts.push(Part {
                word_start: text.chars().next().is_some_and(is_word),
                word_end: text.chars().next_back().is_some_and(is_word),
                text,
                prefix,
            });
        }
        if parts.is_empty() {
            None
        } else {
            Some(Self { parts })
        }
    }
}

thread_local! {
    /// Terms compiled once per thread: classifying compiled every term again for every
    /// message and field, most of its time. Rules are few; the cap only guards against
    /// a caller passing endless distinct terms.
    static PATTERNS: std::cell::RefCell<HashMap<String, Option<std::rc::Rc<Pattern>>>> =
        std::cell::RefCell::new(HashMap::new());
}

const PATTERN_CACHE_CAP: usize = 4_096;

fn matches_term(text: &str, term: &str) -> bool {
    let pattern = PATTERNS.with(|cache| {
        if let Some(p) = cache.borrow().get(term) {
            return p.clone();
        }
        let p = Pattern::new(term).map(std::rc::Rc::new);
        let mut cache = cache.borrow_mut();
        if cache.len() >= PATTERN_CACHE_CAP {
            cache.clear();
        }
        cache.insert(term.to_owned(), p.clone());
        p
    });
    pattern.is_some_and(|p| find_from(text, &p.parts, 0, None))
}

/// Whether `parts` occur in order in `text` from byte `from`, each part after the
/// first starting within [`GAP_BYTES`] of the previous end (`limit`).
fn find_from(text: &str, parts: &[Part], from: usize, limit: Option<usize>) -> bool {
    let Some((part, rest)) = parts.split_first() else {
        return true;
    };
    let Some(hay) = text.get(from..) else {
        return false;
    };
    for (offset, _) in hay.match_indices(part.text.as_str()) {
        let start = from + offset;
        if limit.is_some_and(|l| start > l) {
            return false;
        }
        let end = start + part.text.len();
        let before = text[..start].chars().next_back();
        if part.word_start && before.is_some_and(is_word) {
            continue;
        }
        let mut end_word = end;
        if part.prefix {
            end_word += text[end..]
                .char_indices()
                .find(|&(_, c)| !is_word(c))
                .map_or(text.len() - end, |(i, _)| i);
        } else if part.word_end && text[end..].chars().next().is_some_and(is_word) {
            continue;
        }
        if find_from(text, rest, end_word, Some(end_word + GAP_BYTES)) {
            return true;
        }
    }
    false
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::Any => "any",
            Field::Subject => "subject",
            Field::Body => "body",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RequestKind::*;

    fn kind(subject: &str, body: &str) -> Classification {
        classify(subject, body, &bundled_rules())
    }

    #[test]
    fn the_bundled_rules_load() {
        let rules = IntakeRules::from_toml(BUNDLED_RULES).expect("bundled rules");
        assert!(!rules.ignore.is_empty());
        assert!(!rules.absorbs.is_empty());
        for k in RequestKind::ALL {
            assert!(
                rules.rules.iter().any(|r| r.kind == *k && r.weight > 0.0),
                "no rule for {k}"
            );
        }
    }

    #[test]
    fn rules_round_trip_through_json() {
        let rules = bundled_rules();
        let json = serde_json::to_string(&rules).expect("json");
        assert_eq!(IntakeRules::from_json(&json).expect("back"), rules);
    }

    #[test]
    fn invalid_rules_are_refused() {
        assert!(matches!(
            IntakeRules::from_toml("threshold = 2.0"),
            Err(RulesError::Invalid(_))
        ));
        assert!(matches!(
            IntakeRules::from_toml("threshold = 0.5\n[[rule]]\nkind = \"deletion\"\nterms = []"),
            Err(RulesError::Invalid(_))
        ));
        assert!(matches!(
            IntakeRules::from_toml("threshold = 0.5\n[[rule]]\nkind = \"nope\"\nterms = [\"x\"]"),
            Err(RulesError::Syntax(_))
        ));
        assert!(matches!(
            IntakeRules::from_toml("threshold = 0.5\nsurprise = 1"),
            Err(RulesError::Syntax(_))
        ));
        let mut rules = bundled_rules();
        let bad = Rule {
            kind: Deletion,
            terms: vec!["  ".into()],
            weight: 1.0,
            field: Field::Any,
            unless: vec![],
        };
        assert!(rules.extend([bad]).is_err());
    }

    #[test]
    fn chinese_requests_of_each_kind() {
        let cases = [
            (
                "个人信息查阅申请",
                "你好，我想查阅你们持有的我的个人信息。",
                Access,
            ),
            (
                "申请个人信息副本",
                "请把我的个人信息复制一份副本发给我。",
                Copy,
            ),
            (
                "个人信息转移",
                "请将我的个人信息转移至另一家公司。",
                Portability,
            ),
            (
                "更正个人信息",
                "我的地址有误，请更正为北京市海淀区。",
                Correction,
            ),
            (
                "退订营销短信",
                "请不要再给我发送营销短信，我撤回同意。",
                ConsentWithdrawal,
            ),
            ("删除个人信息", "请删除我在贵公司的全部个人信息。", Deletion),
            ("申请注销账号", "我要注销我的账号。", AccountClosure),
            (
                "近亲属行权",
                "我父亲已于去年去世，我作为近亲属申请查阅他的信息。",
                NextOfKin,
            ),
            (
                "请解释个人信息处理规则",
                "请向我解释你们如何处理我的个人信息。",
                Explanation,
            ),
            (
                "投诉",
                "我对你们上次处理我请求的方式非常不满，特此投诉。",
                Complaint,
            ),
        ];
        for (subject, body, expected) in cases {
            let c = kind(subject, body);
            assert_eq!(c.kind, Some(expected), "{subject}: {c:?}");
            assert!(c.confident, "{subject}: {c:?}");
        }
    }

    #[test]
    fn english_requests_of_each_kind() {
        let cases = [
            (
                "Subject access request",
                "I would like to see my data you hold.",
                Access,
            ),
            (
                "Request for a copy of my data",
                "Please send me a copy of my personal data.",
                Copy,
            ),
            (
                "Data portability",
                "Please transfer my data to another provider in a machine-readable format.",
                Portability,
            ),
            (
                "Please correct my address",
                "My address is wrong, please rectify it.",
                Correction,
            ),
            (
                "Unsubscribe",
                "Please stop sending me marketing emails, I withdraw consent.",
                ConsentWithdrawal,
            ),
            (
                "Erasure request",
                "Please delete all my personal data.",
                Deletion,
            ),
            (
                "Close my account",
                "I want you to close my account.",
                AccountClosure,
            ),
            (
                "My late father's account",
                "My father passed away last month; as next of kin I ask for his data.",
                NextOfKin,
            ),
            (
                "Why do you process my data?",
                "Please explain how you use my personal information.",
                Explanation,
            ),
            (
                "Complaint",
                "I want to file a complaint about how my earlier request was handled.",
                Complaint,
            ),
        ];
        for (subject, body, expected) in cases {
            let c = kind(subject, body);
            assert_eq!(c.kind, Some(expected), "{subject}: {c:?}");
            assert!(c.confident, "{subject}: {c:?}");
        }
    }

    #[test]
    fn latin_terms_match_whole_words_in_any_case() {
        assert!(matches_term(&normalise("please DELETE it"), "delete"));
        assert!(!matches_term("a report of", "port"));
        assert!(!matches_term("copyright 2026", "copy"));
        assert!(matches_term("deletion please", "delet*"));
        assert!(matches_term(
            "close my shopping account",
            "close ... account"
        ));
        assert!(!matches_term(
            "close the door and then, much later and in another sentence entirely, the account",
            "close ... account"
        ));
        assert!(matches_term("请delete我的数据", "delete"));
    }

    #[test]
    fn normalising_folds_width_case_and_spaces() {
        assert_eq!(normalise("  Ｄｅｌｅｔｅ\n  My   Data "), "delete my data");
        assert_eq!(normalise("撤回 同意"), "撤回同意");
        assert_eq!(normalise("删除 data"), "删除 data");
    }

    #[test]
    fn quoted_text_is_ignored() {
        let body = "请注销我的账号。\n\n在 2026年1月5日 10:00，隐私团队 <privacy@example.com> 写道：\n> 您好，请问您要删除什么？\n删除 删除 删除\n";
        let c = kind("", body);
        assert_eq!(c.kind, Some(AccountClosure), "{c:?}");

        let body = "Please close my account.\n\nOn Mon, 5 Jan 2026 at 10:00, Privacy <p@example.com>\nwrote:\n> delete delete\nexport my data\n";
        assert_eq!(strip_quoted(body), "Please close my account.\n\n");

        let body =
            "Close my account.\n-----Original Message-----\nFrom: x\nPlease transfer my data";
        assert_eq!(strip_quoted(body), "Close my account.\n");

        let body = "注销账号\n\n发件人: 隐私团队\n发送时间: 2026年1月5日\n主题: 删除\n";
        assert_eq!(strip_quoted(body), "注销账号\n\n");

        let body = "see below\n---------- Forwarded message ---------\nFrom: A <a@example.com>\nDate: Mon, 5 Jan 2026\n\nPlease delete my data\n";
        assert!(strip_quoted(body).contains("Please delete my data"));

        let c = kind(
            "Fwd: 请求",
            "FYI\n------------------ 原始邮件 ------------------\n请删除我的个人信息",
        );
        assert_eq!(c.kind, Some(Deletion), "{c:?}");

        let body = "注销账号\n------------------ 原始邮件 ------------------\n删除";
        assert_eq!(strip_quoted(body), "注销账号\n");
    }

    #[test]
    fn disclaimers_are_not_read() {
        let body = "Please tell me what personal data you hold about me.\n\nThis email is confidential. If you have received this email in error, please notify the sender and delete it.\n";
        let c = kind("Query", body);
        assert_eq!(c.kind, Some(Access), "{c:?}");
        assert!(c.confident, "{c:?}");
        assert!(
            !c.matched.iter().any(|m| m.starts_with("deletion")),
            "{c:?}"
        );
    }

    #[test]
    fn traditional_chinese_is_understood() {
        let c = kind("個人資料", "請刪除我的個人資料，謝謝。");
        assert_eq!(c.kind, Some(Deletion), "{c:?}");
        let c = kind("申請註銷帳號", "請註銷我的帳號。");
        assert_eq!(c.kind, Some(AccountClosure), "{c:?}");
    }

    #[test]
    fn two_close_kinds_are_not_confident() {
        let c = kind(
            "Data request",
            "Please send me a copy of my data and correct my address.",
        );
        assert!(!c.confident, "{c:?}");
        assert!(c.scores.len() >= 2);
    }

    #[test]
    fn nothing_matching_goes_to_triage() {
        let c = kind("Hello", "Is your shop open on Sunday?");
        assert_eq!(c.kind, None);
        assert_eq!(c.confidence, 0.0);
        assert!(!c.confident);
    }

    #[test]
    fn a_threat_to_complain_is_not_a_complaint() {
        let c = kind(
            "删除个人信息",
            "请尽快删除我的个人信息，否则我将向网信办投诉。",
        );
        assert_eq!(c.kind, Some(Deletion), "{c:?}");
        assert!(c.confident, "{c:?}");
    }

    #[test]
    fn closing_an_account_absorbs_deleting_its_data() {
        let c = kind("注销账号", "请注销我的账号并删除所有数据。");
        assert_eq!(c.kind, Some(AccountClosure), "{c:?}");
        assert!(c.confident, "{c:?}");
    }

    #[test]
    fn subject_weighs_more_than_body() {
        let c = kind(
            "Please delete my data",
            "I also wonder why you have my data?",
        );
        assert_eq!(c.kind, Some(Deletion), "{c:?}");
    }

    #[test]
    fn officers_rules_extend_the_bundle() {
        let mut rules = bundled_rules();
        let before = classify("会员积分清零", "", &rules);
        assert_eq!(before.kind, None);
        let extra: Vec<Rule> = serde_json::from_str(
            r#"[{"kind": "deletion", "terms": ["积分清零"], "weight": 1.0, "field": "subject"}]"#,
        )
        .expect("json rules");
        rules.extend(extra).expect("valid");
        let after = classify("会员积分清零", "", &rules);
        assert_eq!(after.kind, Some(Deletion));
        assert!(after.matched.iter().any(|m| m.contains("积分清零")));
    }

    #[test]
    fn negative_rules_count_against_a_kind() {
        let c = kind("修改密码", "我想修改密码");
        assert_ne!(c.kind, Some(Correction), "{c:?}");
    }

    #[test]
    fn confidence_is_in_range() {
        for (s, b) in [
            ("", ""),
            ("删除", ""),
            ("delete delete", "delete"),
            ("查阅 删除", "复制"),
        ] {
            let c = kind(s, b);
            assert!((0.0..=1.0).contains(&c.confidence));
        }
    }
}
