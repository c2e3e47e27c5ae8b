//! The request lifecycle (SPEC §3). [`TRANSITIONS`] is the only authority on which
//! move is legal from which state, and on who may make it.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::kinds::string_enum;
use crate::roles::Role;

string_enum! {
    /// Where a request stands.
    State {
        Received = "received",
        AwaitingVerification = "awaiting_verification",
        Verified = "verified",
        InProgress = "in_progress",
        AwaitingRequester = "awaiting_requester",
        Completed = "completed",
        Rejected = "rejected",
        Expired = "expired",
        Withdrawn = "withdrawn",
        Reopened = "reopened",
    }
}

impl State {
    /// States in which the request still needs work from the company.
    pub const OPEN: &'static [State] = &[
        State::Received,
        State::AwaitingVerification,
        State::Verified,
        State::InProgress,
        State::AwaitingRequester,
        State::Reopened,
    ];

    pub fn is_open(self) -> bool {
        Self::OPEN.contains(&self)
    }

    /// While the company waits for the requester, the deadline clock stops.
    pub fn clock_paused(self) -> bool {
        self == State::AwaitingRequester
    }
}

string_enum! {
    /// Something that can be done to a request.
    Action {
        RequestVerification = "request_verification",
        Verify = "verify",
        Expire = "expire",
        Assign = "assign",
        Start = "start",
        RequestInfo = "request_info",
        Resume = "resume",
        RequesterReply = "requester_reply",
        Complete = "complete",
        Reject = "reject",
        Withdraw = "withdraw",
        Reopen = "reopen",
        AcceptEvidence = "accept_evidence",
        RejectEvidence = "reject_evidence",
        Extend = "extend",
        QuoteFee = "quote_fee",
        AcceptFee = "accept_fee",
        Hold = "hold",
        Release = "release",
    }
}

/// Who may take an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allowed {
    /// The requester, with their request token.
    Requester,
    /// The service itself (a job or a use-case), never a person directly.
    System,
    /// An officer holding any of these roles.
    Roles(&'static [Role]),
}

/// One row of the transition table: `action` is legal from each of `from`, and moves
/// the request to `to` (`None`: the state does not change).
#[derive(Debug, Clone, Copy)]
pub struct Transition {
    pub action: Action,
    pub from: &'static [State],
    pub to: Option<State>,
    pub allowed: Allowed,
}

const WORKERS: &[Role] = &[Role::Officer, Role::Dpo];
const DPO: &[Role] = &[Role::Dpo];

use State::*;

/// The lifecycle. Read it top to bottom as the diagram in SPEC §3.
pub const TRANSITIONS: &[Transition] = &[
    Transition {
        action: Action::RequestVerification,
        from: &[Received],
        to: Some(AwaitingVerification),
        allowed: Allowed::System,
    },
    // Identity verified by a code, a link or an account token (system), or by an
    // officer after a call-back or a document review.
    Transition {
        action: Action::Verify,
        from: &[Received, AwaitingVerification],
        to: Some(Verified),
        allowed: Allowed::Roles(WORKERS),
    },
    Transition {
        action: Action::Expire,
        from: &[AwaitingVerification],
        to: Some(Expired),
        allowed: Allowed::System,
    },
    Transition {
        action: Action::Assign,
        from: State::OPEN,
        to: None,
        allowed: Allowed::Roles(WORKERS),
    },
    Transition {
        action: Action::Start,
        from: &[Verified, Reopened],
        to: Some(InProgress),
        allowed: Allowed::Roles(WORKERS),
    },
    Transition {
        action: Action::RequestInfo,
        from: &[InProgress],
        to: Some(AwaitingRequester),
        allowed: Allowed::Roles(WORKERS),
    },
    Transition {
        action: Action::Resume,
        from: &[AwaitingRequester],
        to: Some(InProgress),
        allowed: Allowed::Roles(WORKERS),
    },
    Transition {
        action: Action::RequesterReply,
        from: &[AwaitingRequester],
        to: Some(InProgress),
        allowed: Allowed::Requester,
    },
    Transition {
        action: Action::Complete,
        from: &[InProgress],
        to: Some(Completed),
        allowed: Allowed::Roles(WORKERS),
    },
    // The DPO signs refusals (SPEC §8, §10).
    Transition {
        action: Action::Reject,
        from: &[
            Received,
            AwaitingVerification,
            Verified,
            InProgress,
            AwaitingRequester,
            Reopened,
        ],
        to: Some(Rejected),
        allowed: Allowed::Roles(DPO),
    },
    Transition {
        action: Action::Withdraw,
        from: State::OPEN,
        to: Some(Withdrawn),
        allowed: Allowed::Requester,
    },
    Transition {
        action: Action::Reopen,
        from: &[Completed, Rejected],
        to: Some(Reopened),
        allowed: Allowed::Roles(WORKERS),
    },
    // Document review (SPEC §5): accepting evidence on a request that awaits
    // verification also verifies it, as the `verify` row allows; on a request already
    // verified it only records the review.
    Transition {
        action: Action::AcceptEvidence,
        from: State::OPEN,
        to: None,
        allowed: Allowed::Roles(WORKERS),
    },
    Transition {
        action: Action::RejectEvidence,
        from: State::OPEN,
        to: None,
        allowed: Allowed::Roles(WORKERS),
    },
    // The DPO extends a deadline, within the rule pack's limit (SPEC §4).
    Transition {
        action: Action::Extend,
        from: State::OPEN,
        to: None,
        allowed: Allowed::Roles(DPO),
    },
    // A repeated request may cost a fee (SPEC §8): the officer quotes it and the
    // request waits, its clock stopped, until the requester accepts it (or withdraws).
    // `resume` goes on without it (the fee waived, or accepted in writing).
    Transition {
        action: Action::QuoteFee,
        from: &[Verified, InProgress],
        to: Some(AwaitingRequester),
        allowed: Allowed::Roles(WORKERS),
    },
    Transition {
        action: Action::AcceptFee,
        from: &[AwaitingRequester],
        to: Some(InProgress),
        allowed: Allowed::Requester,
    },
    // Relatives of a deceased who disagree put a request on hold for the DPO (PIPL 49);
    // only the DPO releases it. The clock runs on.
    Transition {
        action: Action::Hold,
        from: State::OPEN,
        to: None,
        allowed: Allowed::Roles(WORKERS),
    },
    Transition {
        action: Action::Release,
        from: State::OPEN,
        to: None,
        allowed: Allowed::Roles(DPO),
    },
];

