//! The request lifecycle over the API (SPEC §3, §10, §15): every legal and every
//! illegal move from every state the API can reach, who may make each move,
//! assignment, comments, deadlines of reopened, closed, overdue and officer-registered
//! requests, and what the requester sees.
//!
//! `awaiting_verification` and `expired` are reached only by system moves
//! (`request_verification`, `expire`) that no route drives yet; they are left out of the
//! tables below until that work lands.

use chrono::{DateTime, Duration, TimeZone, Utc};
use rightsdesk_core::Clock;
use rightsdesk_tests::reqwest::StatusCode;
use rightsdesk_tests::serde_json::{Value, json};
use rightsdesk_tests::{OFFICER_PASSWORD, Reply, TestApp, filing, start_time, valid_details};

/// Every state a request can be driven into over the API today.
const REACHABLE: &[&str] = &[
    "awaiting_verification",
    "verified",
    "in_progress",
    "awaiting_requester",
    "completed",
    "rejected",
    "withdrawn",
    "reopened",
];

/// The reachable states in which the request still needs work.
const OPEN: &[&str] = &[
    "awaiting_verification",
    "verified",
    "in_progress",
    "awaiting_requester",
    "reopened",
];

/// The actions an officer takes through `/actions/{action}`.
const OFFICER_ACTIONS: &[&str] = &[
    "assign",
    "verify",
    "start",
    "request_info",
    "resume",
    "complete",
    "reject",
    "reopen",
];

/// The review of an evidence file, legal in every open state (tests/e2e/evidence.rs
/// takes them: they need a file).
const EVIDENCE_ACTIONS: &[&str] = &["accept_evidence", "reject_evidence"];

/// The DPO's extension of a deadline, legal in every open state (tests/e2e/deadlines.rs
/// takes it: it depends on the rule pack).
const DPO_OPEN_ACTIONS: &[&str] = &["extend"];

/// The cost fee for a repeated request, offered only when the request repeats another
/// (tests/e2e/fees.rs takes it: it needs a repeat).
const FEE_ACTIONS: &[&str] = &["quote_fee"];

/// Holding a request for the DPO, in every open state (tests/e2e/next_of_kin.rs takes
/// them); `release` is offered only while it is held.
const HOLD_ACTIONS: &[&str] = &["hold", "release"];

const INFO_MESSAGE: &str = "请提供您注册账号时使用的手机号";
const SUMMARY: &str = "已通过邮件发送您的个人信息副本";
const EXPLANATION: &str = "无法核实您的身份";
const COMMENT: &str = "internal: called the requester back, no answer";

/// SPEC §3 as this test reads it: the state `action` leads to from `state`, or `None`
/// when the move is illegal.
fn expected_move(action: &str, state: &'static str) -> Option<&'static str> {
    match (action, state) {
        ("assign", s) if OPEN.contains(&s) => Some(s),
        ("verify", "awaiting_verification") => Some("verified"),
        ("start", "verified" | "reopened") => Some("in_progress"),
        ("request_info", "in_progress") => Some("awaiting_requester"),
        ("resume", "awaiting_requester") => Some("in_progress"),
        ("complete", "in_progress") => Some("completed"),
        (
            "reject",
            "awaiting_verification"
            | "verified"
            | "in_progress"
            | "awaiting_requester"
            | "reopened",
        ) => Some("rejected"),
        ("reopen", "completed" | "rejected") => Some("reopened"),
        _ => None,
    }
}

/// The timeline event each action records.
fn event_name(action: &str) -> &'static str {
    match action {
        "assign" => "assigned",
        "verify" => "verified",
        "start" => "started",
        "request_info" => "info_requested",
        "resume" => "resumed",
        "complete" => "completed",
        "reject" => "rejected",
        "reopen" => "reopened",
        "withdraw" => "withdrawn",
        other => panic!("no event for {other}"),
    }
}

/// A valid body for `action`.
fn body_for(action: &str, assignee: &str) -> Value {
    match action {
        "assign" => json!({"assignee_id": assignee}),
        "verify" => json!({"method": "call_back"}),
        "request_info" => json!({"message": INFO_MESSAGE}),
        "complete" => json!({"summary": SUMMARY}),
        "reject" => json!({"reason_code": "identity_not_verified", "explanation": EXPLANATION}),
        "reopen" => json!({"reason": "the requester complained that data was missing"}),
        _ => json!({}),
    }
}

/// A request as its requester knows it.
struct Req {
    id: String,
    token: String,
    reference: String,
}

/// A running service with an `officer` and a `dpo`.
struct Desk {
    app: TestApp,
    officer_id: String,
    officer: String,
    dpo_id: String,
    dpo: String,
}

