//! Message templates: `templates/<language>/<name>.subject` (one line), `.txt` and
//! `.html` (escaped automatically), in `zh-CN` and `en`, built into the binary and
//! overridable file by file from `mail.templates_dir`. Partials start with `_`.

use std::path::Path;

use minijinja::{Environment, UndefinedBehavior};
use serde_json::{Value, json};

/// Every notice the service sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Template {
    Acknowledgement,
    VerificationCode,
    InformationRequested,
    Completed,
    Rejected,
    Withdrawn,
    Expired,
    EvidenceRejected,
    Extended,
    DeadlineReminder,
    Overdue,
    Digest,
    OfficerAssigned,
    BundlePassword,
    SourceOwnerTask,
    PortabilityTransfer,
    /// Not a notice of its own: the refusal letter attached to `rejected`, and printed
    /// for a request received by post.
    RefusalLetter,
    ComplaintEscalated,
    FeeQuoted,
    HeldForDpo,
}

impl Template {
    pub const ALL: &'static [Template] = &[
        Template::Acknowledgement,
        Template::VerificationCode,
        Template::InformationRequested,
        Template::Completed,
        Template::Rejected,
        Template::Withdrawn,
        Template::Expired,
        Template::EvidenceRejected,
        Template::Extended,
        Template::DeadlineReminder,
        Template::Overdue,
        Template::Digest,
        Template::OfficerAssigned,
        Template::BundlePassword,
        Template::SourceOwnerTask,
        Template::PortabilityTransfer,
        Template::RefusalLetter,
        Template::ComplaintEscalated,
        Template::FeeQuoted,
        Template::HeldForDpo,
    ];

    /// The stable name: file names, outbox rows, metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Template::Acknowledgement => "acknowledgement",
            Template::VerificationCode => "verification_code",
            Template::InformationRequested => "information_requested",
            Template::Completed => "completed",
            Template::Rejected => "rejected",
            Template::Withdrawn => "withdrawn",
            Template::Expired => "expired",
            Template::EvidenceRejected => "evidence_rejected",
            Template::Extended => "extended",
            Template::DeadlineReminder => "deadline_reminder",
            Template::Overdue => "overdue",
            Template::Digest => "digest",
            Template::OfficerAssigned => "officer_assigned",
            Template::BundlePassword => "bundle_password",
            Template::SourceOwnerTask => "source_owner_task",
            Template::PortabilityTransfer => "portability_transfer",
            Template::RefusalLetter => "refusal_letter",
            Template::ComplaintEscalated => "complaint_escalated",
            Template::FeeQuoted => "fee_quoted",
            Template::HeldForDpo => "held_for_dpo",
        }
    }

    pub fn parse(name: &str) -> Option<Template> {
        Self::ALL.iter().copied().find(|t| t.as_str() == name)
    }
}

/// The languages templates exist in; any other language gets English.
pub const LANGUAGES: &[&str] = &["zh-CN", "en"];

/// The template language for a requester's language tag (`zh`, `zh-CN`, `zh-Hans`… get
/// Chinese; everything else English).
pub fn language_of(tag: &str) -> &'static str {
    if tag.to_ascii_lowercase().starts_with("zh") {
        "zh-CN"
    } else {
        "en"
    }
}

/// A rendered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("template {name}: {source}")]
    Template {
        name: String,
        #[source]
        source: minijinja::Error,
    },
    #[error("reading template {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

macro_rules! embedded {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_str!(concat!("../templates/", $path)))),*]
    };
}