/// The move is not legal from the current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot {action} a request that is {state}")]
pub struct IllegalTransition {
    pub state: State,
    pub action: Action,
}

impl Action {
    /// The row of the table for this action.
    pub fn transition(self) -> &'static Transition {
        TRANSITIONS
            .iter()
            .find(|t| t.action == self)
            .unwrap_or_else(|| unreachable!("every action has a row in TRANSITIONS"))
    }

    pub fn allowed(self) -> Allowed {
        self.transition().allowed
    }

    /// Whether an officer with `roles` may take this action at all.
    pub fn permits_roles(self, roles: &[Role]) -> bool {
        match self.allowed() {
            Allowed::Roles(allowed) => roles.iter().any(|r| allowed.contains(r)),
            Allowed::Requester | Allowed::System => false,
        }
    }
}

/// The state after `action` from `state`, or why it is not legal.
pub fn next_state(state: State, action: Action) -> Result<State, IllegalTransition> {
    let t = action.transition();
    if t.from.contains(&state) {
        Ok(t.to.unwrap_or(state))
    } else {
        Err(IllegalTransition { state, action })
    }
}

/// The actions officers with `roles` can take on a request in `state`.
pub fn officer_actions(state: State, roles: &[Role]) -> Vec<Action> {
    TRANSITIONS
        .iter()
        .filter(|t| t.from.contains(&state) && t.action.permits_roles(roles))
        .map(|t| t.action)
        .collect()
}

string_enum! {
    /// Why a request is refused (SPEC §8). Every refusal carries one.
    ReasonCode {
        IdentityNotVerified = "identity_not_verified",
        ManifestlyUnfounded = "manifestly_unfounded",
        DisproportionateEffort = "disproportionate_effort",
        HarmsOthers = "harms_others",
        Impractical = "impractical",
        LegalExemption = "legal_exemption",
        DeceasedArrangement = "deceased_arrangement",
        OutsideJurisdiction = "outside_jurisdiction",
    }
}

impl ReasonCode {
    /// A one-line description for letters and the API guide.
    pub fn description(self) -> &'static str {
        match self {
            Self::IdentityNotVerified => "the requester's identity could not be verified",
            Self::ManifestlyUnfounded => "manifestly unfounded, or excessive by repetition",
            Self::DisproportionateEffort => "would need disproportionate technical means",
            Self::HarmsOthers => "would harm the lawful rights and interests of others",
            Self::Impractical => "impractical, e.g. data only on backup tapes",
            Self::LegalExemption => {
                "a legal obligation, national security, public safety or a criminal investigation"
            }
            Self::DeceasedArrangement => "the deceased's own arrangement forbids it",
            Self::OutsideJurisdiction => "outside the jurisdiction of this service",
        }
    }
}

