//! The officer queue (SPEC §10, §15): ordered by due date, oldest first, with keyset
//! pagination, filters (state, kind, channel, pack, assignee, overdue), search by
//! reference, email or phone, and a 400 naming every invalid parameter.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use rightsdesk_tests::reqwest::StatusCode;
use rightsdesk_tests::serde_json::{Value, json};
use rightsdesk_tests::{OFFICER_PASSWORD, Reply, TestApp, start_time, valid_details};

const QUEUE: &str = "/api/v1/officer/requests";

/// Percent-encodes a query value.
fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn requester(name: &str, email: Option<&str>, phone: Option<&str>) -> Value {
    json!({"name": name, "email": email, "phone": phone, "language": "zh-CN"})
}

fn default_requester() -> Value {
    requester("李雷", Some("li.lei@example.com"), Some("13812345678"))
}

/// Registers a request of `kind` received over `channel` `days_ago` days before the
/// tests' start; returns the 201 body.
async fn register(
    app: &TestApp,
    token: &str,
    kind: &str,
    channel: &str,
    days_ago: i64,
    who: Value,
) -> Value {
    let received_at: DateTime<Utc> = start_time() - Duration::days(days_ago);
    let body = json!({
        "kind": kind,
        "requester": who,
        "details": valid_details(kind),
        "channel": channel,
        "received_at": received_at.to_rfc3339(),
    });
    let r = app.post(QUEUE, Some(token), &body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body
}

/// Files a request over the requester API with `who` as the requester.
async fn file_as(app: &TestApp, kind: &str, who: Value) -> Value {
    let body = json!({"kind": kind, "requester": who, "details": valid_details(kind)});
    let r = app.post("/api/v1/requests", None, &body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body
}

async fn queue(app: &TestApp, token: &str, query: &str) -> Reply {
    app.get(&format!("{QUEUE}?{query}"), Some(token)).await
}

/// The items of a one-page answer to `query`.
async fn items(app: &TestApp, token: &str, query: &str) -> Vec<Value> {
    let query = if query.is_empty() {
        "limit=200".to_owned()
    } else {
        format!("{query}&limit=200")
    };
    let r = queue(app, token, &query).await;
    assert_eq!(r.status, StatusCode::OK, "{query}: {:?}", r.body);
    assert!(r.body["next_cursor"].is_null(), "{query}: one page");
    r.body["items"].as_array().expect("items").clone()
}

fn ids_of(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|i| i["id"].as_str().expect("an id").to_owned())
        .collect()
}

/// The ids answering `query`, as a set.
async fn id_set(app: &TestApp, token: &str, query: &str) -> BTreeSet<String> {
    ids_of(&items(app, token, query).await)
        .into_iter()
        .collect()
}

fn set(filed: &[&Value]) -> BTreeSet<String> {
    filed
        .iter()
        .map(|f| f["id"].as_str().expect("an id").to_owned())
        .collect()
}

fn id(filed: &Value) -> &str {
    filed["id"].as_str().expect("an id")
}

async fn act_ok(app: &TestApp, token: &str, filed: &Value, action: &str, body: Value) {
    let r = app.act(token, id(filed), action, body).await;
    assert_eq!(r.status, StatusCode::OK, "{action}: {:?}", r.body);
}

/// Drives `filed` to `in_progress`.
async fn start(app: &TestApp, token: &str, filed: &Value) {
    act_ok(app, token, filed, "verify", json!({"method": "call_back"})).await;
    act_ok(app, token, filed, "start", json!({})).await;
}

async fn complete(app: &TestApp, token: &str, filed: &Value) {
    start(app, token, filed).await;
    act_ok(app, token, filed, "complete", json!({"summary": "已答复"})).await;
}

fn assert_invalid_query(r: &Reply, query: &str) {
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}: {:?}", r.body);
    assert_eq!(r.code(), "invalid_query", "{query}: {:?}", r.body);
    assert!(
        r.body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{query}"
    );
    assert!(
        r.body["request_id"].as_str().is_some_and(|m| !m.is_empty()),
        "{query}"
    );
}

