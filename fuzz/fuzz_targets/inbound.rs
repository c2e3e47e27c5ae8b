//! Any bytes, as an inbound email: parsing (limits, charsets, HTML, attachments),
//! machine-mail detection and classification never panic, never hang, and keep to the
//! limits. The MIME-to-intake path of `core::intake` up to the database.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rightsdesk_domain::intake::{IntakeRules, bundled_rules, classify};
use rightsdesk_mail::inbound::{InboundLimits, MAX_TEXT_BYTES, parse};

fn rules() -> &'static IntakeRules {
    static RULES: OnceLock<IntakeRules> = OnceLock::new();
    RULES.get_or_init(bundled_rules)
}

fuzz_target!(|data: &[u8]| {
    let limits = InboundLimits::default();
    let Ok(mail) = parse(data, &limits) else {
        return;
    };
    assert!(mail.text.len() <= MAX_TEXT_BYTES);
    assert!(mail.attachments.len() <= limits.max_attachments);
    assert!(
        mail.attachments
            .iter()
            .all(|a| a.bytes.len() <= limits.max_attachment_bytes)
    );
    let class = classify(&mail.subject, &mail.text, rules());
    assert!((0.0..=1.0).contains(&class.confidence));
    let _ = mail.subject_reference();
});