impl Desk {
    async fn new() -> Self {
        let app = TestApp::spawn().await;
        let (officer_id, officer) = app.officer("officer1", &["officer"]).await;
        let (dpo_id, dpo) = app.officer("dpo1", &["dpo"]).await;
        Self {
            app,
            officer_id,
            officer,
            dpo_id,
            dpo,
        }
    }

    /// Officer tokens live 15 minutes of the service clock: log in again after moving it.
    async fn relogin(&mut self) {
        self.officer = self.app.login("officer1", OFFICER_PASSWORD).await;
        self.dpo = self.app.login("dpo1", OFFICER_PASSWORD).await;
    }

    async fn file(&self) -> Req {
        let filed = self.app.file("access", valid_details("access")).await;
        req_of(&filed)
    }

    /// The token of whoever may take `action`: refusals need the DPO.
    fn token_for(&self, action: &str) -> &str {
        if action == "reject" {
            &self.dpo
        } else {
            &self.officer
        }
    }

    async fn act(&self, id: &str, action: &str) -> Reply {
        self.app
            .act(
                self.token_for(action),
                id,
                action,
                body_for(action, &self.officer_id),
            )
            .await
    }

    /// Takes `action`, which must succeed, and returns the detail it answers.
    async fn must(&self, id: &str, action: &str) -> Value {
        let r = self.act(id, action).await;
        assert_eq!(r.status, StatusCode::OK, "{action} on {id}: {:?}", r.body);
        r.body
    }

    async fn withdraw(&self, req: &Req) -> Reply {
        self.app
            .post(
                &format!("/api/v1/requests/{}/withdraw", req.id),
                Some(&req.token),
                &json!({}),
            )
            .await
    }

    async fn detail(&self, id: &str) -> Value {
        self.app.detail(&self.officer, id).await
    }

    async fn requester_view(&self, req: &Req) -> Value {
        let r = self
            .app
            .get(&format!("/api/v1/requests/{}", req.id), Some(&req.token))
            .await;
        assert_eq!(r.status, StatusCode::OK, "requester view: {:?}", r.body);
        r.body
    }

    async fn queue(&self, token: &str, query: &str) -> Value {
        let r = self
            .app
            .get(&format!("/api/v1/officer/requests?{query}"), Some(token))
            .await;
        assert_eq!(r.status, StatusCode::OK, "queue ?{query}: {:?}", r.body);
        r.body
    }

    /// A freshly filed request driven into `state` over the API.
    async fn request_in(&self, state: &str) -> Req {
        let req = self.file().await;
        let steps: &[&str] = match state {
            "awaiting_verification" | "withdrawn" => &[],
            "verified" => &["verify"],
            "in_progress" => &["verify", "start"],
            "awaiting_requester" => &["verify", "start", "request_info"],
            "completed" => &["verify", "start", "complete"],
            "rejected" => &["reject"],
            "reopened" => &["verify", "start", "complete", "reopen"],
            other => panic!("{other} cannot be reached over the API"),
        };
        for action in steps {
            self.must(&req.id, action).await;
        }
        if state == "withdrawn" {
            let r = self.withdraw(&req).await;
            assert_eq!(r.status, StatusCode::OK, "withdraw: {:?}", r.body);
        }
        assert_eq!(self.detail(&req.id).await["state"], state);
        req
    }
}

fn req_of(filed: &Value) -> Req {
    Req {
        id: filed["id"].as_str().expect("an id").to_owned(),
        token: filed["requester_token"]
            .as_str()
            .expect("a requester token")
            .to_owned(),
        reference: filed["reference"].as_str().expect("a reference").to_owned(),
    }
}

fn timeline(detail: &Value) -> &Vec<Value> {
    detail["timeline"].as_array().expect("a timeline")
}

fn last_event(detail: &Value) -> &Value {
    timeline(detail).last().expect("at least one event")
}

/// The ids of a queue page's items.
fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["id"].as_str().expect("an id").to_owned())
        .collect()
}

fn item<'a>(page: &'a Value, id: &str) -> &'a Value {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["id"] == id)
        .unwrap_or_else(|| panic!("{id} is not in the queue: {page}"))
}

fn parse_time(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().expect("a timestamp"))
        .expect("an RFC 3339 timestamp")
        .with_timezone(&Utc)
}

fn assert_illegal(r: &Reply, state: &str, action: &str) {
    assert_eq!(
        r.status,
        StatusCode::CONFLICT,
        "{action} from {state}: {:?}",
        r.body
    );
    assert_eq!(r.code(), "illegal_transition", "{action} from {state}");
    assert_eq!(r.body["details"]["state"], state, "{action} from {state}");
    assert_eq!(r.body["details"]["action"], action, "{action} from {state}");
}

fn assert_forbidden(r: &Reply, what: &str) {
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{what}: {:?}", r.body);
    assert_eq!(r.code(), "forbidden", "{what}");
}

