use super::*;

const SIMPLE: &str = "From: =?UTF-8?B?5byg5LiJ?= <Zhang.San@Example.COM>\r\n\
To: privacy@example.com, Other <other@EXAMPLE.org>\r\n\
Subject: =?UTF-8?Q?=E5=88=A0=E9=99=A4?= my data\r\n\
Date: Mon, 05 Jan 2026 10:00:00 +0800\r\n\
Message-ID: <abc123@mail.example.com>\r\n\
In-Reply-To: <n1@rightsdesk.example.com>\r\n\
References: <n0@rightsdesk.example.com> <n1@rightsdesk.example.com>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
Please delete my data.\r\n";

fn limits() -> InboundLimits {
    InboundLimits::default()
}

fn parse_str(s: &str) -> Result<Inbound, InboundError> {
    parse(s.as_bytes(), &limits())
}

#[test]
fn headers_are_read() {
    let m = parse_str(SIMPLE).expect("parses");
    assert_eq!(m.message_id.as_deref(), Some("abc123@mail.example.com"));
    assert_eq!(m.in_reply_to, vec!["n1@rightsdesk.example.com"]);
    assert_eq!(
        m.references,
        vec!["n0@rightsdesk.example.com", "n1@rightsdesk.example.com"]
    );
    let from = m.from.expect("from");
    assert_eq!(from.address, "Zhang.San@example.com");
    assert_eq!(from.name.as_deref(), Some("张三"));
    assert_eq!(m.to, vec!["privacy@example.com", "other@example.org"]);
    assert_eq!(m.subject, "删除 my data");
    assert_eq!(
        m.date.map(|d| d.to_rfc3339()).as_deref(),
        Some("2026-01-05T02:00:00+00:00")
    );
    assert_eq!(m.text, "Please delete my data.");
    assert!(m.auto.is_none());
    assert!(m.attachments.is_empty());
}

#[test]
fn control_characters_are_dropped() {
    let raw =
        b"From: a@example.com\r\nSubject: bad\x01 subject\x00\r\n\r\nline\x00 one\tand\x07 tab\r\n";
    let m = parse(raw, &limits()).expect("parses");
    assert_eq!(m.subject, "bad subject");
    assert_eq!(m.text, "line one and tab");
}

#[test]
fn references_are_found_in_subjects() {
    assert_eq!(
        find_reference("Re: [pr-2026-000123] 您的请求").as_deref(),
        Some("PR-2026-000123")
    );
    assert_eq!(find_reference("APR-2026-000123"), None);
    assert_eq!(find_reference("PR-2026-0001234"), None);
    assert_eq!(find_reference("PR-2026-00012"), None);
    assert_eq!(
        find_reference("编号PR-2026-000123。").as_deref(),
        Some("PR-2026-000123")
    );
    assert_eq!(find_reference(""), None);
}

#[test]
fn html_becomes_readable_text() {
    let html = "<html><head><title>T</title><style>p{color:red}</style></head><body>\
<script>alert('x')</script><div>Hello&nbsp;&amp;&lt;world&gt;</div><div>Line&#32;two</div>\
<!--[if gte mso 9]><xml><o:OfficeDocumentSettings></o:OfficeDocumentSettings></xml><![endif]-->\
<p class=MsoNormal>Para<o:p></o:p></p><table><tr><td>a</td></tr><tr><td>b</td></tr></table></body></html>";
    let text = html_to_text(html);
    assert!(!text.contains("alert"), "{text}");
    assert!(!text.contains("color"), "{text}");
    assert!(!text.contains("OfficeDocument"), "{text}");
    assert!(text.contains("Hello &<world>"), "{text}");
    assert!(text.contains("\nLine two"), "{text}");
    assert!(text.contains("\nPara"), "{text}");
    assert!(text.contains("a\nb") || text.contains("a\n\nb"), "{text}");
}