#[tokio::test]
async fn the_queue_is_ordered_by_due_date_oldest_first() {
    let app = TestApp::spawn().await;
    let (_, token) = app.officer("wang.fang", &["officer"]).await;
    let a = register(&app, &token, "access", "phone", 3, default_requester()).await;
    let b = register(&app, &token, "deletion", "post", 10, default_requester()).await;
    let c = register(&app, &token, "copy", "phone", 1, default_requester()).await;
    let d = app.file("explanation", valid_details("explanation")).await;
    let e = register(&app, &token, "correction", "post", 7, default_requester()).await;
    assert_eq!(a["due_date"], "2026-03-13");
    assert_eq!(b["due_date"], "2026-03-06");
    assert_eq!(c["due_date"], "2026-03-15");
    // An enquiry: 15 working days from Sunday 1 March.
    assert_eq!(d["due_date"], "2026-03-20");
    assert_eq!(e["due_date"], "2026-03-09");

    let listed = items(&app, &token, "").await;
    assert_eq!(
        ids_of(&listed),
        vec![id(&b), id(&e), id(&a), id(&c), id(&d)]
    );
    let due: Vec<&str> = listed
        .iter()
        .map(|i| i["deadline"]["due_date"].as_str().expect("a due date"))
        .collect();
    assert_eq!(
        due,
        vec![
            "2026-03-06",
            "2026-03-09",
            "2026-03-13",
            "2026-03-15",
            "2026-03-20"
        ]
    );
    let first = &listed[0];
    assert_eq!(first["reference"], b["reference"]);
    assert_eq!(first["kind"], "deletion");
    assert_eq!(first["channel"], "post");
    assert_eq!(first["state"], "awaiting_verification");
    assert_eq!(first["received_at"], b["received_at"]);
    assert_eq!(first["deadline"]["time_zone"], "Asia/Shanghai");
    assert_eq!(first["deadline"]["days_left"], 5);
    assert_eq!(first["deadline"]["overdue"], false);
    assert_eq!(listed[4]["channel"], "api");
}

#[tokio::test]
async fn keyset_pagination_walks_every_item_exactly_once() {
    let app = TestApp::spawn().await;
    let (_, token) = app.officer("wang.fang", &["officer"]).await;
    // Several requests share a due date, so ties must be broken consistently.
    for (kind, days_ago) in [
        ("access", 5),
        ("deletion", 2),
        ("access", 5),
        ("deletion", 9),
        ("access", 0),
        ("deletion", 2),
        ("access", 5),
    ] {
        register(&app, &token, kind, "phone", days_ago, default_requester()).await;
    }
    let all = ids_of(&items(&app, &token, "").await);
    assert_eq!(all.len(), 7);

    for (filter, expected) in [("", all.len()), ("kind=deletion&", 3)] {
        let mut walked = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let query = match &cursor {
                Some(c) => format!("{filter}limit=2&cursor={c}"),
                None => format!("{filter}limit=2"),
            };
            let r = queue(&app, &token, &query).await;
            assert_eq!(r.status, StatusCode::OK, "{query}: {:?}", r.body);
            let page = r.body["items"].as_array().expect("items");
            assert!(page.len() <= 2, "{query}");
            walked.extend(ids_of(page));
            pages += 1;
            match r.body["next_cursor"].as_str() {
                Some(next) => {
                    assert_eq!(page.len(), 2, "a full page before the last");
                    cursor = Some(next.to_owned());
                }
                None => {
                    assert!(
                        r.body.get("next_cursor").is_none_or(Value::is_null),
                        "{:?}",
                        r.body
                    );
                    break;
                }
            }
            assert!(pages <= expected, "the walk ends");
        }
        assert_eq!(walked.len(), expected, "{filter}");
        assert_eq!(pages, expected.div_ceil(2), "{filter}");
        let unique: BTreeSet<&String> = walked.iter().collect();
        assert_eq!(unique.len(), expected, "no item twice: {filter}");
        if filter.is_empty() {
            assert_eq!(walked, all);
        }
    }

    // A page that ends exactly at the last item has no next cursor.
    let r = queue(&app, &token, "limit=7").await;
    assert_eq!(r.body["items"].as_array().map(Vec::len), Some(7));
    assert!(r.body["next_cursor"].is_null(), "{:?}", r.body);
    let r = queue(&app, &token, "limit=6").await;
    let next = r.body["next_cursor"].as_str().expect("a next page");
    let r = queue(&app, &token, &format!("limit=6&cursor={next}")).await;
    assert_eq!(
        ids_of(r.body["items"].as_array().expect("items")),
        vec![all[6].clone()]
    );
    assert!(r.body["next_cursor"].is_null());
}