// ---------------------------------------------------------------------------------
// The transition table, move by move

#[tokio::test]
async fn every_legal_officer_move_changes_the_state_and_records_one_event() {
    let desk = Desk::new().await;
    let mut checked = 0;
    for &state in REACHABLE {
        for &action in OFFICER_ACTIONS {
            let Some(to) = expected_move(action, state) else {
                continue;
            };
            let req = desk.request_in(state).await;
            let before = desk.detail(&req.id).await;
            let events_before = desk.app.count("events").await;

            let r = desk.act(&req.id, action).await;
            let case = format!("{action} from {state}");
            assert_eq!(r.status, StatusCode::OK, "{case}: {:?}", r.body);
            assert_eq!(r.body["state"], to, "{case}");

            let after = desk.detail(&req.id).await;
            assert_eq!(after["state"], to, "{case}: stored state");
            assert_eq!(after, r.body, "{case}: the answer is the stored request");
            assert_eq!(
                timeline(&after).len(),
                timeline(&before).len() + 1,
                "{case}: one event"
            );
            assert_eq!(desk.app.count("events").await, events_before + 1, "{case}");
            let e = last_event(&after);
            assert_eq!(e["event"], event_name(action), "{case}");
            assert_eq!(e["data"]["action"], action, "{case}");
            assert_eq!(e["data"]["from"], state, "{case}");
            assert_eq!(e["data"]["to"], to, "{case}");
            let actor_id = if action == "reject" {
                &desk.dpo_id
            } else {
                &desk.officer_id
            };
            assert_eq!(e["actor"], format!("officer:{actor_id}"), "{case}");
            assert_eq!(
                e["seq"].as_i64(),
                Some(timeline(&after).len() as i64),
                "{case}"
            );
            checked += 1;
        }
    }
    // 5 assigns, verify, 2 starts, request_info, resume, complete, 5 rejects, 2 reopens.
    assert_eq!(checked, 18);
}

#[tokio::test]
async fn every_illegal_officer_move_is_a_409_naming_the_state_and_changes_nothing() {
    let desk = Desk::new().await;
    let mut checked = 0;
    for &state in REACHABLE {
        // One request per state: an illegal move must leave it as it was.
        let req = desk.request_in(state).await;
        for &action in OFFICER_ACTIONS {
            if expected_move(action, state).is_some() {
                continue;
            }
            let before = desk.detail(&req.id).await;
            let seen_before = desk.requester_view(&req).await;
            let events_before = desk.app.count("events").await;

            let r = desk.act(&req.id, action).await;
            assert_illegal(&r, state, action);

            assert_eq!(desk.detail(&req.id).await, before, "{action} from {state}");
            assert_eq!(
                desk.requester_view(&req).await,
                seen_before,
                "{action} from {state}"
            );
            assert_eq!(
                desk.app.count("events").await,
                events_before,
                "{action} from {state}"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, REACHABLE.len() * OFFICER_ACTIONS.len() - 18);
}

#[tokio::test]
async fn the_requester_can_withdraw_from_every_open_state() {
    let desk = Desk::new().await;
    for &state in OPEN {
        let req = desk.request_in(state).await;
        let events_before = desk.app.count("events").await;
        let r = desk.withdraw(&req).await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "withdraw from {state}: {:?}",
            r.body
        );
        assert_eq!(r.body["state"], "withdrawn", "from {state}");
        assert!(r.body["closed_at"].is_string(), "from {state}: closed_at");
        assert!(r.body["days_left"].is_null(), "from {state}: days_left");
        let history = r.body["history"].as_array().expect("history");
        let last = history.last().expect("an event");
        assert_eq!(last["event"], "withdrawn", "from {state}");
        assert_eq!(last["state"], "withdrawn", "from {state}");

        assert_eq!(desk.app.count("events").await, events_before + 1);
        let d = desk.detail(&req.id).await;
        assert_eq!(d["state"], "withdrawn");
        let e = last_event(&d);
        assert_eq!(e["event"], "withdrawn", "from {state}");
        assert_eq!(e["actor"], "requester", "from {state}");
        assert_eq!(e["data"]["from"], state, "from {state}");
        assert_eq!(e["data"]["to"], "withdrawn", "from {state}");
    }
}

#[tokio::test]
async fn the_requester_cannot_withdraw_a_closed_request() {
    let desk = Desk::new().await;
    for &state in REACHABLE.iter().filter(|s| !OPEN.contains(s)) {
        let req = desk.request_in(state).await;
        let before = desk.detail(&req.id).await;
        let seen_before = desk.requester_view(&req).await;
        let events_before = desk.app.count("events").await;

        let r = desk.withdraw(&req).await;
        assert_illegal(&r, state, "withdraw");

        assert_eq!(desk.detail(&req.id).await, before, "withdraw from {state}");
        assert_eq!(desk.requester_view(&req).await, seen_before);
        assert_eq!(desk.app.count("events").await, events_before);
    }
}

#[tokio::test]
async fn allowed_actions_list_exactly_the_legal_moves_for_each_role() {
    let desk = Desk::new().await;
    for &state in REACHABLE {
        let req = desk.request_in(state).await;
        for (token, dpo) in [(&desk.officer, false), (&desk.dpo, true)] {
            let d = desk.app.detail(token, &req.id).await;
            let mut allowed: Vec<&str> = d["allowed_actions"]
                .as_array()
                .expect("allowed_actions")
                .iter()
                .map(|a| a.as_str().expect("an action"))
                .collect();
            allowed.sort_unstable();
            let mut expected: Vec<&str> = OFFICER_ACTIONS
                .iter()
                .copied()
                .filter(|a| expected_move(a, state).is_some() && (dpo || *a != "reject"))
                .chain(
                    EVIDENCE_ACTIONS
                        .iter()
                        .copied()
                        .filter(|_| OPEN.contains(&state)),
                )
                .chain(
                    DPO_OPEN_ACTIONS
                        .iter()
                        .copied()
                        .filter(|_| dpo && OPEN.contains(&state)),
                )
                .chain(FEE_ACTIONS.iter().copied().filter(|_| {
                    matches!(state, "verified" | "in_progress")
                        && !d["repeats"].as_array().expect("repeats").is_empty()
                }))
                .chain(
                    HOLD_ACTIONS
                        .iter()
                        .copied()
                        .filter(|a| *a == "hold" && OPEN.contains(&state)),
                )
                .collect();
            expected.sort_unstable();
            assert_eq!(allowed, expected, "{state}, dpo: {dpo}");
        }
    }
}

#[tokio::test]
async fn an_unknown_action_is_a_404_listing_the_actions() {
    let desk = Desk::new().await;
    let req = desk.file().await;
    let r = desk
        .app
        .act(&desk.officer, &req.id, "teleport", json!({}))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);
    assert_eq!(r.code(), "unknown_action");
    let mut listed: Vec<&str> = r.body["details"]["actions"]
        .as_array()
        .expect("details.actions")
        .iter()
        .map(|a| a.as_str().expect("an action"))
        .collect();
    listed.sort_unstable();
    let mut expected = [
        OFFICER_ACTIONS,
        EVIDENCE_ACTIONS,
        DPO_OPEN_ACTIONS,
        FEE_ACTIONS,
        HOLD_ACTIONS,
    ]
    .concat();
    expected.sort_unstable();
    assert_eq!(listed, expected);
}