impl fmt::Display for Transition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} from {:?}", self.action, self.from)
    }
}

/// Who did something, as recorded in the event log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Actor {
    Requester,
    Officer { id: uuid::Uuid },
    System,
}

impl Actor {
    /// The compact stored form: `requester`, `system`, `officer:<uuid>`.
    pub fn to_stored(&self) -> String {
        match self {
            Self::Requester => "requester".to_owned(),
            Self::System => "system".to_owned(),
            Self::Officer { id } => format!("officer:{id}"),
        }
    }

    pub fn from_stored(s: &str) -> Option<Self> {
        match s {
            "requester" => Some(Self::Requester),
            "system" => Some(Self::System),
            other => other
                .strip_prefix("officer:")
                .and_then(|id| id.parse().ok())
                .map(|id| Self::Officer { id }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_has_exactly_one_row() {
        for action in Action::ALL {
            assert_eq!(
                TRANSITIONS.iter().filter(|t| t.action == *action).count(),
                1,
                "{action}"
            );
        }
    }

    #[test]
    fn the_diagram() {
        assert_eq!(
            next_state(Received, Action::RequestVerification),
            Ok(AwaitingVerification)
        );
        assert_eq!(
            next_state(AwaitingVerification, Action::Verify),
            Ok(Verified)
        );
        assert_eq!(next_state(Verified, Action::Start), Ok(InProgress));
        assert_eq!(
            next_state(InProgress, Action::RequestInfo),
            Ok(AwaitingRequester)
        );
        assert_eq!(
            next_state(AwaitingRequester, Action::Resume),
            Ok(InProgress)
        );
        assert_eq!(next_state(InProgress, Action::Complete), Ok(Completed));
        assert_eq!(next_state(Completed, Action::Reopen), Ok(Reopened));
        assert_eq!(next_state(Reopened, Action::Start), Ok(InProgress));
        assert_eq!(
            next_state(AwaitingVerification, Action::Expire),
            Ok(Expired)
        );
        assert_eq!(next_state(InProgress, Action::Assign), Ok(InProgress));
        for s in State::OPEN {
            assert_eq!(next_state(*s, Action::Withdraw), Ok(Withdrawn));
        }
        // A fee stops the clock until the requester accepts it.
        assert_eq!(
            next_state(InProgress, Action::QuoteFee),
            Ok(AwaitingRequester)
        );
        assert!(AwaitingRequester.clock_paused());
        assert_eq!(
            next_state(AwaitingRequester, Action::AcceptFee),
            Ok(InProgress)
        );
        assert!(next_state(AwaitingRequester, Action::QuoteFee).is_err());
    }

    #[test]
    fn closed_states_accept_nothing_but_reopen() {
        for s in [Completed, Rejected, Expired, Withdrawn] {
            for a in Action::ALL {
                let legal = next_state(s, *a).is_ok();
                let expected = *a == Action::Reopen && matches!(s, Completed | Rejected);
                assert_eq!(legal, expected, "{a} from {s}");
            }
        }
    }

    #[test]
    fn illegal_moves_name_the_state() {
        let err = next_state(Received, Action::Complete).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot complete a request that is received"
        );
    }

    #[test]
    fn roles() {
        assert!(Action::Reject.permits_roles(&[Role::Dpo]));
        assert!(!Action::Reject.permits_roles(&[Role::Officer]));
        assert!(!Action::Start.permits_roles(&[Role::Auditor, Role::Admin]));
        assert!(!Action::Withdraw.permits_roles(&[Role::Dpo]));
        assert_eq!(officer_actions(Completed, &[Role::Auditor]), vec![]);
        assert_eq!(
            officer_actions(Verified, &[Role::Officer]),
            vec![
                Action::Assign,
                Action::Start,
                Action::AcceptEvidence,
                Action::RejectEvidence,
                Action::QuoteFee,
                Action::Hold
            ]
        );
        assert!(officer_actions(Verified, &[Role::Dpo]).contains(&Action::Extend));
        assert!(!Action::AcceptFee.permits_roles(&[Role::Officer, Role::Dpo]));
    }

    #[test]
    fn actors_round_trip() {
        let id = uuid::Uuid::now_v7();
        for a in [Actor::Requester, Actor::System, Actor::Officer { id }] {
            assert_eq!(Actor::from_stored(&a.to_stored()), Some(a));
        }
    }
}