#[test]
fn gbk_bodies_and_encoded_subjects_decode() {
    // "删除个人信息" in GBK.
    let gbk: &[u8] = &[
        0xc9, 0xbe, 0xb3, 0xfd, 0xb8, 0xf6, 0xc8, 0xcb, 0xd0, 0xc5, 0xcf, 0xa2,
    ];
    let mut raw = b"From: a@example.com\r\nSubject: =?GBK?B?yb6z/Q==?=\r\nContent-Type: text/plain; charset=GBK\r\nContent-Transfer-Encoding: 8bit\r\n\r\n".to_vec();
    raw.extend_from_slice(gbk);
    let m = parse(&raw, &limits()).expect("parses");
    assert_eq!(m.subject, "删除");
    assert_eq!(m.text, "删除个人信息");
}

#[test]
fn limits_refuse_large_messages_and_many_parts() {
    let small = InboundLimits {
        max_bytes: 100,
        ..limits()
    };
    let err = parse(SIMPLE.as_bytes(), &small).expect_err("too large");
    assert_eq!(err.code(), "too_large");

    let raw = many_parts(50);
    let few = InboundLimits {
        max_parts: 10,
        ..limits()
    };
    assert_eq!(
        parse(raw.as_bytes(), &few).expect_err("too many").code(),
        "too_many_parts"
    );
}

fn many_parts(n: usize) -> String {
    let mut raw = String::from(
        "From: a@example.com\r\nSubject: many\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n",
    );
    for i in 0..n {
        raw.push_str(&format!(
            "--b\r\nContent-Type: text/plain\r\n\r\npart {i}\r\n"
        ));
    }
    raw.push_str("--b--\r\n");
    raw
}

#[test]
fn a_flood_of_parts_is_refused_before_parsing() {
    let raw = many_parts(5000);
    let err = parse(raw.as_bytes(), &limits()).expect_err("too many");
    assert_eq!(
        err,
        InboundError::TooManyParts {
            parts: 5000,
            limit: 2000
        }
    );
    assert_eq!(delimiter_count(many_parts(3).as_bytes()), 3);
    assert_eq!(delimiter_count(SIMPLE.as_bytes()), 0);
}

#[test]
fn a_thousand_parts_are_handled() {
    let raw = many_parts(1000);
    let m = parse(raw.as_bytes(), &limits()).expect("parses");
    assert!(m.text.contains("part 0"));
    assert!(m.text.contains("part 999"));
}

#[test]
fn a_five_megabyte_message_is_handled() {
    let mut raw = String::from(
        "From: a@example.com\r\nSubject: big\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n",
    );
    while raw.len() < 5 * 1024 * 1024 {
        raw.push_str("请删除我的个人信息。Please delete my personal data.\r\n");
    }
    raw.push_str("--b--\r\n");
    let m = parse(raw.as_bytes(), &limits()).expect("parses");
    assert!(m.text_truncated);
    assert!(m.text.len() <= MAX_TEXT_BYTES);
    assert!(m.text.starts_with("请删除"));
}

#[test]
fn attachments_over_the_limits_are_dropped_not_refused() {
    let mut raw = String::from(
        "From: a@example.com\r\nSubject: docs\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n",
    );
    for i in 0..4 {
        raw.push_str(&format!(
            "--b\r\nContent-Type: application/pdf; name=\"doc{i}.pdf\"\r\nContent-Disposition: attachment; filename=\"doc{i}.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQKJcOkw7zDtsOfCg==\r\n"
        ));
    }
    raw.push_str("--b\r\nContent-Type: application/octet-stream; name=\"big.bin\"\r\nContent-Disposition: attachment; filename=\"big.bin\"\r\n\r\n");
    raw.push_str(&"x".repeat(2000));
    raw.push_str("\r\n--b--\r\n");
    let tight = InboundLimits {
        max_attachments: 2,
        max_attachment_bytes: 1000,
        ..limits()
    };
    let m = parse(raw.as_bytes(), &tight).expect("parses");
    assert_eq!(m.attachments.len(), 2);
    assert_eq!(m.attachments[0].filename.as_deref(), Some("doc0.pdf"));
    assert_eq!(m.attachments[0].content_type, "application/pdf");
    assert!(m.attachments[0].bytes.starts_with(b"%PDF-1.4"));
    assert_eq!(m.dropped_attachments.len(), 3);
    assert!(
        m.dropped_attachments
            .iter()
            .any(|d| d.reason == DropReason::TooLarge && d.filename.as_deref() == Some("big.bin"))
    );
    assert_eq!(
        m.dropped_attachments
            .iter()
            .filter(|d| d.reason == DropReason::TooMany)
            .count(),
        2
    );
    let debug = format!("{:?}", m.attachments[0]);
    assert!(!debug.contains("37, 80"), "bytes in Debug: {debug}");
}