// ---------------------------------------------------------------------------------
// Who may do what

#[tokio::test]
async fn an_officer_cannot_reject() {
    let desk = Desk::new().await;
    let req = desk.request_in("in_progress").await;
    let before = desk.detail(&req.id).await;
    let events_before = desk.app.count("events").await;
    let r = desk
        .app
        .act(
            &desk.officer,
            &req.id,
            "reject",
            body_for("reject", &desk.officer_id),
        )
        .await;
    assert_forbidden(&r, "an officer rejects");
    assert_eq!(desk.detail(&req.id).await, before);
    assert_eq!(desk.app.count("events").await, events_before);
}

#[tokio::test]
async fn an_auditor_reads_the_queue_and_detail_but_cannot_act_or_comment() {
    let desk = Desk::new().await;
    let (_, auditor) = desk.app.officer("auditor1", &["auditor"]).await;
    let received = desk.request_in("awaiting_verification").await;
    let completed = desk.request_in("completed").await;

    let page = desk.queue(&auditor, "state=all").await;
    let listed = ids(&page);
    assert!(listed.contains(&received.id) && listed.contains(&completed.id));
    let d = desk.app.detail(&auditor, &received.id).await;
    assert_eq!(d["allowed_actions"], json!([]));
    assert_eq!(d["timeline"], desk.detail(&received.id).await["timeline"]);

    let events_before = desk.app.count("events").await;
    for req in [&received, &completed] {
        for &action in OFFICER_ACTIONS {
            let r = desk
                .app
                .act(
                    &auditor,
                    &req.id,
                    action,
                    body_for(action, &desk.officer_id),
                )
                .await;
            assert_forbidden(&r, &format!("an auditor takes {action}"));
        }
        let r = desk
            .app
            .post(
                &format!("/api/v1/officer/requests/{}/comments", req.id),
                Some(&auditor),
                &json!({"body": COMMENT}),
            )
            .await;
        assert_forbidden(&r, "an auditor comments");
    }
    let mut registration = filing("access", valid_details("access"));
    registration["channel"] = json!("phone");
    registration["received_at"] = json!(start_time().to_rfc3339());
    let r = desk
        .app
        .post("/api/v1/officer/requests", Some(&auditor), &registration)
        .await;
    assert_forbidden(&r, "an auditor registers a request");

    assert_eq!(desk.app.count("events").await, events_before);
    assert_eq!(desk.app.count("comments").await, 0);
    assert_eq!(desk.app.count("requests").await, 2);
}

