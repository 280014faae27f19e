//! Bearer tokens: one admin token, one per tenant, kept as SHA-256 hashes only.
//!
//! A request's token is hashed and compared with every configured hash in constant time (the
//! comparison does not stop at the first differing byte). An admin token sees every tenant and
//! the service's own metrics; a tenant's token sees that tenant only, on every endpoint.

use sha2::{Digest, Sha256};

use crate::config::AuthConfig;

/// The SHA-256 of a token, as 64 lowercase hex digits (what the config file holds).
pub fn hash_token(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Who a request is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Access {
    /// Every tenant, and the service's health.
    Admin,
    /// One tenant.
    Tenant(String),
}

impl Access {
    /// Whether this access may read `tenant`.
    pub(crate) fn sees(&self, tenant: &str) -> bool {
        match self {
            Access::Admin => true,
            Access::Tenant(t) => t == tenant,
        }
    }
}

/// Why a request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// No `Authorization: Bearer` header.
    Missing,
    /// A token that matches none.
    Unknown,
}

/// The configured hashes.
#[derive(Debug, Clone)]
pub(crate) struct Auth {
    admin: [u8; 32],
    tenants: Vec<([u8; 32], String)>,
}

fn unhex(h: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        // Checked as 64 hex digits when the config was read.
        *o = h.get(2 * i..2 * i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()).unwrap_or(0);
    }
    out
}

fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Auth {
    pub(crate) fn new(cfg: &AuthConfig) -> Self {
        Self {
            admin: unhex(cfg.admin_token_sha256.as_deref().unwrap_or_default()),
            tenants: cfg.tenants.iter().map(|t| (unhex(&t.token_sha256), t.tenant.clone())).collect(),
        }
    }

    /// Who the `Authorization` header's value names.
    pub(crate) fn check(&self, header: Option<&str>) -> Result<Access, Refused> {
        let token = header.and_then(|h| h.strip_prefix("Bearer ")).map(str::trim).ok_or(Refused::Missing)?;
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        if same(&digest, &self.admin) {
            found = Some(Access::Admin);
        }
        for (hash, tenant) in &self.tenants {
            if same(&digest, hash) && found.is_none() {
                found = Some(Access::Tenant(tenant.clone()));
            }
        }
        found.ok_or(Refused::Unknown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TenantToken;

    #[test]
    fn tokens_are_known_by_their_hash_only() {
        assert_eq!(hash_token("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        let auth = Auth::new(&AuthConfig {
            admin_token_sha256: Some(hash_token("root")),
            tenants: vec![TenantToken { tenant: "acme".into(), token_sha256: hash_token("acme-secret") }],
        });
        assert_eq!(auth.check(Some("Bearer root")), Ok(Access::Admin));
        assert_eq!(auth.check(Some("Bearer acme-secret")), Ok(Access::Tenant("acme".into())));
        assert_eq!(auth.check(Some("Bearer nope")), Err(Refused::Unknown));
        assert_eq!(auth.check(Some("Basic cm9vdA==")), Err(Refused::Missing));
        assert_eq!(auth.check(None), Err(Refused::Missing));
        assert!(Access::Tenant("acme".into()).sees("acme") && !Access::Tenant("acme".into()).sees("other"));
    }
}
