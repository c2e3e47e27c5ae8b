//! Officer accounts: the first administrator, and accounts managed by `admin`.

use chrono::{DateTime, Utc};
use rand::Rng;
use rightsdesk_domain::validation::{ObjectReader, ValidationErrors, limits};
use rightsdesk_domain::{Email, Permission, Role, roles::permits};
use rightsdesk_store::officers;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::auth::{Officer, hash_password, parse_roles};
use crate::{Error, ErrorCode, Services};

pub fn check_username(u: &str) -> Result<(), String> {
    let ok = (3..=64).contains(&u.len())
        && u.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err("3 to 64 characters: a-z, 0-9, '.', '_' or '-'".to_owned())
    }
}

pub fn check_password(p: &str) -> Result<(), String> {
    let n = p.chars().count();
    if (12..=256).contains(&n) {
        Ok(())
    } else {
        Err("must be 12 to 256 characters long".to_owned())
    }
}

/// An officer account as shown to administrators (never the password hash).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OfficerView {
    pub id: Uuid,
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub roles: Vec<Role>,
    pub active: bool,
    pub locked_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<officers::Model> for OfficerView {
    fn from(m: officers::Model) -> Self {
        Self {
            id: m.id,
            roles: parse_roles(&m.roles),
            username: m.username,
            display_name: m.display_name,
            email: m.email,
            active: m.active,
            locked_until: m.locked_until,
            created_at: m.created_at,
        }
    }
}

/// The first administrator, when it was created by this start.
pub struct Bootstrapped {
    pub username: String,
    /// Set when the password was generated (to be shown once).
    pub generated_password: Option<String>,
}

fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..20)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

