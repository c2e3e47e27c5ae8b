//! Officer roles (SPEC §10) and what each may do beyond the lifecycle actions, whose
//! roles are in the transition table.

use crate::kinds::string_enum;

string_enum! {
    /// A role held by an officer account; an account may hold several.
    Role {
        Officer = "officer",
        Dpo = "dpo",
        Auditor = "auditor",
        Admin = "admin",
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
}

impl Role {
    pub fn grants(self, permission: Permission) -> bool {
        match permission {
            Permission::ViewRequests => matches!(self, Role::Officer | Role::Dpo | Role::Auditor),
            Permission::WorkRequests => matches!(self, Role::Officer | Role::Dpo),
            Permission::ManageOfficers => self == Role::Admin,
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
        assert!(!permits(
            &[Role::Dpo, Role::Officer],
            Permission::ManageOfficers
        ));
    }
}