#[test]
fn junk_without_headers_is_malformed_and_nothing_is_empty() {
    assert_eq!(parse_str("").expect_err("empty").code(), "empty");
    assert_eq!(parse_str("\r\n \r\n").expect_err("empty").code(), "empty");
    assert_eq!(
        parse_str("just some words\nand more words\n")
            .expect_err("junk")
            .code(),
        "malformed"
    );
    assert_eq!(
        parse(&[0u8, 159, 146, 150, 0xff, 0xfe, b'\n', 1, 2, 3], &limits())
            .expect_err("binary")
            .code(),
        "malformed"
    );
    assert_eq!(
        parse_str("From: a@example.com\r\nTo: b@example.com\r\n\r\n")
            .expect_err("nothing to read")
            .code(),
        "empty"
    );
}

/// xorshift: deterministic noise without a dependency.
fn noise(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

#[test]
fn no_input_panics() {
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let alphabet: &[u8] = b"From: Subject: Content-Type: multipart/mixed; boundary=\"--\" =?utf-8?B?Q?= \r\n<>@;:\"\\ \t=-\x00\xff\xe4\xb8\xad base64 quoted-printable message/rfc822 text/html <div> &amp; --";
    for _ in 0..3000 {
        let len = (noise(&mut seed) % 600) as usize;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                let r = noise(&mut seed);
                if r.is_multiple_of(3) {
                    (r >> 8) as u8
                } else {
                    alphabet[(r >> 8) as usize % alphabet.len()]
                }
            })
            .collect();
        let _ = parse(&bytes, &limits());
    }
}

#[test]
fn truncated_messages_never_panic() {
    let raw = format!(
        "{}--b\r\nContent-Type: text/html; charset=gbk\r\nContent-Transfer-Encoding: base64\r\n\r\nPGRpdj7J vrP9PC9kaXY+\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nFrom: x@y\r\nSubject: inner\r\n\r\ninner body\r\n--b--\r\n",
        "From: a@example.com\r\nSubject: =?gb2312?B?ycmz/Q==?=\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
    );
    let bytes = raw.as_bytes();
    for end in 0..=bytes.len() {
        let _ = parse(&bytes[..end], &limits());
    }
}

#[test]
fn deeply_nested_messages_are_refused_or_read() {
    let mut raw = String::from("From: a@example.com\r\nSubject: leaf\r\n\r\nleaf\r\n");
    for _ in 0..40 {
        raw = format!(
            "From: a@example.com\r\nSubject: wrap\r\nContent-Type: message/rfc822\r\n\r\n{raw}"
        );
    }
    // Either outcome is fine; no panic, no stack overflow.
    let _ = parse(raw.as_bytes(), &limits());

    // A hundred thousand levels would overflow the stack when the parsed tree is
    // dropped: refused before parsing.
    let mut raw = b"From: a@example.com\r\nSubject: deep\r\n".to_vec();
    for _ in 0..100_000 {
        raw.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\nFrom: a@example.com\r\n");
    }
    assert_eq!(
        parse(&raw, &limits()).expect_err("too deep").code(),
        "malformed"
    );
}

fn auto_of(headers: &str, body: &str) -> Option<AutoKind> {
    let raw = format!("From: someone@example.com\r\nSubject: hello\r\n{headers}\r\n{body}");
    parse_str(&raw).expect("parses").auto
}

