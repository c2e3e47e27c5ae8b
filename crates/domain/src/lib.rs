//! rightsdesk's pure rules: request kinds and their details, the lifecycle, deadline
//! maths, references, contacts, roles and refusal reasons. No I/O, no clock: every
//! function that needs the time takes it as an argument.

pub mod arrangements;
pub mod calendar;
pub mod categories;
pub mod contact;
pub mod deadlines;
pub mod evidence;
pub mod fees;
pub mod intake;
pub mod kinds;
pub mod lifecycle;
#[cfg(test)]
mod proptests;
pub mod purposes;
pub mod reference;
pub mod roles;
pub mod secret;
pub mod signature;
pub mod validation;

pub use contact::{ActingFor, Capacity, Email, Language, Phone, Requester};
pub use deadlines::{DeadlineEffect, DeadlineStatus, Due, RulePack};
pub use kinds::{Channel, Details, RequestKind};
pub use lifecycle::{Action, Actor, IllegalTransition, ReasonCode, State};
pub use reference::Reference;
pub use roles::{Permission, Role};
pub use secret::Secret;
pub use validation::{FieldError, ValidationErrors};