#[tokio::test]
async fn a_forged_cursor_is_refused() {
    let app = TestApp::spawn().await;
    let (_, token) = app.officer("wang.fang", &["officer"]).await;
    register(&app, &token, "access", "phone", 1, default_requester()).await;
    for cursor in ["abc!", "bm90fGF8Y3Vyc29y", "MjAyNg", "____", "%E4%B8%AD"] {
        let r = queue(&app, &token, &format!("cursor={cursor}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{cursor}: {:?}", r.body);
        assert_eq!(r.code(), "invalid_cursor", "{cursor}");
        assert!(r.body["request_id"].as_str().is_some_and(|s| !s.is_empty()));
    }
}

#[tokio::test]
async fn the_state_filter_takes_one_state_a_list_open_closed_or_all() {
    let app = TestApp::spawn().await;
    let (_, token) = app.officer("wang.fang", &["officer"]).await;
    let received = register(&app, &token, "access", "phone", 1, default_requester()).await;
    let verified = register(&app, &token, "access", "phone", 2, default_requester()).await;
    act_ok(
        &app,
        &token,
        &verified,
        "verify",
        json!({"method": "call_back"}),
    )
    .await;
    let in_progress = register(&app, &token, "deletion", "post", 3, default_requester()).await;
    start(&app, &token, &in_progress).await;
    let completed = register(&app, &token, "copy", "post", 4, default_requester()).await;
    complete(&app, &token, &completed).await;
    let withdrawn = app.file("access", valid_details("access")).await;
    let r = app
        .post(
            &format!("/api/v1/requests/{}/withdraw", id(&withdrawn)),
            withdrawn["requester_token"].as_str(),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);

    let open = set(&[&received, &verified, &in_progress]);
    let closed = set(&[&completed, &withdrawn]);
    let all: BTreeSet<String> = open.union(&closed).cloned().collect();
    for (query, expected) in [
        ("", &open),
        ("state=open", &open),
        ("state=closed", &closed),
        ("state=all", &all),
        ("state=completed%2Cwithdrawn", &closed),
    ] {
        assert_eq!(&id_set(&app, &token, query).await, expected, "{query}");
    }
    for (query, expected) in [
        ("state=awaiting_verification", set(&[&received])),
        ("state=verified", set(&[&verified])),
        ("state=withdrawn", set(&[&withdrawn])),
        (
            "state=awaiting_verification,in_progress",
            set(&[&received, &in_progress]),
        ),
        (
            "state=awaiting_verification%2C%20in_progress",
            set(&[&received, &in_progress]),
        ),
        (
            "state=completed,awaiting_verification",
            set(&[&completed, &received]),
        ),
    ] {
        assert_eq!(id_set(&app, &token, query).await, expected, "{query}");
    }
    let listed = items(&app, &token, "state=in_progress").await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["state"], "in_progress");
    // A closed request has no days left and is never overdue.
    let listed = items(&app, &token, "state=completed").await;
    assert_eq!(listed[0]["state"], "completed");
    assert!(listed[0]["deadline"]["days_left"].is_null());
    assert_eq!(listed[0]["deadline"]["overdue"], false);
}

#[tokio::test]
async fn the_queue_filters_by_kind_channel_and_pack() {
    let app = TestApp::spawn().await;
    let (_, token) = app.officer("wang.fang", &["officer"]).await;
    let access_phone = register(&app, &token, "access", "phone", 1, default_requester()).await;
    let deletion_post = register(&app, &token, "deletion", "post", 2, default_requester()).await;
    let deletion_phone = register(&app, &token, "deletion", "phone", 3, default_requester()).await;
    let correction_in_person = register(
        &app,
        &token,
        "correction",
        "in_person",
        4,
        default_requester(),
    )
    .await;
    let access_api = app.file("access", valid_details("access")).await;

    for (query, expected) in [
        ("kind=deletion", set(&[&deletion_post, &deletion_phone])),
        ("kind=access", set(&[&access_phone, &access_api])),
        ("kind=complaint", set(&[])),
        ("channel=phone", set(&[&access_phone, &deletion_phone])),
        ("channel=post", set(&[&deletion_post])),
        ("channel=api", set(&[&access_api])),
        ("channel=in_person", set(&[&correction_in_person])),
        ("channel=email", set(&[])),
        ("kind=deletion&channel=phone", set(&[&deletion_phone])),
        (
            "pack=pipl",
            set(&[
                &access_phone,
                &deletion_post,
                &deletion_phone,
                &correction_in_person,
                &access_api,
            ]),
        ),
    ] {
        assert_eq!(id_set(&app, &token, query).await, expected, "{query}");
    }
    for item in items(&app, &token, "pack=pipl").await {
        assert_eq!(item["deadline"]["pack"], "pipl");
        assert_eq!(item["deadline"]["pack_version"], 2);
    }
}