#[tokio::test]
async fn an_admin_alone_cannot_read_the_queue() {
    let desk = Desk::new().await;
    let req = desk.file().await;
    let admin = desk.app.admin_token().await;
    let r = desk.app.get("/api/v1/officer/requests", Some(&admin)).await;
    assert_forbidden(&r, "the admin reads the queue");
    let r = desk
        .app
        .get(
            &format!("/api/v1/officer/requests/{}", req.id),
            Some(&admin),
        )
        .await;
    assert_forbidden(&r, "the admin reads a request");
    let r = desk
        .app
        .act(&admin, &req.id, "verify", body_for("verify", ""))
        .await;
    assert_forbidden(&r, "the admin verifies");
}

#[tokio::test]
async fn officers_cannot_withdraw_or_take_the_requesters_and_systems_moves() {
    let desk = Desk::new().await;
    let req = desk.request_in("awaiting_requester").await;
    let before = desk.detail(&req.id).await;
    let events_before = desk.app.count("events").await;
    for token in [&desk.officer, &desk.dpo] {
        for action in [
            "withdraw",
            "requester_reply",
            "request_verification",
            "expire",
        ] {
            let r = desk.app.act(token, &req.id, action, json!({})).await;
            assert_forbidden(&r, &format!("an officer takes {action}"));
        }
    }
    assert_eq!(desk.detail(&req.id).await, before);
    assert_eq!(desk.app.count("events").await, events_before);
}

// ---------------------------------------------------------------------------------
// Assignment

