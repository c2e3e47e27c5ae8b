//! Officer roles (SPEC §10) and what each may do beyond the lifecycle actions, whose
//! roles are in the transition table.

use crate::kinds::string_enum;

string_enum! {
    /// A role held by an officer account; an account may hold several. `system` is for
    /// a connected system of the company's (the website, the CRM, the SMS platform): it
    /// reads and records consents, and nothing else.
    Role {
        Officer = "officer",
        Dpo = "dpo",
        Auditor = "auditor",
        Admin = "admin",
        System = "system",
    }
}

/// Things officers do that are not moves in the lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Read the queue, requests and their timelines.
    ViewRequests,
    /// Register a request received by phone or post; comment on requests.
    WorkRequests,
    /// Create and change officer accounts.
    ManageOfficers,
    /// See the data sources and check that they answer.
    ManageSources,
    /// Read a subject's consents and their history.
    ReadConsents,
    /// Record a consent given (or withdrawn elsewhere) in the ledger.
    RecordConsents,
}

impl Role {
    pub fn grants(self, permission: Permission) -> bool {
        match permission {
            Permission::ViewRequests => matches!(self, Role::Officer | Role::Dpo | Role::Auditor),
            Permission::WorkRequests => matches!(self, Role::Officer | Role::Dpo),
            Permission::ManageOfficers | Permission::ManageSources => self == Role::Admin,
            Permission::ReadConsents => {
                matches!(
                    self,
                    Role::Officer | Role::Dpo | Role::Auditor | Role::System
                )
            }
            Permission::RecordConsents => matches!(self, Role::Officer | Role::Dpo | Role::System),
        }
    }
}

/// Whether any of `roles` grants `permission`.
pub fn permits(roles: &[Role], permission: Permission) -> bool {
    roles.iter().any(|r| r.grants(permission))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auditors_only_read_and_admins_only_administer() {
        assert!(permits(&[Role::Auditor], Permission::ViewRequests));
        assert!(!permits(&[Role::Auditor], Permission::WorkRequests));
        assert!(!permits(&[Role::Admin], Permission::ViewRequests));
        assert!(permits(&[Role::Admin], Permission::ManageOfficers));
        assert!(permits(&[Role::Admin], Permission::ManageSources));
        assert!(!permits(&[Role::Dpo], Permission::ManageSources));
        assert!(!permits(
            &[Role::Dpo, Role::Officer],
            Permission::ManageOfficers
        ));
        assert!(permits(&[Role::System], Permission::RecordConsents));
        assert!(!permits(&[Role::System], Permission::ViewRequests));
        assert!(!permits(&[Role::Auditor], Permission::RecordConsents));
    }
}