#[tokio::test]
async fn the_queue_filters_by_assignee() {
    let app = TestApp::spawn().await;
    let (me_id, me) = app.officer("wang.fang", &["officer"]).await;
    let (other_id, other) = app.officer("li.qiang", &["officer"]).await;
    let mine = register(&app, &me, "access", "phone", 1, default_requester()).await;
    let theirs = register(&app, &me, "deletion", "post", 2, default_requester()).await;
    let nobodys = register(&app, &me, "copy", "phone", 3, default_requester()).await;
    act_ok(&app, &me, &mine, "assign", json!({"assignee_id": me_id})).await;
    act_ok(
        &app,
        &me,
        &theirs,
        "assign",
        json!({"assignee_id": other_id}),
    )
    .await;

    assert_eq!(id_set(&app, &me, "assignee=me").await, set(&[&mine]));
    assert_eq!(id_set(&app, &other, "assignee=me").await, set(&[&theirs]));
    assert_eq!(
        id_set(&app, &me, &format!("assignee={other_id}")).await,
        set(&[&theirs])
    );
    assert_eq!(
        id_set(&app, &other, &format!("assignee={me_id}")).await,
        set(&[&mine])
    );
    assert_eq!(id_set(&app, &me, "assignee=none").await, set(&[&nobodys]));
    assert_eq!(
        id_set(&app, &me, &format!("assignee={}", uuid::Uuid::now_v7())).await,
        set(&[])
    );
    let listed = items(&app, &me, "assignee=me").await;
    assert_eq!(listed[0]["assignee_id"], me_id.as_str());
}

#[tokio::test]
async fn the_overdue_filter_follows_the_service_clock() {
    let app = TestApp::spawn().await;
    let (_, token) = app.officer("wang.fang", &["officer"]).await;
    let late = register(&app, &token, "access", "phone", 20, default_requester()).await;
    let due_today = register(&app, &token, "access", "phone", 15, default_requester()).await;
    let future = register(&app, &token, "deletion", "post", 1, default_requester()).await;
    let late_but_closed = register(&app, &token, "copy", "post", 30, default_requester()).await;
    complete(&app, &token, &late_but_closed).await;
    assert_eq!(late["due_date"], "2026-02-24");
    assert_eq!(due_today["due_date"], "2026-03-01");

    assert_eq!(id_set(&app, &token, "overdue=true").await, set(&[&late]));
    assert_eq!(
        id_set(&app, &token, "overdue=false").await,
        set(&[&due_today, &future])
    );
    let listed = items(&app, &token, "overdue=true").await;
    assert_eq!(listed[0]["deadline"]["overdue"], true);
    assert_eq!(listed[0]["deadline"]["days_left"], -5);
    let listed = items(&app, &token, "overdue=false").await;
    assert!(listed.iter().all(|i| i["deadline"]["overdue"] == false));
    // Even asked for closed requests, overdue=true lists only open ones.
    assert_eq!(
        id_set(&app, &token, "state=all&overdue=true").await,
        set(&[&late])
    );

    // The next day, the request due today is late too.
    app.clock.advance(Duration::days(1));
    let token = app.login("wang.fang", OFFICER_PASSWORD).await;
    assert_eq!(
        id_set(&app, &token, "overdue=true").await,
        set(&[&late, &due_today])
    );
    assert_eq!(id_set(&app, &token, "overdue=false").await, set(&[&future]));
}

#[tokio::test]
async fn search_finds_a_request_by_reference_email_or_phone() {
    let app = TestApp::spawn().await;
    let (_, token) = app.officer("wang.fang", &["officer"]).await;
    let han = file_as(
        &app,
        "access",
        requester("韩梅梅", Some("Han.MeiMei@Example.COM"), None),
    )
    .await;
    let li = register(
        &app,
        &token,
        "deletion",
        "phone",
        2,
        requester("李雷", None, Some("+86 138 1234 5678")),
    )
    .await;
    let wang = register(
        &app,
        &token,
        "copy",
        "post",
        3,
        requester("王伟", Some("wang.wei@example.org"), Some("13900001111")),
    )
    .await;

    let han_ref = han["reference"].as_str().expect("a reference");
    let li_ref = li["reference"].as_str().expect("a reference");
    for (q, expected) in [
        (han_ref.to_owned(), set(&[&han])),
        (han_ref.to_lowercase(), set(&[&han])),
        (li_ref.to_owned(), set(&[&li])),
        ("han.meimei@example.com".to_owned(), set(&[&han])),
        ("HAN.MEIMEI@EXAMPLE.COM".to_owned(), set(&[&han])),
        ("Han.MeiMei@Example.COM".to_owned(), set(&[&han])),
        ("wang.wei@example.org".to_owned(), set(&[&wang])),
        ("13812345678".to_owned(), set(&[&li])),
        ("+86 138 1234 5678".to_owned(), set(&[&li])),
        ("+8613812345678".to_owned(), set(&[&li])),
        ("138-1234-5678".to_owned(), set(&[&li])),
        ("+86 139 0000 1111".to_owned(), set(&[&wang])),
        ("nobody@example.com".to_owned(), set(&[])),
        ("13700000000".to_owned(), set(&[])),
    ] {
        assert_eq!(
            id_set(&app, &token, &format!("q={}", enc(&q))).await,
            expected,
            "q={q}"
        );
    }

    // The stored email is lower-cased.
    let r = app
        .get(&format!("{QUEUE}/{}", id(&han)), Some(&token))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["requester"]["email"], "han.meimei@example.com");
    let r = app.get(&format!("{QUEUE}/{}", id(&li)), Some(&token)).await;
    assert_eq!(r.body["requester"]["phone"], "+8613812345678");
}

