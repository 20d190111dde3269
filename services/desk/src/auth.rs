//! Logging in: argon2 password hashes, and the server-side sessions behind the tokens
//! desks carry.
//!
//! A token is 32 random bytes (hex), meaningful only as a key into [`Sessions`]: it
//! names the tenant, the user and the role, so every request is answered in that
//! tenant's context. A session expires `ttl` after its last use (sliding), and
//! logging out ends it at once.

use std::collections::HashMap;
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use hotline_core::ids::{AgentId, TenantId};
use hotline_core::time::Timestamp;

use crate::config::Role;

/// Hashes a password with argon2id and a random salt, as a PHC string for the config.
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt_bytes: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Whether `hash` is a PHC string argon2 can verify against.
pub(crate) fn check_hash(hash: &str) -> Result<(), String> {
    let parsed = PasswordHash::new(hash).map_err(|e| e.to_string())?;
    if !parsed.algorithm.as_str().starts_with("argon2") {
        return Err(format!("algorithm {} is not argon2", parsed.algorithm));
    }
    Ok(())
}

/// Whether `password` matches `hash` (a malformed hash matches nothing).
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A logged-in user, as a token stands for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The tenant whose context every request runs in.
    pub tenant: TenantId,
    /// The user (for agents, the ACD agent id).
    pub user: AgentId,
    /// What the user may do.
    pub role: Role,
    /// When it lapses unless used before.
    pub expires: Timestamp,
}

/// Why a token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Never issued, or ended by a log-out.
    Unknown,
    /// Issued, but not used within its lifetime.
    Expired,
}

/// Every live session, by token.
#[derive(Debug)]
pub struct Sessions {
    ttl: Duration,
    by_token: HashMap<String, Session>,
}

impl Sessions {
    /// No sessions; each lasts `ttl` after its last use.
    pub fn new(ttl: Duration) -> Self {
        Sessions {
            ttl,
            by_token: HashMap::new(),
        }
    }

    /// A new session and its token.
    pub fn open(
        &mut self,
        now: Timestamp,
        tenant: TenantId,
        user: AgentId,
        role: Role,
    ) -> (String, Session) {
        self.sweep(now);
        let token = new_token();
        let session = Session {
            tenant,
            user,
            role,
            expires: now + self.ttl,
        };
        self.by_token.insert(token.clone(), session.clone());
        (token, session)
    }

    /// The session behind `token`, its lifetime renewed from `now`.
    pub fn touch(&mut self, now: Timestamp, token: &str) -> Result<Session, TokenError> {
        let Some(s) = self.by_token.get_mut(token) else {
            return Err(TokenError::Unknown);
        };
        if s.expires <= now {
            self.by_token.remove(token);
            return Err(TokenError::Expired);
        }
        s.expires = now + self.ttl;
        Ok(s.clone())
    }

    /// Ends every session of a user.
    pub fn close_user(&mut self, tenant: &TenantId, user: &AgentId) {
        self.by_token
            .retain(|_, s| !(&s.tenant == tenant && &s.user == user));
    }

    /// Forgets sessions that lapsed long ago (a lapsed one is still told apart as
    /// expired for a while after).
    fn sweep(&mut self, now: Timestamp) {
        let keep = self.ttl;
        self.by_token.retain(|_, s| s.expires + keep > now);
    }
}

/// 32 random bytes from the thread's CSPRNG, in hex.
pub(crate) fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: u64) -> Timestamp {
        Timestamp(secs * 1_000_000)
    }

    #[test]
    fn a_hashed_password_verifies_and_a_wrong_one_does_not() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("correct hors", &hash));
        assert!(!verify_password("correct horse", "not a hash"));
        assert_ne!(hash, hash_password("correct horse").unwrap(), "salted");
    }

    #[test]
    fn a_session_expires_after_its_ttl_without_use_and_lives_on_with_use() {
        let mut s = Sessions::new(Duration::from_secs(60));
        let acme = TenantId::new("acme").unwrap();
        let ann = AgentId::new("ann").unwrap();
        let (token, _) = s.open(t(0), acme.clone(), ann.clone(), Role::Agent);
        assert_eq!(token.len(), 64);
        assert_eq!(s.touch(t(50), &token).unwrap().user, ann);
        assert!(s.touch(t(100), &token).is_ok(), "renewed at 50 s");
        assert_eq!(s.touch(t(161), &token), Err(TokenError::Expired));
        assert_eq!(s.touch(t(162), &token), Err(TokenError::Unknown));
        assert_eq!(s.touch(t(0), "feed"), Err(TokenError::Unknown));
    }

    #[test]
    fn logging_out_ends_every_session_of_that_user_only() {
        let mut s = Sessions::new(Duration::from_secs(60));
        let acme = TenantId::new("acme").unwrap();
        let ann = AgentId::new("ann").unwrap();
        let bob = AgentId::new("bob").unwrap();
        let (a1, _) = s.open(t(0), acme.clone(), ann.clone(), Role::Agent);
        let (a2, _) = s.open(t(0), acme.clone(), ann.clone(), Role::Agent);
        let (b, _) = s.open(t(0), acme.clone(), bob, Role::Agent);
        s.close_user(&acme, &ann);
        assert_eq!(s.touch(t(1), &a1), Err(TokenError::Unknown));
        assert_eq!(s.touch(t(1), &a2), Err(TokenError::Unknown));
        assert!(s.touch(t(1), &b).is_ok());
    }
}