impl Services {
    /// Creates the first administrator when no officer exists. Several instances
    /// starting together create it once.
    pub async fn bootstrap_admin(&self) -> Result<Option<Bootstrapped>, Error> {
        if officers::count(self.db().conn()).await? > 0 {
            return Ok(None);
        }
        let cfg = &self.config().bootstrap;
        let (password, generated) = match &cfg.admin_password {
            Some(p) => (p.clone(), None),
            None => {
                let p = generate_password();
                (p.clone(), Some(p))
            }
        };
        let hash = hash_password(&password).await?;
        let now = self.now();
        let tx = self.db().begin_write().await?;
        if officers::count(&*tx).await? > 0 {
            return Ok(None);
        }
        let row = officers::Model {
            id: Uuid::now_v7(),
            username: cfg.admin_username.clone(),
            display_name: "Administrator".to_owned(),
            email: None,
            password_hash: hash,
            roles: Role::Admin.as_str().to_owned(),
            active: true,
            failed_logins: 0,
            locked_until: None,
            created_at: now,
            updated_at: now,
        };
        match officers::insert(&*tx, row).await {
            Ok(()) => {}
            Err(e) if e.is_unique_violation() => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        tx.commit().await?;
        Ok(Some(Bootstrapped {
            username: cfg.admin_username.clone(),
            generated_password: generated,
        }))
    }

    /// Creates an officer account (`admin` only).
    pub async fn create_officer(
        &self,
        actor: &Officer,
        body: &Value,
    ) -> Result<OfficerView, Error> {
        require(actor, Permission::ManageOfficers)?;
        let mut errors = ValidationErrors::default();
        let input = {
            let Some(mut r) = ObjectReader::new(Some(body), "", false, &mut errors) else {
                return Err(Error::new(
                    ErrorCode::InvalidBody,
                    "the body must be a JSON object",
                ));
            };
            let username = checked(&mut r, "username", check_username);
            let display_name = r.string("display_name", true, limits::NAME);
            let email_path = r.field_path("email");
            let email =
                r.string("email", false, Email::MAX_LEN)
                    .and_then(|e| match Email::parse(&e) {
                        Ok(e) => Some(e),
                        Err((code, m)) => {
                            r.errors().push(email_path, code, m);
                            None
                        }
                    });
            let password = r.secret("password", "weak_password", check_password);
            let roles = r.string_list("roles", true, |s| {
                s.parse::<Role>().map_err(|m| ("invalid_value", m))
            });
            r.deny_unknown();
            (username, display_name, email, password, roles)
        };
        let (Some(username), Some(display_name), email, Some(password), Some(mut roles)) = input
        else {
            return Err(errors.into());
        };
        if !errors.is_empty() {
            return Err(errors.into());
        }
        roles.sort_by_key(|r| r.as_str());
        roles.dedup();
        let hash = hash_password(&password).await?;
        let now = self.now();
        let row = officers::Model {
            id: Uuid::now_v7(),
            username,
            display_name,
            email: email.map(|e| e.as_str().to_owned()),
            password_hash: hash,
            roles: roles
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(","),
            active: true,
            failed_logins: 0,
            locked_until: None,
            created_at: now,
            updated_at: now,
        };
        let tx = self.db().begin_write().await?;
        match officers::insert(&*tx, row.clone()).await {
            Ok(()) => {}
            Err(e) if e.is_unique_violation() => {
                return Err(Error::new(
                    ErrorCode::UsernameTaken,
                    "an officer with this username exists",
                ));
            }
            Err(e) => return Err(e.into()),
        }
        tx.commit().await?;
        tracing::info!(officer_id = %row.id, "officer account created");
        Ok(row.into())
    }

    /// Changes an account (`admin`): any of `display_name`, `email` (`null` removes it),
    /// `roles`, `active` (false: every session of it ends at its next request) and
    /// `password` (a reset, which also lifts a lockout). An admin cannot take their own
    /// `admin` role away or deactivate themselves (nobody might be left to undo it).
    pub async fn update_officer(
        &self,
        actor: &Officer,
        id: Uuid,
        body: &Value,
    ) -> Result<OfficerView, Error> {
        require(actor, Permission::ManageOfficers)?;
        let mut errors = ValidationErrors::default();
        let Some(mut r) = ObjectReader::new(Some(body), "", false, &mut errors) else {
            return Err(Error::new(
                ErrorCode::InvalidBody,
                "the body must be a JSON object",
            ));
        };
        let display_name = r.string("display_name", false, limits::NAME);
        let email_path = r.field_path("email");
        let email = match r.take("email") {
            None => None,
            Some(Value::Null) => Some(None),
            Some(Value::String(e)) => match Email::parse(e.trim()) {
                Ok(e) => Some(Some(e.as_str().to_owned())),
                Err((code, m)) => {
                    r.errors().push(email_path, code, m);
                    None
                }
            },
            Some(_) => {
                r.errors().push(
                    email_path,
                    "invalid_type",
                    "must be an email address or null",
                );
                None
            }
        };
        let roles_path = r.field_path("roles");
        let roles = if body.get("roles").is_some() {
            r.string_list("roles", true, |s| {
                s.parse::<Role>().map_err(|m| ("invalid_value", m))
            })
        } else {
            None
        };
        let active_path = r.field_path("active");
        let active = match r.take("active") {
            None => None,
            Some(Value::Bool(b)) => Some(b),
            Some(_) => {
                r.errors()
                    .push(active_path.clone(), "invalid_type", "must be true or false");
                None
            }
        };
        let password = if body.get("password").is_some() {
            r.secret("password", "weak_password", check_password)
        } else {
            None
        };
        r.deny_unknown();
        if id == actor.id {
            if roles.as_ref().is_some_and(|rs| !rs.contains(&Role::Admin)) {
                errors.push(
                    roles_path,
                    "invalid_value",
                    "you cannot take your own admin role away",
                );
            }
            if active == Some(false) {
                errors.push(
                    active_path,
                    "invalid_value",
                    "you cannot deactivate yourself",
                );
            }
        }
        if !errors.is_empty() {
            return Err(errors.into());
        }
        let hash = match &password {
            Some(p) => Some(hash_password(p).await?),
            None => None,
        };
        let tx = self.db().begin_write().await?;
        let mut row = officers::find(&*tx, id)
            .await?
            .ok_or_else(|| Error::new(ErrorCode::NotFound, "no such officer"))?;
        if let Some(name) = display_name {
            row.display_name = name;
        }
        if let Some(email) = email {
            row.email = email;
        }
        if let Some(mut roles) = roles {
            roles.sort_by_key(|r| r.as_str());
            roles.dedup();
            row.roles = roles
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(",");
        }
        if let Some(active) = active {
            row.active = active;
        }
        if let Some(hash) = hash {
            row.password_hash = hash;
            row.failed_logins = 0;
            row.locked_until = None;
        }
        row.updated_at = self.now();
        officers::update(&*tx, &row).await?;
        tx.commit().await?;
        tracing::info!(
            officer_id = %row.id,
            by = %actor.id,
            roles = %row.roles,
            active = row.active,
            password_reset = password.is_some(),
            "officer account changed"
        );
        Ok(row.into())
    }

    pub async fn list_officers(&self, actor: &Officer) -> Result<Vec<OfficerView>, Error> {
        require(actor, Permission::ManageOfficers)?;
        Ok(officers::list(self.db().conn())
            .await?
            .into_iter()
            .map(OfficerView::from)
            .collect())
    }
}

fn checked(
    r: &mut ObjectReader<'_>,
    name: &str,
    check: fn(&str) -> Result<(), String>,
) -> Option<String> {
    let path = r.field_path(name);
    let v = r.string(name, true, limits::SHORT_TEXT)?;
    match check(&v) {
        Ok(()) => Some(v),
        Err(m) => {
            r.errors().push(path, "invalid_value", m);
            None
        }
    }
}

pub(crate) fn require(actor: &Officer, permission: Permission) -> Result<(), Error> {
    if permits(&actor.roles, permission) {
        Ok(())
    } else {
        Err(Error::forbidden("your roles do not allow this"))
    }
}
