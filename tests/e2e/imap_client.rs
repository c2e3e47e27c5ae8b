//! The IMAP poller's client (`rightsdesk_mail::imap`, SPEC §6) against a real Dovecot:
//! new mail in UID order and in batches, a cursor that carries across sessions (nothing
//! read twice, nothing skipped), processed mail marked `\Seen` and moved, oversized mail
//! reported without its content, a UIDVALIDITY change reported as a reset, TLS and
//! STARTTLS, and errors that say whether trying again can help.

use rightsdesk_mail::imap::{
    Batch, Cursor, ImapClient, ImapConfig, ImapError, ImapSecurity, ImapSession, Secret,
};
use rightsdesk_tests::imap::{ImapOptions, ImapServer};

/// A request for deletion, numbered `n`, with a Message-ID that names it.
fn message(n: u32) -> Vec<u8> {
    format!(
        "From: Li Lei <li.lei@example.com>\r\n\
         To: privacy@example.com\r\n\
         Subject: =?UTF-8?B?{}?= {n}\r\n\
         Message-ID: <request-{n}@example.com>\r\n\
         Date: Sun, 01 Mar 2026 10:00:00 +0800\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: 8bit\r\n\
         \r\n\
         请删除我的个人信息。编号 {n}\r\n",
        "5Yig6Zmk5Liq5Lq65L+h5oGv" // 删除个人信息
    )
    .into_bytes()
}

fn message_id(n: u32) -> String {
    format!("<request-{n}@example.com>")
}