#[test]
fn machines_are_recognised() {
    assert_eq!(
        auto_of("Auto-Submitted: auto-replied\r\n", "x"),
        Some(AutoKind::AutoReply)
    );
    assert_eq!(auto_of("Auto-Submitted: no\r\n", "x"), None);
    assert_eq!(
        auto_of("X-Autoreply: yes\r\n", "x"),
        Some(AutoKind::AutoReply)
    );
    assert_eq!(auto_of("Precedence: bulk\r\n", "x"), Some(AutoKind::Bulk));
    assert_eq!(
        auto_of("Precedence: list\r\n", "x"),
        Some(AutoKind::MailingList)
    );
    assert_eq!(
        auto_of("List-Id: <news.example.com>\r\n", "x"),
        Some(AutoKind::MailingList)
    );
    assert_eq!(
        auto_of("List-Unsubscribe: <mailto:u@example.com>\r\n", "x"),
        Some(AutoKind::Bulk)
    );
    assert_eq!(
        auto_of("Return-Path: <>\r\n", "x"),
        Some(AutoKind::NullSender)
    );
    assert_eq!(auto_of("X-Spam-Flag: YES\r\n", "x"), Some(AutoKind::Bulk));
    assert_eq!(
        auto_of(
            "X-Rightsdesk-Notification: 0190c1d2-0000-7000-8000-000000000001\r\n",
            "x"
        ),
        Some(AutoKind::OwnMessage)
    );
    // A subject alone is not enough; with a weak sign it is.
    let raw = "From: a@example.com\r\nSubject: 自动回复: 您好\r\n\r\nx";
    assert_eq!(parse_str(raw).expect("parses").auto, None);
    let raw =
        "From: a@example.com\r\nSubject: 自动回复: 您好\r\nX-Auto-Response-Suppress: All\r\n\r\nx";
    assert_eq!(
        parse_str(raw).expect("parses").auto,
        Some(AutoKind::OutOfOffice)
    );
    let raw = "From: MAILER-DAEMON@mx.example.com\r\nSubject: Undelivered Mail Returned to Sender\r\n\r\nMessage-ID: <n9@rightsdesk.example.com>\r\n";
    assert_eq!(
        parse_str(raw).expect("parses").auto,
        Some(AutoKind::Bounce {
            original_message_id: Some("n9@rightsdesk.example.com".into()),
            notification_id: None
        })
    );
}

#[test]
fn a_delivery_status_notification_names_the_returned_message() {
    let raw = "From: Mail Delivery System <MAILER-DAEMON@mx.example.com>\r\n\
To: privacy@example.com\r\n\
Subject: Undelivered Mail Returned to Sender\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"r\"\r\n\
\r\n\
--r\r\n\
Content-Type: text/plain\r\n\
\r\n\
I'm sorry to have to inform you that your message could not be delivered.\r\n\
--r\r\n\
Content-Type: message/delivery-status\r\n\
\r\n\
Reporting-MTA: dns; mx.example.com\r\n\
\r\n\
Final-Recipient: rfc822; nobody@example.net\r\n\
Action: failed\r\n\
Status: 5.1.1\r\n\
--r\r\n\
Content-Type: text/rfc822-headers\r\n\
\r\n\
From: privacy@example.com\r\n\
Message-ID: <0190c1d2@rightsdesk.example.com>\r\n\
X-Rightsdesk-Notification: 0190c1d2-0000-7000-8000-000000000001\r\n\
Subject: Your request\r\n\
--r--\r\n";
    let m = parse_str(raw).expect("parses");
    assert_eq!(
        m.auto,
        Some(AutoKind::Bounce {
            original_message_id: Some("0190c1d2@rightsdesk.example.com".into()),
            notification_id: Some("0190c1d2-0000-7000-8000-000000000001".into()),
        })
    );
    assert_eq!(m.auto.as_ref().map(AutoKind::code), Some("bounce"));
}

#[test]
fn limits_deserialize_with_defaults_and_refuse_unknown_keys() {
    let l: InboundLimits = serde_json::from_str(r#"{"max_parts": 10}"#).expect("json");
    assert_eq!(l.max_parts, 10);
    assert_eq!(l.max_bytes, InboundLimits::default().max_bytes);
    assert!(serde_json::from_str::<InboundLimits>(r#"{"max_party": 10}"#).is_err());
}

#[test]
fn error_codes_are_stable() {
    let codes: Vec<&str> = [
        InboundError::TooLarge { size: 2, limit: 1 },
        InboundError::TooManyParts { parts: 2, limit: 1 },
        InboundError::Malformed("x"),
        InboundError::Empty,
    ]
    .iter()
    .map(InboundError::code)
    .collect();
    assert_eq!(codes, ["too_large", "too_many_parts", "malformed", "empty"]);
}
