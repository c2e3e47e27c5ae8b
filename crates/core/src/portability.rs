//! Portability (SPEC §1, PIPL 45, NDSMR 25): the subject's data handed to the processor
//! they name. Completion checks and records the four conditions; the recipient is sent a
//! download link of its own when it gave an email address, and the bundle is pushed to its
//! endpoint (`push_bundle`, on the worker) when it gave one. The bundle itself holds only
//! the sources' `portable` categories (`bundles.rs`).

use std::collections::BTreeMap;
use std::time::Duration;

use rightsdesk_domain::{Actor, RequestKind};
use rightsdesk_store::bundles::{self as store, links, status};
use rightsdesk_store::collections;
use rightsdesk_store::requests;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::auth::Officer;
use crate::jobs::Job;
use crate::notifications::{Notice, Recipient};
use crate::{Error, ErrorCode, Services};

/// How long a push may take, connecting included.
const PUSH_TIMEOUT: Duration = Duration::from_secs(600);

/// An endpoint the bundle may be pushed to: HTTPS, or plain HTTP to this machine's loopback
/// (a receiver on the same host, or a test). Anything else would send personal data in
/// clear over a network.
pub(crate) fn usable_endpoint(endpoint: &str) -> Option<reqwest::Url> {
    let url = reqwest::Url::parse(endpoint).ok()?;
    let loopback = match url.host()? {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    };
    match url.scheme() {
        "https" => Some(url),
        "http" if loopback => Some(url),
        _ => None,
    }
}

impl Services {
    /// Portability's four conditions (SPEC §1, NDSMR 25) for completing `request`, each
    /// with what shows it: the subject's identity verified; data given with consent or
    /// under contract (the sources' `portable` categories that hold data); technically
    /// feasible (the bundle written, a recipient address to deliver to); no harm to
    /// others' rights (the officer's `no_harm_confirmed`). `None` for other kinds; when one
    /// is not met, `409 portability_conditions_unmet` lists them all.
    pub(crate) async fn portability_conditions(
        &self,
        officer: &Officer,
        request: &requests::Model,
        no_harm_confirmed: bool,
    ) -> Result<Option<Value>, Error> {
        let kind: RequestKind = crate::requests::parse_stored(&request.kind)?;
        if kind != RequestKind::Portability {
            return Ok(None);
        }
        let conn = self.db().conn();
        let answers = collections::for_request(conn, request.id).await?;
        let mut portable = BTreeMap::<String, u64>::new();
        for source in &self.sources().sources {
            let Some(answer) = answers.iter().find(|a| a.source == source.name) else {
                continue;
            };
            let counts: BTreeMap<String, u64> =
                serde_json::from_value(answer.records.clone()).unwrap_or_default();
            let allowed = crate::bundles::answered_categories(request, source);
            for (category, n) in counts {
                if n > 0 && allowed.as_ref().is_some_and(|a| a.contains(&category)) {
                    *portable.entry(category).or_default() += n;
                }
            }
        }
        let bundle_ready = crate::bundles::ready_bundle(conn, request.id)
            .await?
            .is_some();
        let recipient = &request.details["recipient"];
        let address = recipient["email"].as_str();
        let endpoint = recipient["endpoint"].as_str();
        let pushable = endpoint.is_some_and(|e| usable_endpoint(e).is_some());
        let identity = request.subject_id.is_some();
        let consent = !portable.is_empty();
        let feasible = bundle_ready && (address.is_some() || pushable);
        let conditions = json!([
            {
                "condition": "identity_verified",
                "met": identity,
            },
            {
                "condition": "consent_or_contract",
                "met": consent,
                "categories": portable,
                "detail": if consent {
                    "the sources' portable categories hold data"
                } else if self.sources().is_empty() {
                    "no data source is configured"
                } else {
                    "no data given with consent or under contract (a source's `portable` categories) was found"
                },
            },
            {
                "condition": "technically_feasible",
                "met": feasible,
                "detail": if !bundle_ready {
                    "the bundle is not written"
                } else if address.is_none() && !pushable {
                    "the recipient has no email address, and its endpoint is not HTTPS"
                } else {
                    "the bundle is written and can be delivered to the recipient"
                },
            },
            {
                "condition": "no_harm_to_others",
                "met": no_harm_confirmed,
                "confirmed_by": no_harm_confirmed.then_some(officer.id),
                "detail": if no_harm_confirmed {
                    "confirmed by the officer"
                } else {
                    "the officer must confirm it: complete with \"no_harm_confirmed\": true"
                },
            },
        ]);
        if !(identity && consent && feasible && no_harm_confirmed) {
            return Err(Error::new(
                ErrorCode::PortabilityConditionsUnmet,
                "a condition of the transfer is not met: see details.conditions; refuse with a reason code (harms_others, impractical, …) if it cannot be",
            )
            .with_details(json!({ "conditions": conditions })));
        }
        Ok(Some(json!({
            "conditions": conditions,
            "recipient": recipient["name"],
        })))
    }