fn contains(raw: &[u8], needle: &str) -> bool {
    raw.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// The request numbers of a batch's messages, in order.
fn numbers(batch: &Batch) -> Vec<u32> {
    batch
        .messages
        .iter()
        .map(|m| {
            (1..=100)
                .find(|n| contains(&m.raw, &message_id(*n)))
                .unwrap_or_else(|| panic!("message {} has no known Message-ID", m.uid))
        })
        .collect()
}

async fn connect(config: ImapConfig) -> ImapSession {
    ImapClient::new(config)
        .expect("a valid configuration")
        .connect()
        .await
        .expect("connect and log in")
}

async fn connect_err(config: ImapConfig) -> ImapError {
    ImapClient::new(config)
        .expect("a valid configuration")
        .connect()
        .await
        .expect_err("the connection fails")
}

#[tokio::test]
async fn new_mail_comes_in_uid_order_with_its_content_and_stays_unread() {
    let server = ImapServer::start().await;
    for n in 1..=3 {
        server.deliver_raw(&message(n));
    }
    let mut session = connect(server.client_config()).await;
    let batch = session.fetch_new(None).await.expect("fetch");
    assert!(!batch.reset);
    assert!(!batch.more);
    assert_eq!(numbers(&batch), [1, 2, 3]);
    let uids: Vec<u32> = batch.messages.iter().map(|m| m.uid).collect();
    assert!(uids.windows(2).all(|w| w[0] < w[1]), "{uids:?}");
    for m in &batch.messages {
        assert!(!m.too_large);
        assert_eq!(m.size as usize, m.raw.len());
        assert!(contains(&m.raw, "请删除我的个人信息"), "the body as stored");
    }
    session.logout().await.expect("logout");

    // BODY.PEEK: reading did not mark anything \Seen.
    let stored = server.stored(None);
    assert_eq!(stored.len(), 3);
    assert!(stored.iter().all(|s| !s.seen()), "{stored:?}");
}

#[tokio::test]
async fn the_cursor_carries_across_sessions_without_rereading_or_skipping() {
    let server = ImapServer::start().await;
    server.deliver_raw(&message(1));
    server.deliver_raw(&message(2));

    let mut session = connect(server.client_config()).await;
    let first = session.fetch_new(None).await.expect("fetch");
    assert_eq!(numbers(&first), [1, 2]);
    // The caller committed both and stored the cursor.
    let cursor = first.cursor_after(first.messages[1].uid);
    session.logout().await.expect("logout");

    // Nothing new: nothing comes back, although `n:*` names the last message.
    let mut session = connect(server.client_config()).await;
    let again = session.fetch_new(Some(cursor)).await.expect("fetch");
    assert!(again.is_empty(), "{again:?}");
    assert!(!again.reset);
    assert_eq!(again.uid_validity, cursor.uid_validity);
    session.logout().await.expect("logout");

    server.deliver_raw(&message(3));
    server.deliver_raw(&message(4));
    let mut session = connect(server.client_config()).await;
    let next = session.fetch_new(Some(cursor)).await.expect("fetch");
    assert_eq!(numbers(&next), [3, 4]);
    assert!(next.messages.iter().all(|m| m.uid > cursor.last_uid));

    // Only the first was committed before a crash: the second comes again, once.
    let cursor = next.cursor_after(next.messages[0].uid);
    drop(session);
    let mut session = connect(server.client_config()).await;
    let after_crash = session.fetch_new(Some(cursor)).await.expect("fetch");
    assert_eq!(numbers(&after_crash), [4]);
    session.logout().await.expect("logout");
}

#[tokio::test]
async fn batches_hold_at_most_batch_size_messages() {
    let server = ImapServer::start().await;
    for n in 1..=7 {
        server.deliver_raw(&message(n));
    }
    let config = ImapConfig {
        batch_size: 3,
        ..server.client_config()
    };
    let mut session = connect(config).await;
    let mut cursor: Option<Cursor> = None;
    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    loop {
        let batch = session.fetch_new(cursor).await.expect("fetch");
        sizes.push((batch.messages.len(), batch.more));
        seen.extend(numbers(&batch));
        let Some(last) = batch.messages.last() else {
            break;
        };
        cursor = Some(batch.cursor_after(last.uid));
    }
    assert_eq!(seen, (1..=7).collect::<Vec<_>>());
    assert_eq!(sizes, [(3, true), (3, true), (1, false), (0, false)]);
    session.logout().await.expect("logout");
}

/// Deletes the Maildir files of the messages numbered `ns`, as another mail client
/// expunging them would.
fn remove_messages(server: &ImapServer, ns: std::ops::RangeInclusive<u32>) {
    for sub in ["new", "cur"] {
        for entry in std::fs::read_dir(server.maildir.join(sub))
            .expect("a Maildir folder")
            .filter_map(Result::ok)
        {
            let raw = std::fs::read(entry.path()).unwrap_or_default();
            if ns.clone().any(|n| contains(&raw, &message_id(n))) {
                std::fs::remove_file(entry.path()).expect("remove a message");
            }
        }
    }
}

#[tokio::test]
async fn a_gap_of_removed_mail_is_stepped_over_in_one_batch() {
    let server = ImapServer::start().await;
    for n in 1..=8 {
        server.deliver_raw(&message(n));
    }
    let config = ImapConfig {
        batch_size: 2,
        ..server.client_config()
    };
    // A first look numbers the messages 1 to 8; then 2 to 6 are removed elsewhere.
    let mut session = connect(config.clone()).await;
    let first = session.fetch_new(None).await.expect("fetch");
    assert_eq!(numbers(&first), [1, 2]);
    let after_one = first.cursor_after(first.messages[0].uid);
    session.logout().await.expect("logout");
    remove_messages(&server, 2..=6);

    let mut session = connect(config).await;
    let batch = session.fetch_new(Some(after_one)).await.expect("fetch");
    assert_eq!(
        numbers(&batch),
        [7, 8],
        "the empty range 2:3 is not the end"
    );
    assert!(!batch.more);
    let last = batch.messages.last().expect("a message").uid;
    let empty = session
        .fetch_new(Some(batch.cursor_after(last)))
        .await
        .expect("fetch");
    assert!(empty.messages.is_empty() && !empty.more);
    session.logout().await.expect("logout");
}

#[tokio::test]
async fn processed_mail_is_marked_seen_and_stays_without_a_processed_folder() {
    let server = ImapServer::start().await;
    server.deliver_raw(&message(1));
    server.deliver_raw(&message(2));
    let mut session = connect(server.client_config()).await;
    let batch = session.fetch_new(None).await.expect("fetch");
    session
        .mark_processed(batch.messages[0].uid)
        .await
        .expect("mark processed");
    // Again, as after a crash between the two: harmless.
    session
        .mark_processed(batch.messages[0].uid)
        .await
        .expect("mark processed again");
    session.logout().await.expect("logout");

    let stored = server.stored(None);
    assert_eq!(stored.len(), 2, "both stay in the INBOX");
    let first = stored
        .iter()
        .find(|s| s.contains(&message_id(1)))
        .expect("message 1");
    let second = stored
        .iter()
        .find(|s| s.contains(&message_id(2)))
        .expect("message 2");
    assert!(first.seen(), "{first:?}");
    assert!(!second.seen(), "{second:?}");
}

#[tokio::test]
async fn processed_mail_moves_to_the_processed_folder_which_is_created() {
    let server = ImapServer::start().await;
    server.deliver_raw(&message(1));
    server.deliver_raw(&message(2));
    let config = ImapConfig {
        processed_folder: Some("Processed".to_owned()),
        ..server.client_config()
    };
    let mut session = connect(config.clone()).await;
    assert!(session.has_move(), "Dovecot announces MOVE");
    let batch = session.fetch_new(None).await.expect("fetch");
    session
        .mark_processed(batch.messages[0].uid)
        .await
        .expect("mark processed");
    session.logout().await.expect("logout");

    let inbox = server.stored(None);
    assert_eq!(inbox.len(), 1);
    assert!(inbox[0].contains(&message_id(2)));
    let processed = server.stored(Some("Processed"));
    assert_eq!(processed.len(), 1, "moved into the folder it created");
    assert!(processed[0].contains(&message_id(1)));
    assert!(processed[0].seen(), "{:?}", processed[0]);

    // The folder exists now; the cursor still covers what is left in the INBOX.
    let mut session = connect(config).await;
    let rest = session
        .fetch_new(Some(batch.cursor_after(batch.messages[0].uid)))
        .await
        .expect("fetch");
    assert_eq!(numbers(&rest), [2]);
    session
        .mark_processed(rest.messages[0].uid)
        .await
        .expect("mark processed");
    session.logout().await.expect("logout");
    assert!(server.stored(None).is_empty());
    assert_eq!(server.stored(Some("Processed")).len(), 2);
}

#[tokio::test]
async fn without_move_processed_mail_is_copied_flagged_and_expunged() {
    // Neither MOVE nor UIDPLUS: COPY, STORE \Deleted, EXPUNGE.
    let server = ImapServer::start_with(ImapOptions {
        capabilities: Some("IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+".to_owned()),
        ..ImapOptions::default()
    })
    .await;
    server.create_folder("Done");
    server.deliver_raw(&message(1));
    server.deliver_raw(&message(2));
    let config = ImapConfig {
        processed_folder: Some("Done".to_owned()),
        ..server.client_config()
    };
    let mut session = connect(config).await;
    assert!(!session.has_move());
    let batch = session.fetch_new(None).await.expect("fetch");
    session
        .mark_processed(batch.messages[1].uid)
        .await
        .expect("mark processed");
    session.logout().await.expect("logout");

    let inbox = server.stored(None);
    assert_eq!(inbox.len(), 1, "{inbox:?}");
    assert!(inbox[0].contains(&message_id(1)));
    assert!(!inbox[0].seen());
    let done = server.stored(Some("Done"));
    assert_eq!(done.len(), 1);
    assert!(done[0].contains(&message_id(2)));
    assert!(done[0].seen());
}

#[tokio::test]
async fn an_oversized_message_comes_with_its_size_and_without_content() {
    let server = ImapServer::start().await;
    server.deliver_raw(&message(1));
    let mut big = message(2);
    big.extend(std::iter::repeat_n(b'x', 5000));
    big.extend(b"\r\n");
    server.deliver_raw(&big);
    server.deliver_raw(&message(3));
    let config = ImapConfig {
        max_message_bytes: 2048,
        ..server.client_config()
    };
    let mut session = connect(config).await;
    let batch = session.fetch_new(None).await.expect("fetch");
    assert_eq!(batch.messages.len(), 3);
    let [first, oversized, third] = &batch.messages[..] else {
        panic!("three messages: {batch:?}");
    };
    assert!(!first.too_large && contains(&first.raw, &message_id(1)));
    assert!(oversized.too_large);
    assert!(oversized.raw.is_empty());
    assert!(oversized.size > 5000, "{oversized:?}");
    assert!(!third.too_large && contains(&third.raw, &message_id(3)));
    assert!(first.uid < oversized.uid && oversized.uid < third.uid);
    session.logout().await.expect("logout");
}

#[tokio::test]
async fn a_uidvalidity_change_is_reported_as_a_reset_from_uid_1() {
    let mut server = ImapServer::start().await;
    server.deliver_raw(&message(1));
    server.deliver_raw(&message(2));
    let mut session = connect(server.client_config()).await;
    let batch = session.fetch_new(None).await.expect("fetch");
    let cursor = batch.cursor_after(batch.messages[1].uid);
    session.logout().await.expect("logout");

    server.change_uidvalidity().await;
    server.deliver_raw(&message(3));
    let mut session = connect(server.client_config()).await;
    let after = session.fetch_new(Some(cursor)).await.expect("fetch");
    assert!(after.reset, "{after:?}");
    assert_ne!(after.uid_validity, cursor.uid_validity);
    assert_eq!(numbers(&after), [1, 2, 3], "everything again, from UID 1");

    // Under the new UIDVALIDITY the cursor works as before.
    let cursor = after.cursor_after(after.messages[2].uid);
    let again = session.fetch_new(Some(cursor)).await.expect("fetch");
    assert!(!again.reset);
    assert!(again.is_empty(), "{again:?}");
    session.logout().await.expect("logout");
}

#[tokio::test]
async fn mail_delivered_by_a_real_smtp_server_is_fetched() {
    let mut server = ImapServer::start().await;
    server.send_over_smtp(&message(1)).await;
    server.send_over_smtp(&message(2)).await;
    let mut session = connect(server.client_config()).await;
    let batch = session.fetch_new(None).await.expect("fetch");
    let mut got = numbers(&batch);
    got.sort_unstable();
    assert_eq!(got, [1, 2]);
    assert!(
        batch
            .messages
            .iter()
            .all(|m| contains(&m.raw, "请删除我的个人信息")),
        "the UTF-8 body survived SMTP"
    );
    session
        .mark_processed(batch.messages[0].uid)
        .await
        .expect("mark processed");
    session.logout().await.expect("logout");
}

#[tokio::test]
async fn plain_text_is_refused_unless_allowed() {
    let server = ImapServer::start().await;
    let config = ImapConfig {
        allow_plain: false,
        ..server.client_config()
    };
    match ImapClient::new(config) {
        Err(ImapError::Config(m)) => assert!(m.contains("imap.allow_plain"), "{m}"),
        other => panic!("expected a configuration error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_wrong_password_is_an_auth_error_that_retrying_does_not_fix() {
    let server = ImapServer::start().await;
    let config = ImapConfig {
        password: Secret::new("not-the-password"),
        ..server.client_config()
    };
    let e = connect_err(config).await;
    assert!(matches!(e, ImapError::Auth(_)), "{e:?}");
    assert!(!e.is_transient());
    assert!(!e.to_string().contains("not-the-password"));
}

#[tokio::test]
async fn a_server_that_is_down_is_a_transient_error_until_it_is_back() {
    let mut server = ImapServer::start().await;
    server.deliver_raw(&message(1));
    server.stop().await;
    let e = connect_err(server.client_config()).await;
    assert!(matches!(e, ImapError::Connect(_)), "{e:?}");
    assert!(e.is_transient());

    server.restart().await;
    let mut session = connect(server.client_config()).await;
    assert_eq!(numbers(&session.fetch_new(None).await.expect("fetch")), [1]);
    session.logout().await.expect("logout");
}

#[tokio::test]
async fn a_connection_dropped_mid_session_is_transient() {
    let mut server = ImapServer::start().await;
    server.deliver_raw(&message(1));
    let mut session = connect(server.client_config()).await;
    server.stop().await;
    let e = session
        .fetch_new(None)
        .await
        .expect_err("the server is gone");
    assert!(e.is_transient(), "{e:?}");
    // The session is not used again after a cut.
    let e = session.fetch_new(None).await.expect_err("still gone");
    assert!(e.is_transient(), "{e:?}");
}

#[tokio::test]
async fn a_missing_mailbox_is_a_protocol_error() {
    let server = ImapServer::start().await;
    let config = ImapConfig {
        mailbox: "Nonexistent".to_owned(),
        ..server.client_config()
    };
    let mut session = connect(config).await;
    let e = session.fetch_new(None).await.expect_err("no such mailbox");
    assert!(matches!(e, ImapError::Protocol(_)), "{e:?}");
    assert!(!e.is_transient());
}

fn tls_config(server: &ImapServer, security: ImapSecurity, port: u16) -> ImapConfig {
    ImapConfig {
        security,
        port: Some(port),
        allow_plain: false,
        tls_ca_file: server.ca_file.clone(),
        ..server.client_config()
    }
}

#[tokio::test]
async fn implicit_tls_and_starttls_work_with_the_company_ca() {
    let server = ImapServer::start_with(ImapOptions {
        tls: true,
        ..ImapOptions::default()
    })
    .await;
    server.deliver_raw(&message(1));
    let tls_port = server.tls_port.expect("a TLS port");

    let mut session = connect(tls_config(&server, ImapSecurity::Tls, tls_port)).await;
    assert_eq!(numbers(&session.fetch_new(None).await.expect("fetch")), [1]);
    session.logout().await.expect("logout");

    let mut session = connect(tls_config(&server, ImapSecurity::Starttls, server.port)).await;
    assert_eq!(numbers(&session.fetch_new(None).await.expect("fetch")), [1]);
    session.logout().await.expect("logout");
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_tls_error() {
    let server = ImapServer::start_with(ImapOptions {
        tls: true,
        ..ImapOptions::default()
    })
    .await;
    let tls_port = server.tls_port.expect("a TLS port");
    let config = ImapConfig {
        tls_ca_file: None,
        ..tls_config(&server, ImapSecurity::Tls, tls_port)
    };
    let e = connect_err(config).await;
    assert!(matches!(e, ImapError::Tls(_)), "{e:?}");
    assert!(!e.is_transient());
}

#[tokio::test]
async fn starttls_on_a_server_without_tls_is_a_tls_error() {
    let server = ImapServer::start().await;
    let config = ImapConfig {
        security: ImapSecurity::Starttls,
        allow_plain: false,
        ..server.client_config()
    };
    let e = connect_err(config).await;
    assert!(matches!(e, ImapError::Tls(_)), "{e:?}");
}

#[tokio::test]
async fn a_server_that_never_answers_is_a_transient_timeout() {
    // Accepts the connection (the kernel does, on a listening socket) but never greets.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let port = silent.local_addr().expect("an address").port();
    let config = ImapConfig {
        host: "127.0.0.1".to_owned(),
        port: Some(port),
        security: ImapSecurity::Plain,
        allow_plain: true,
        username: "privacy@example.com".to_owned(),
        password: Secret::new("whatever"),
        timeout_secs: 1,
        ..ImapConfig::default()
    };
    let started = std::time::Instant::now();
    let e = connect_err(config).await;
    assert!(matches!(e, ImapError::Timeout(1)), "{e:?}");
    assert!(e.is_transient());
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    drop(silent);
}