const EMBEDDED: &[(&str, &str)] = embedded![
    "zh-CN/_footer.txt",
    "zh-CN/_greeting.txt",
    "zh-CN/_layout.html",
    "zh-CN/acknowledgement.html",
    "zh-CN/acknowledgement.subject",
    "zh-CN/acknowledgement.txt",
    "zh-CN/bundle_password.html",
    "zh-CN/bundle_password.subject",
    "zh-CN/bundle_password.txt",
    "zh-CN/source_owner_task.html",
    "zh-CN/source_owner_task.subject",
    "zh-CN/source_owner_task.txt",
    "zh-CN/portability_transfer.html",
    "zh-CN/portability_transfer.subject",
    "zh-CN/portability_transfer.txt",
    "zh-CN/completed.html",
    "zh-CN/completed.subject",
    "zh-CN/completed.txt",
    "zh-CN/expired.html",
    "zh-CN/expired.subject",
    "zh-CN/expired.txt",
    "zh-CN/information_requested.html",
    "zh-CN/information_requested.subject",
    "zh-CN/information_requested.txt",
    "zh-CN/evidence_rejected.html",
    "zh-CN/evidence_rejected.subject",
    "zh-CN/evidence_rejected.txt",
    "zh-CN/extended.html",
    "zh-CN/extended.subject",
    "zh-CN/extended.txt",
    "zh-CN/deadline_reminder.html",
    "zh-CN/deadline_reminder.subject",
    "zh-CN/deadline_reminder.txt",
    "zh-CN/overdue.html",
    "zh-CN/overdue.subject",
    "zh-CN/overdue.txt",
    "zh-CN/digest.html",
    "zh-CN/digest.subject",
    "zh-CN/digest.txt",
    "zh-CN/officer_assigned.html",
    "zh-CN/officer_assigned.subject",
    "zh-CN/officer_assigned.txt",
    "zh-CN/rejected.html",
    "zh-CN/rejected.subject",
    "zh-CN/rejected.txt",
    "zh-CN/refusal_letter.html",
    "zh-CN/refusal_letter.subject",
    "zh-CN/refusal_letter.txt",
    "zh-CN/complaint_escalated.html",
    "zh-CN/complaint_escalated.subject",
    "zh-CN/complaint_escalated.txt",
    "zh-CN/fee_quoted.html",
    "zh-CN/fee_quoted.subject",
    "zh-CN/fee_quoted.txt",
    "zh-CN/held_for_dpo.html",
    "zh-CN/held_for_dpo.subject",
    "zh-CN/held_for_dpo.txt",
    "zh-CN/verification_code.html",
    "zh-CN/verification_code.subject",
    "zh-CN/verification_code.txt",
    "zh-CN/withdrawn.html",
    "zh-CN/withdrawn.subject",
    "zh-CN/withdrawn.txt",
    "en/_footer.txt",
    "en/_greeting.txt",
    "en/_layout.html",
    "en/acknowledgement.html",
    "en/acknowledgement.subject",
    "en/acknowledgement.txt",
    "en/bundle_password.html",
    "en/bundle_password.subject",
    "en/bundle_password.txt",
    "en/source_owner_task.html",
    "en/source_owner_task.subject",
    "en/source_owner_task.txt",
    "en/portability_transfer.html",
    "en/portability_transfer.subject",
    "en/portability_transfer.txt",
    "en/completed.html",
    "en/completed.subject",
    "en/completed.txt",
    "en/expired.html",
    "en/expired.subject",
    "en/expired.txt",
    "en/information_requested.html",
    "en/information_requested.subject",
    "en/information_requested.txt",
    "en/evidence_rejected.html",
    "en/evidence_rejected.subject",
    "en/evidence_rejected.txt",
    "en/extended.html",
    "en/extended.subject",
    "en/extended.txt",
    "en/deadline_reminder.html",
    "en/deadline_reminder.subject",
    "en/deadline_reminder.txt",
    "en/overdue.html",
    "en/overdue.subject",
    "en/overdue.txt",
    "en/digest.html",
    "en/digest.subject",
    "en/digest.txt",
    "en/officer_assigned.html",
    "en/officer_assigned.subject",
    "en/officer_assigned.txt",
    "en/rejected.html",
    "en/rejected.subject",
    "en/rejected.txt",
    "en/refusal_letter.html",
    "en/refusal_letter.subject",
    "en/refusal_letter.txt",
    "en/complaint_escalated.html",
    "en/complaint_escalated.subject",
    "en/complaint_escalated.txt",
    "en/fee_quoted.html",
    "en/fee_quoted.subject",
    "en/fee_quoted.txt",
    "en/held_for_dpo.html",
    "en/held_for_dpo.subject",
    "en/held_for_dpo.txt",
    "en/verification_code.html",
    "en/verification_code.subject",
    "en/verification_code.txt",
    "en/withdrawn.html",
    "en/withdrawn.subject",
    "en/withdrawn.txt",
];