    /// The recipient's share of a completion: a link of its own sent to its address, and
    /// the push to its endpoint queued. Returns the notice and what the requester's notice
    /// says of the transfer.
    pub(crate) async fn deliver_to_recipient(
        &self,
        conn: &impl rightsdesk_store::ConnectionTrait,
        request: &requests::Model,
        bundle: &store::Model,
        link: &links::Model,
        download: &Value,
        seq: i64,
    ) -> Result<(Option<Notice>, Value), Error> {
        let recipient = &request.details["recipient"];
        let name = recipient["name"].as_str().unwrap_or_default().to_owned();
        let mut notice = None;
        if let Some(address) = recipient["email"].as_str() {
            let to_recipient = links::Model {
                id: Uuid::now_v7(),
                audience: links::audience::RECIPIENT.to_owned(),
                ..link.clone()
            };
            links::insert(conn, to_recipient.clone()).await?;
            let url = self.download_url(to_recipient.id, to_recipient.expires_at);
            let mut params = crate::notifications::request_params(request, self.pack_of(request));
            params["recipient_name"] = json!(name);
            params["download"] = download.clone();
            notice = Some(Notice {
                template: rightsdesk_mail::Template::PortabilityTransfer,
                to: Some(Recipient::Email(address.to_owned())),
                language: request.language.clone(),
                request_id: Some(request.id),
                params,
                secret: Some(json!({ "download_url": url })),
                dedupe_key: format!("portability_transfer:{}:{seq}", request.id),
            });
        }
        if recipient["endpoint"]
            .as_str()
            .is_some_and(|e| usable_endpoint(e).is_some())
        {
            let job = Job::PushBundle {
                request_id: request.id,
                bundle_id: bundle.id,
            };
            self.enqueue_job(conn, &job, &format!("push:{}:{seq}", bundle.id))
                .await?;
        }
        Ok((notice, json!({ "recipient_name": name })))
    }

    /// The job `push_bundle`: POSTs the bundle (`application/zip`, streamed) to the
    /// recipient's endpoint, with `X-Rightsdesk-Reference` and `X-Rightsdesk-Sha256`. A 2xx
    /// answer is `bundle_pushed`; a refusal (4xx) or an endpoint that is no longer usable
    /// is `bundle_push_failed` and not tried again; a network error or a 5xx is tried again
    /// with back-off.
    pub(crate) async fn push_bundle(&self, request_id: Uuid, bundle_id: Uuid) -> Result<(), Error> {
        let conn = self.db().conn();
        let (Some(request), Some(bundle)) = (
            requests::find(conn, request_id).await?,
            store::get(conn, bundle_id).await?,
        ) else {
            return Ok(());
        };
        let endpoint = request.details["recipient"]["endpoint"]
            .as_str()
            .and_then(usable_endpoint);
        let host = endpoint
            .as_ref()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_default();
        let failed =
            |reason: &str| json!({ "bundle_id": bundle_id, "host": host, "reason": reason });
        let Some(endpoint) = endpoint else {
            return self
                .push_event(
                    request_id,
                    "bundle_push_failed",
                    failed("endpoint_not_https"),
                )
                .await;
        };
        if bundle.status != status::READY {
            return self
                .push_event(request_id, "bundle_push_failed", failed("bundle_gone"))
                .await;
        }
        let rx = crate::bundles::chunks(self.open_bundle(&bundle).await?);
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        let client = reqwest::Client::builder()
            .timeout(PUSH_TIMEOUT)
            .build()
            .map_err(|_| Error::internal())?;
        let sent = client
            .post(endpoint)
            .header(reqwest::header::CONTENT_TYPE, "application/zip")
            .header(
                reqwest::header::CONTENT_LENGTH,
                bundle.size.unwrap_or(0).to_string(),
            )
            .header("X-Rightsdesk-Reference", &request.reference)
            .header(
                "X-Rightsdesk-Sha256",
                bundle.sha256.clone().unwrap_or_default(),
            )
            .body(reqwest::Body::wrap_stream(stream))
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => {
                metrics::counter!("rightsdesk_bundle_pushes_total", "outcome" => "pushed")
                    .increment(1);
                self.push_event(
                    request_id,
                    "bundle_pushed",
                    json!({ "bundle_id": bundle_id, "host": host, "status": r.status().as_u16() }),
                )
                .await
            }
            Ok(r) if r.status().is_client_error() => {
                metrics::counter!("rightsdesk_bundle_pushes_total", "outcome" => "refused")
                    .increment(1);
                let mut data = failed("refused");
                data["status"] = json!(r.status().as_u16());
                self.push_event(request_id, "bundle_push_failed", data)
                    .await
            }
            other => {
                metrics::counter!("rightsdesk_bundle_pushes_total", "outcome" => "retried")
                    .increment(1);
                let why = match other {
                    Ok(r) => format!("the endpoint answered {}", r.status()),
                    Err(e) if e.is_timeout() => "the endpoint did not answer in time".to_owned(),
                    Err(_) => "the endpoint cannot be reached".to_owned(),
                };
                tracing::warn!(rights_request_id = %request_id, %host, "a bundle push failed; tried again later");
                Err(Error::new(ErrorCode::Unavailable, why))
            }
        }
    }

    async fn push_event(&self, request_id: Uuid, event: &str, data: Value) -> Result<(), Error> {
        self.record_event(request_id, &Actor::System, event, async move |_, _, _| {
            Ok((data.clone(), ()))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_loopback_endpoints_get_personal_data() {
        for ok in [
            "https://b.example.com/inbox",
            "http://127.0.0.1:8081/inbox",
            "http://[::1]/inbox",
            "http://localhost:9000/x",
        ] {
            assert!(usable_endpoint(ok).is_some(), "{ok}");
        }
        for bad in [
            "http://b.example.com/inbox",
            "http://10.0.0.1/inbox",
            "ftp://b.example.com/x",
            "https://",
            "not a url",
        ] {
            assert!(usable_endpoint(bad).is_none(), "{bad}");
        }
    }
}