#[tokio::test]
async fn search_without_a_state_finds_closed_requests_too() {
    let app = TestApp::spawn().await;
    let (_, token) = app.officer("wang.fang", &["officer"]).await;
    let han = file_as(
        &app,
        "access",
        requester("韩梅梅", Some("han.meimei@example.com"), None),
    )
    .await;
    let open_one = file_as(
        &app,
        "deletion",
        requester("韩梅梅", Some("han.meimei@example.com"), None),
    )
    .await;
    let r = app
        .post(
            &format!("/api/v1/requests/{}/withdraw", id(&han)),
            han["requester_token"].as_str(),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let reference = han["reference"].as_str().expect("a reference");

    // Not in the default (open) queue ...
    assert_eq!(id_set(&app, &token, "").await, set(&[&open_one]));
    // ... but found by a search.
    let found = items(&app, &token, &format!("q={reference}")).await;
    assert_eq!(ids_of(&found), vec![id(&han).to_owned()]);
    assert_eq!(found[0]["state"], "withdrawn");
    assert_eq!(
        id_set(&app, &token, "q=han.meimei%40example.com").await,
        set(&[&han, &open_one])
    );
    // A state given with the search still applies.
    assert_eq!(
        id_set(&app, &token, &format!("q={reference}&state=open")).await,
        set(&[])
    );
    assert_eq!(
        id_set(&app, &token, &format!("q={reference}&state=closed")).await,
        set(&[&han])
    );
    assert_eq!(
        id_set(&app, &token, "q=han.meimei%40example.com&state=open").await,
        set(&[&open_one])
    );
}

#[tokio::test]
async fn invalid_query_parameters_are_named() {
    let app = TestApp::spawn().await;
    let (_, token) = app.officer("wang.fang", &["officer"]).await;
    for (query, fields) in [
        ("state=bogus", vec!["state"]),
        ("state=received,bogus", vec!["state"]),
        ("kind=bogus", vec!["kind"]),
        ("channel=fax", vec!["channel"]),
        ("pack=hipaa", vec!["pack"]),
        ("limit=0", vec!["limit"]),
        ("limit=201", vec!["limit"]),
        ("limit=abc", vec!["limit"]),
        ("limit=-1", vec!["limit"]),
        ("limit=1.5", vec!["limit"]),
        ("overdue=maybe", vec!["overdue"]),
        ("overdue=1", vec!["overdue"]),
        ("assignee=bogus", vec!["assignee"]),
        ("q=not-a-thing", vec!["q"]),
        ("q=bad%40", vec!["q"]),
        ("q=a%00b%40example.com", vec!["q"]),
        ("q=%00", vec!["q"]),
        ("state=%00", vec!["state"]),
        (
            "state=bogus&kind=bogus&limit=0&overdue=maybe",
            vec!["state", "kind", "overdue", "limit"],
        ),
    ] {
        let r = queue(&app, &token, query).await;
        assert_invalid_query(&r, query);
        assert_eq!(r.fields(), fields, "{query}: {:?}", r.body);
        for f in r.body["details"]["fields"].as_array().expect("fields") {
            assert_eq!(f["code"], "invalid_value", "{query}");
        }
    }

    for query in [
        "foo=1",
        "Kind=access",
        "state=open&sort=reference",
        "page=2",
        "state=open&state=closed",
    ] {
        let r = queue(&app, &token, query).await;
        assert_invalid_query(&r, query);
        assert!(
            r.body["details"]["problem"]
                .as_str()
                .is_some_and(|p| !p.is_empty()),
            "{query}: {:?}",
            r.body
        );
    }

    for query in [
        "limit=1",
        "limit=200",
        "limit=",
        "state=&kind=",
        "overdue=false",
    ] {
        let r = queue(&app, &token, query).await;
        assert_eq!(r.status, StatusCode::OK, "{query}: {:?}", r.body);
    }
}