#[tokio::test]
async fn assigning_to_an_officer_puts_the_request_in_their_queue() {
    let desk = Desk::new().await;
    let (assignee_id, assignee) = desk.app.officer("officer2", &["officer"]).await;
    let req = desk.request_in("in_progress").await;
    let other = desk.file().await;

    let r = desk
        .app
        .act(
            &desk.officer,
            &req.id,
            "assign",
            json!({"assignee_id": assignee_id}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["assignee_id"], assignee_id.as_str());
    assert_eq!(r.body["state"], "in_progress");
    let e = last_event(&r.body);
    assert_eq!(e["event"], "assigned");
    assert_eq!(e["data"]["assignee_id"], assignee_id.as_str());
    assert_eq!(
        desk.detail(&req.id).await["assignee_id"],
        assignee_id.as_str()
    );

    let mine = desk.queue(&assignee, "assignee=me").await;
    assert_eq!(ids(&mine), vec![req.id.clone()]);
    assert_eq!(item(&mine, &req.id)["assignee_id"], assignee_id.as_str());
    let by_id = desk
        .queue(&desk.officer, &format!("assignee={assignee_id}"))
        .await;
    assert_eq!(ids(&by_id), vec![req.id.clone()]);
    // The officer who assigned it has nothing of their own.
    assert!(ids(&desk.queue(&desk.officer, "assignee=me").await).is_empty());
    assert_eq!(
        ids(&desk.queue(&desk.officer, "assignee=none").await),
        vec![other.id]
    );
}

#[tokio::test]
async fn assigning_to_an_unknown_id_is_a_422_on_assignee_id() {
    let desk = Desk::new().await;
    let req = desk.file().await;
    let before = desk.detail(&req.id).await;
    let events_before = desk.app.count("events").await;
    let r = desk
        .app
        .act(
            &desk.officer,
            &req.id,
            "assign",
            json!({"assignee_id": uuid::Uuid::new_v4().to_string()}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert_eq!(r.code(), "validation_failed");
    assert_eq!(r.fields(), vec!["assignee_id"]);
    assert_eq!(r.body["details"]["fields"][0]["code"], "unknown_officer");
    assert_eq!(desk.detail(&req.id).await, before);
    assert_eq!(desk.app.count("events").await, events_before);
}

#[tokio::test]
async fn assigning_to_someone_who_does_not_work_requests_is_a_422() {
    let desk = Desk::new().await;
    let (auditor_id, _) = desk.app.officer("auditor1", &["auditor"]).await;
    let admin = desk.app.admin_token().await;
    let officers = desk.app.get("/api/v1/admin/officers", Some(&admin)).await;
    assert_eq!(officers.status, StatusCode::OK, "{:?}", officers.body);
    let admin_id = officers
        .body
        .as_array()
        .expect("a list")
        .iter()
        .find(|o| o["username"] == "admin")
        .expect("the admin")["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let req = desk.file().await;
    let before = desk.detail(&req.id).await;
    for (who, id) in [("an auditor", auditor_id), ("an admin", admin_id)] {
        let r = desk
            .app
            .act(&desk.officer, &req.id, "assign", json!({"assignee_id": id}))
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{who}: {:?}",
            r.body
        );
        assert_eq!(r.fields(), vec!["assignee_id"], "{who}");
        assert_eq!(r.body["details"]["fields"][0]["code"], "unknown_officer");
    }
    assert_eq!(desk.detail(&req.id).await, before);
}

#[tokio::test]
async fn assigning_null_unassigns() {
    let desk = Desk::new().await;
    let req = desk.request_in("verified").await;
    desk.must(&req.id, "assign").await;
    assert_eq!(
        ids(&desk.queue(&desk.officer, "assignee=me").await),
        vec![req.id.clone()]
    );

    let r = desk
        .app
        .act(
            &desk.officer,
            &req.id,
            "assign",
            json!({"assignee_id": null}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert!(r.body["assignee_id"].is_null(), "{:?}", r.body);
    assert_eq!(r.body["state"], "verified");
    let e = last_event(&r.body);
    assert_eq!(e["event"], "assigned");
    assert!(e["data"]["assignee_id"].is_null());
    assert!(desk.detail(&req.id).await["assignee_id"].is_null());
    assert!(ids(&desk.queue(&desk.officer, "assignee=me").await).is_empty());
    assert_eq!(
        ids(&desk.queue(&desk.officer, "assignee=none").await),
        vec![req.id]
    );
}

// ---------------------------------------------------------------------------------
// Comments

#[tokio::test]
async fn a_comment_is_stored_and_recorded_in_the_timeline() {
    let desk = Desk::new().await;
    let req = desk.request_in("in_progress").await;
    let events_before = desk.app.count("events").await;
    let r = desk
        .app
        .post(
            &format!("/api/v1/officer/requests/{}/comments", req.id),
            Some(&desk.officer),
            &json!({"body": COMMENT}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["body"], COMMENT);
    assert_eq!(r.body["author_id"], desk.officer_id.as_str());
    let comment_id = r.body["id"].as_str().expect("an id").to_owned();

    assert_eq!(desk.app.count("comments").await, 1);
    assert_eq!(desk.app.count("events").await, events_before + 1);
    let d = desk.detail(&req.id).await;
    assert_eq!(
        d["state"], "in_progress",
        "a comment does not move the request"
    );
    let comments = d["comments"].as_array().expect("comments");
    assert_eq!(comments.len(), 1);
    assert_eq!(comments[0]["id"], comment_id.as_str());
    assert_eq!(comments[0]["body"], COMMENT);
    assert_eq!(comments[0]["author_id"], desk.officer_id.as_str());
    let e = last_event(&d);
    assert_eq!(e["event"], "comment_added");
    assert_eq!(e["actor"], format!("officer:{}", desk.officer_id));
    assert_eq!(e["data"]["comment_id"], comment_id.as_str());
}

// ---------------------------------------------------------------------------------
// Deadlines

#[tokio::test]
async fn reopening_gives_a_fresh_due_date_from_the_reopen_time() {
    let mut desk = Desk::new().await;
    let req = desk.request_in("completed").await;
    let d = desk.detail(&req.id).await;
    assert_eq!(d["deadline"]["due_date"], "2026-03-16");

    // 21 March 2026, 00:30 in Shanghai (still 20 March in UTC).
    let reopened_at = Utc
        .with_ymd_and_hms(2026, 3, 20, 16, 30, 0)
        .single()
        .expect("an instant");
    desk.app.clock.set(reopened_at);
    desk.relogin().await;
    let r = desk.act(&req.id, "reopen").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["state"], "reopened");
    assert_eq!(r.body["deadline"]["due_date"], "2026-04-05");
    assert_eq!(r.body["deadline"]["time_zone"], "Asia/Shanghai");
    assert_eq!(r.body["deadline"]["days_left"], 15);
    assert_eq!(r.body["deadline"]["overdue"], false);
    assert!(r.body["closed_at"].is_null());
    assert_eq!(parse_time(&r.body["clock_started_at"]), reopened_at);
    assert_eq!(
        last_event(&r.body)["data"]["deadline"],
        json!({"effect": "set", "due_date": "2026-04-05"})
    );
    let seen = desk.requester_view(&req).await;
    assert_eq!(seen["state"], "reopened");
    assert_eq!(seen["due_date"], "2026-04-05");
    assert_eq!(seen["days_left"], 15);

    // The fresh period runs on once work starts again.
    let d = desk.must(&req.id, "start").await;
    assert_eq!(d["deadline"]["due_date"], "2026-04-05");
}

#[tokio::test]
async fn closed_requests_have_no_days_left_and_are_never_overdue() {
    let mut desk = Desk::new().await;
    let closed = [
        desk.request_in("completed").await,
        desk.request_in("rejected").await,
        desk.request_in("withdrawn").await,
    ];
    // Long past the 16 March due date.
    desk.app.clock.advance(Duration::days(30));
    desk.relogin().await;
    let page = desk.queue(&desk.officer, "state=closed").await;
    for req in &closed {
        let d = desk.detail(&req.id).await;
        assert_eq!(d["deadline"]["due_date"], "2026-03-16");
        assert!(d["deadline"]["days_left"].is_null(), "{}", d["state"]);
        assert_eq!(d["deadline"]["overdue"], false, "{}", d["state"]);
        assert!(d["closed_at"].is_string(), "{}", d["state"]);
        let i = item(&page, &req.id);
        assert!(i["deadline"]["days_left"].is_null());
        assert_eq!(i["deadline"]["overdue"], false);
        assert!(desk.requester_view(req).await["days_left"].is_null());
    }
    assert!(ids(&desk.queue(&desk.officer, "overdue=true").await).is_empty());
}

#[tokio::test]
async fn an_overdue_request_is_listed_with_negative_days_left() {
    let mut desk = Desk::new().await;
    let late = desk.request_in("in_progress").await;
    let closed = desk.request_in("completed").await;
    desk.app.clock.advance(Duration::days(10));
    desk.relogin().await;
    let on_time = desk.file().await; // due 26 March

    // 18 March, 10:00 in Shanghai: two days past the 16 March due date.
    desk.app.clock.set(start_time() + Duration::days(17));
    desk.relogin().await;
    let page = desk.queue(&desk.officer, "overdue=true").await;
    assert_eq!(ids(&page), vec![late.id.clone()]);
    let i = item(&page, &late.id);
    assert_eq!(i["deadline"]["overdue"], true);
    assert_eq!(i["deadline"]["days_left"], -2);
    assert_eq!(i["deadline"]["due_date"], "2026-03-16");

    let d = desk.detail(&late.id).await;
    assert_eq!(d["deadline"]["overdue"], true);
    assert_eq!(d["deadline"]["days_left"], -2);
    assert_eq!(desk.requester_view(&late).await["days_left"], -2);

    let not_due = desk.queue(&desk.officer, "overdue=false").await;
    assert_eq!(ids(&not_due), vec![on_time.id.clone()]);
    assert_eq!(item(&not_due, &on_time.id)["deadline"]["days_left"], 8);
    assert_eq!(item(&not_due, &on_time.id)["deadline"]["overdue"], false);
    assert!(!ids(&page).contains(&closed.id));
}

// ---------------------------------------------------------------------------------
// What the requester sees

#[tokio::test]
async fn the_requester_sees_the_public_history_but_never_comments_or_the_assignee() {
    let desk = Desk::new().await;
    let req = desk.request_in("verified").await;
    desk.must(&req.id, "assign").await;
    let r = desk
        .app
        .post(
            &format!("/api/v1/officer/requests/{}/comments", req.id),
            Some(&desk.officer),
            &json!({"body": COMMENT}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    for action in ["start", "request_info", "resume", "complete"] {
        desk.must(&req.id, action).await;
    }

    let seen = desk.requester_view(&req).await;
    assert_eq!(seen["state"], "completed");
    assert_eq!(seen["reference"], req.reference.as_str());
    let history = seen["history"].as_array().expect("history");
    let events: Vec<&str> = history
        .iter()
        .map(|e| e["event"].as_str().expect("an event name"))
        .collect();
    assert_eq!(
        events,
        vec![
            "filed",
            "verification_requested",
            "verified",
            "started",
            "info_requested",
            "resumed",
            "completed"
        ]
    );
    let states: Vec<&str> = history
        .iter()
        .map(|e| e["state"].as_str().expect("a state"))
        .collect();
    assert_eq!(
        states,
        vec![
            "received",
            "awaiting_verification",
            "verified",
            "in_progress",
            "awaiting_requester",
            "in_progress",
            "completed"
        ]
    );
    assert_eq!(history[4]["message"], INFO_MESSAGE);
    assert_eq!(history[6]["message"], SUMMARY);
    assert!(history[6]["reason_code"].is_null());

    let obj = seen.as_object().expect("an object");
    for key in [
        "comments",
        "assignee_id",
        "timeline",
        "requester",
        "subject_id",
    ] {
        assert!(!obj.contains_key(key), "the requester view shows {key}");
    }
    let text = seen.to_string();
    assert!(
        !text.contains(COMMENT),
        "the requester sees a comment: {text}"
    );
    assert!(
        !text.contains(&desk.officer_id),
        "the requester sees an officer id"
    );
    assert!(!text.contains("comment_added") && !text.contains("assigned"));
}

#[tokio::test]
async fn the_requester_sees_the_reason_for_a_refusal() {
    let desk = Desk::new().await;
    let req = desk.request_in("rejected").await;
    let seen = desk.requester_view(&req).await;
    assert_eq!(seen["state"], "rejected");
    assert!(seen["closed_at"].is_string());
    let last = seen["history"]
        .as_array()
        .expect("history")
        .last()
        .expect("an event")
        .clone();
    assert_eq!(last["event"], "rejected");
    assert_eq!(last["state"], "rejected");
    assert_eq!(last["reason_code"], "identity_not_verified");
    assert_eq!(last["message"], EXPLANATION);
}

// ---------------------------------------------------------------------------------
// Requests registered by officers, and complaints

fn registration(channel: &str, received_at: DateTime<Utc>) -> Value {
    let mut body = filing("access", valid_details("access"));
    body["channel"] = json!(channel);
    body["received_at"] = json!(received_at.to_rfc3339());
    body
}

#[tokio::test]
async fn an_officer_registers_a_phone_request_with_its_real_receipt_time() {
    let desk = Desk::new().await;
    let received_at = desk.app.clock.now() - Duration::days(2);
    // As an officer would type it: local time with its offset.
    let mut body = registration("phone", received_at);
    body["received_at"] = json!("2026-02-27T10:00:00+08:00");
    let r = desk
        .app
        .post("/api/v1/officer/requests", Some(&desk.officer), &body)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["state"], "awaiting_verification");
    assert_eq!(parse_time(&r.body["received_at"]), received_at);
    // 15 days from 27 February (Shanghai), not from today.
    assert_eq!(r.body["due_date"], "2026-03-14");
    assert_eq!(r.body["time_zone"], "Asia/Shanghai");
    let id = r.body["id"].as_str().expect("an id").to_owned();

    let d = desk.detail(&id).await;
    assert_eq!(d["channel"], "phone");
    assert_eq!(parse_time(&d["received_at"]), received_at);
    assert_eq!(d["deadline"]["due_date"], "2026-03-14");
    assert_eq!(d["deadline"]["days_left"], 13);
    let filed = &timeline(&d)[0];
    assert_eq!(filed["event"], "filed");
    assert_eq!(filed["actor"], format!("officer:{}", desk.officer_id));
    assert_eq!(filed["data"]["channel"], "phone");
    assert_eq!(
        ids(&desk.queue(&desk.officer, "channel=phone").await),
        vec![id]
    );
}

#[tokio::test]
async fn an_officer_cannot_register_an_api_request() {
    let desk = Desk::new().await;
    let body = registration("api", desk.app.clock.now() - Duration::days(1));
    let r = desk
        .app
        .post("/api/v1/officer/requests", Some(&desk.officer), &body)
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert_eq!(r.code(), "validation_failed");
    assert_eq!(r.fields(), vec!["channel"]);
    assert_eq!(desk.app.count("requests").await, 0);
    assert_eq!(desk.app.count("events").await, 0);
}

#[tokio::test]
async fn a_registration_received_in_the_future_is_a_422_on_received_at() {
    let desk = Desk::new().await;
    let body = registration("post", desk.app.clock.now() + Duration::days(1));
    let r = desk
        .app
        .post("/api/v1/officer/requests", Some(&desk.officer), &body)
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert_eq!(r.code(), "validation_failed");
    assert_eq!(r.fields(), vec!["received_at"]);
    assert_eq!(r.body["details"]["fields"][0]["code"], "in_future");
    assert_eq!(desk.app.count("requests").await, 0);
    assert_eq!(desk.app.count("events").await, 0);
}

#[tokio::test]
async fn a_registration_received_more_than_a_year_ago_is_a_422_on_received_at() {
    let desk = Desk::new().await;
    let body = registration("post", desk.app.clock.now() - Duration::days(400));
    let r = desk
        .app
        .post("/api/v1/officer/requests", Some(&desk.officer), &body)
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert_eq!(r.fields(), vec!["received_at"]);
    assert_eq!(r.body["details"]["fields"][0]["code"], "too_old");
    assert_eq!(desk.app.count("requests").await, 0);
}

#[tokio::test]
async fn a_complaint_is_linked_to_the_request_it_is_about() {
    let desk = Desk::new().await;
    let original = desk.request_in("completed").await;
    let complaint = desk
        .app
        .file(
            "complaint",
            json!({"about_reference": original.reference, "description": "没有在 15 天内答复"}),
        )
        .await;
    let complaint = req_of(&complaint);
    let d = desk.detail(&complaint.id).await;
    assert_eq!(d["kind"], "complaint");
    assert_eq!(d["related_request_id"], original.id.as_str());
    // The original request itself links to nothing.
    assert!(desk.detail(&original.id).await["related_request_id"].is_null());
}