/// The compiled templates.
pub struct Templates {
    env: Environment<'static>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Templates(..)")
    }
}

impl Templates {
    /// The built-in templates, each replaced by `dir/<same path>` when that file exists.
    /// Every template is rendered once with sample values, so a broken override (a
    /// syntax error, a misspelt variable) stops the start instead of a notice.
    pub fn load(dir: Option<&Path>) -> Result<Self, TemplateError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
        for (name, builtin) in EMBEDDED {
            let source = match dir.map(|d| d.join(name)) {
                Some(path) if path.is_file() => {
                    std::fs::read_to_string(&path).map_err(|source| TemplateError::Read {
                        path: path.display().to_string(),
                        source,
                    })?
                }
                _ => (*builtin).to_owned(),
            };
            env.add_template_owned(*name, source)
                .map_err(|source| TemplateError::Template {
                    name: (*name).to_owned(),
                    source,
                })?;
        }
        let templates = Self { env };
        for language in LANGUAGES {
            for template in Template::ALL {
                templates.render(*template, language, &sample_context())?;
            }
        }
        Ok(templates)
    }

    /// Renders `template` in the language for `language` with `context` (a JSON object).
    pub fn render(
        &self,
        template: Template,
        language: &str,
        context: &Value,
    ) -> Result<Rendered, TemplateError> {
        let dir = language_of(language);
        let part = |ext: &str| {
            let name = format!("{dir}/{}.{ext}", template.as_str());
            self.env
                .get_template(&name)
                .and_then(|t| t.render(context))
                .map_err(|source| TemplateError::Template { name, source })
        };
        let subject = part("subject")?;
        Ok(Rendered {
            // One line, whatever the template or the values in it hold.
            subject: subject.split_whitespace().collect::<Vec<_>>().join(" "),
            text: part("txt")?,
            html: part("html")?,
        })
    }
}

/// Values for every variable any built-in template uses.
pub fn sample_context() -> Value {
    let mut context = sample_values();
    context["hold"] = json!({"reason": "sample", "with": "PR-2026-000002"});
    context
}

fn sample_values() -> Value {
    json!({
        "company": {
            "name": "Example Company",
            "privacy_email": "privacy@example.com",
            "hotline": "400-000-0000",
            "dpo_email": "dpo@example.com",
            "address": null,
        },
        "request": {
            "id": "0190b7a0-0000-7000-8000-000000000001",
            "reference": "PR-2026-000001",
            "kind": "access",
            "kind_label": "access",
            "received_at": "2026-03-01 10:00",
            "due_date": "2026-03-16",
        },
        "requester_name": "Sample",
        "verification_pending": true,
        "documents_required": true,
        "code": "123456",
        "valid_minutes": 15,
        "link": "https://privacy.example.com/verify/sample",
        "message": "sample",
        "summary": "sample",
        "reason_label": "sample",
        "explanation": "sample",
        "expire_days": 30,
        "officer_name": "Sample",
        "evidence_kind_label": "sample",
        "review_note": "sample",
        "new_due_date": "2026-05-16",
        "days_left": 3,
        "days_overdue": 2,
        "date": "2026-03-09",
        "count": 1,
        "items": [{"reference": "PR-2026-000001", "kind_label": "access", "due_date": "2026-03-16", "days_left": 7, "paused": false}],
        "reason": "sample",
        "recipient_name": "B 公司",
        "transfer": {"recipient_name": "B 公司"},
        "reminder": true,
        "days_waiting": 2,
        "categories": "sample",
        "answer_path": "/api/v1/officer/requests/sample/sources/sample/answer",
        "source": {"name": "sample", "title_zh": "sample", "title_en": "sample", "instructions": "sample"},
        "password": "7KQM-XW3D-PN8T-4HJC-9RAB-2EFG",
        "download_url": "https://privacy.example.com/api/v1/downloads/sample",
        "download": {"expires_at": "2026-03-23 10:00", "max_uses": 5, "password_protected": true, "size": "1.2 MB"},
        "letter": {"signed_by": "Sample", "date": "2026-03-09", "basis": "sample"},
        "fee": {"amount": "30.00", "currency": "CNY"},
        "repeats": 2,
        "complaint": {"about_reference": "PR-2026-000001", "about_kind_label": "access", "about_state": "completed", "description": "sample"},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_owner_task_asks_for_data_or_for_an_erasure() {
        let t = Templates::load(None).unwrap();
        let mut context = sample_context();
        for (erase, zh, en) in [(false, "提交查到的记录", "answer"), (true, "删除", "erase")]
        {
            context["erase"] = json!(erase);
            let r = t
                .render(Template::SourceOwnerTask, "zh-CN", &context)
                .unwrap();
            assert!(r.text.contains(zh) && r.html.contains(zh), "{}", r.text);
            let r = t.render(Template::SourceOwnerTask, "en", &context).unwrap();
            assert!(r.subject.contains(en) || r.text.contains(en), "{}", r.text);
            assert_eq!(r.subject.contains("erase"), erase, "{}", r.subject);
        }
    }

    #[test]
    fn every_template_renders_in_both_languages() {
        let t = Templates::load(None).unwrap();
        for language in LANGUAGES {
            for template in Template::ALL {
                let r = t.render(*template, language, &sample_context()).unwrap();
                assert!(!r.subject.is_empty() && !r.subject.contains('\n'));
                assert!(r.text.contains("PR-2026-000001"), "{template:?} {language}");
                assert!(r.html.contains("PR-2026-000001"), "{template:?} {language}");
            }
        }
    }

    #[test]
    fn html_escapes_inputs_and_text_keeps_them() {
        let t = Templates::load(None).unwrap();
        let mut ctx = sample_context();
        ctx["requester_name"] = json!("<script>alert(1)</script>");
        ctx["message"] = json!("a & b <b>");
        let r = t
            .render(Template::InformationRequested, "en", &ctx)
            .unwrap();
        assert!(!r.html.contains("<script>"));
        assert!(r.html.contains("&lt;script&gt;"));
        assert!(r.html.contains("a &amp; b &lt;b&gt;"));
        assert!(r.text.contains("<script>alert(1)</script>"));
    }

    #[test]
    fn the_language_follows_the_requester() {
        let t = Templates::load(None).unwrap();
        let zh = t
            .render(Template::Acknowledgement, "zh-CN", &sample_context())
            .unwrap();
        let en = t
            .render(Template::Acknowledgement, "en", &sample_context())
            .unwrap();
        assert!(zh.subject.contains("我们已收到"), "{}", zh.subject);
        assert!(en.subject.contains("We have received"), "{}", en.subject);
        assert_eq!(language_of("zh-Hans"), "zh-CN");
        assert_eq!(language_of("fr"), "en");
    }

    #[test]
    fn an_override_replaces_one_file_and_a_broken_one_stops_the_load() {
        let dir = std::env::temp_dir().join(format!("rightsdesk-mail-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("en")).unwrap();
        std::fs::write(
            dir.join("en/acknowledgement.subject"),
            "Got it: {{ request.reference }}",
        )
        .unwrap();
        let t = Templates::load(Some(&dir)).unwrap();
        let r = t
            .render(Template::Acknowledgement, "en", &sample_context())
            .unwrap();
        assert_eq!(r.subject, "Got it: PR-2026-000001");
        std::fs::write(dir.join("en/completed.txt"), "{{ no_such_value }}").unwrap();
        let err = Templates::load(Some(&dir)).unwrap_err();
        assert!(err.to_string().contains("en/completed.txt"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
