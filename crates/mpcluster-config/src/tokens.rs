//! The API tokens in the `tokens` document ([`TokensDoc`]): adding (with a fresh random
//! secret, stored only as a salted argon2id hash), removing, listing, and the first admin
//! token of a store without tokens. The server's authentication checks presented secrets with
//! [`verify_secret`].
//!
//! Secrets are 32 random bytes from the OS generator as 64 hex digits, shown once when
//! created and never stored.

use std::collections::BTreeSet;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use mpcluster_core::snapshot::doc_names;
use mpcluster_core::tokens::{ADMIN_TOKEN_ID, Privilege, TokenEntry, TokenId, TokensDoc};
use mpcluster_store::{BoxError, ClusterStore, Expect, StoreError};
use password_hash::rand_core::{OsRng, RngCore as _};

use crate::document::{Document, Loaded, edit, load};
use crate::error::EditError;
use crate::unix_now;

impl Document for TokensDoc {
    const NAME: &'static str = doc_names::TOKENS;
    const TITLE: &'static str = "the API tokens";

    fn empty() -> Self {
        TokensDoc::default()
    }

    fn parse(text: &str) -> Result<Self, BoxError> {
        Ok(TokensDoc::from_json(text)?)
    }

    fn render(&self) -> Result<String, serde_json::Error> {
        Ok(self.to_json())
    }

    fn changes(before: &Self, after: &Self) -> Vec<String> {
        crate::document::keyed_changes("token", before.tokens.iter(), after.tokens.iter())
    }
}

/// A new random secret: 32 bytes from the OS generator as 64 lowercase hex digits.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hashing a secret failed (a bug: the parameters are fixed and valid).
#[derive(Debug, thiserror::Error)]
#[error("cannot hash the token secret: {0}")]
pub struct HashError(String);

/// The argon2id PHC string of `secret` with a fresh random salt (argon2's default parameters:
/// m = 19 MiB, t = 2, p = 1). Slow on purpose; call from a blocking context.
pub fn hash_secret(secret: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// Whether `secret` matches the PHC string `hash` (constant-time comparison of the derived
/// hash; `false` for an unreadable hash). Slow on purpose; call from a blocking context.
pub fn verify_secret(secret: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(secret.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A token just created: its id and secret. Shown once; `Debug` hides the secret.
#[derive(Clone)]
pub struct NewToken {
    /// The id.
    pub id: TokenId,
    /// The secret (64 hex digits).
    pub secret: String,
}

impl NewToken {
    /// `<id>:<secret>`: what `Authorization: Bearer` takes and what token files hold.
    pub fn credential(&self) -> String {
        format!("{}:{}", self.id, self.secret)
    }
}

impl std::fmt::Debug for NewToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewToken")
            .field("id", &self.id)
            .field("secret", &"<hidden>")
            .finish()
    }
}

async fn hash_blocking(secret: String) -> Result<String, EditError> {
    tokio::task::spawn_blocking(move || hash_secret(&secret))
        .await
        .map_err(|e| EditError::Hash(HashError(format!("the hashing task failed: {e}"))))?
        .map_err(EditError::Hash)
}

/// Add token `id` with `privs` (at least one), an optional expiry (unix s) and comment, and
/// return its secret. Refused (nothing written) if the id exists. A lost compare-and-swap
/// (another token changed meanwhile) is retried ([`edit`] without a digest).
pub async fn add_token(
    store: &dyn ClusterStore,
    id: TokenId,
    privs: BTreeSet<Privilege>,
    expire: Option<i64>,
    comment: Option<String>,
) -> Result<NewToken, EditError> {
    if privs.is_empty() {
        return Err(EditError::Rejected(
            "a token needs at least one privilege".to_owned(),
        ));
    }
    let secret = new_secret();
    let entry = TokenEntry {
        privs,
        hash: hash_blocking(secret.clone()).await?,
        created: unix_now(),
        expire,
        comment,
    };
    edit::<TokensDoc, (), _>(store, None, |doc| {
        if doc.tokens.contains_key(&id) {
            return Err(EditError::Exists {
                what: format!("token '{id}'"),
            });
        }
        doc.tokens.insert(id.clone(), entry.clone());
        Ok(())
    })
    .await?;
    Ok(NewToken { id, secret })
}

/// Remove token `id` (it stops working at once). [`EditError::NotFound`] if there is none.
pub async fn remove_token(store: &dyn ClusterStore, id: &TokenId) -> Result<(), EditError> {
    edit::<TokensDoc, (), _>(store, None, |doc| {
        doc.tokens
            .remove(id)
            .map(|_| ())
            .ok_or_else(|| EditError::NotFound {
                what: format!("token '{id}'"),
            })
    })
    .await
    .map(|_| ())
}

/// The tokens document as stored (an absent one reads empty).
pub async fn list_tokens(store: &dyn ClusterStore) -> Result<Loaded<TokensDoc>, EditError> {
    load::<TokensDoc>(store).await
}

/// On a store without a tokens document, create it with one token, [`ADMIN_TOKEN_ID`]
/// (`Sys.Audit`, `Sys.Modify`, no expiry), and return it. `Ok(None)` if the document exists
/// (also when a concurrent `serve` created it first). An existing but empty document is left
/// alone: removing every token is a choice, not an empty store.
pub async fn bootstrap_admin(store: &dyn ClusterStore) -> Result<Option<NewToken>, EditError> {
    let doc = doc_names::TOKENS;
    let store_err = |source| EditError::Store { doc, source };
    if store.read_doc(doc).await.map_err(store_err)?.is_some() {
        return Ok(None);
    }
    let id = TokenId::new(ADMIN_TOKEN_ID).map_err(|e| EditError::Rejected(e.to_string()))?;
    let secret = new_secret();
    let mut tokens = TokensDoc::default();
    tokens.tokens.insert(
        id.clone(),
        TokenEntry {
            privs: Privilege::ALL.into(),
            hash: hash_blocking(secret.clone()).await?,
            created: unix_now(),
            expire: None,
            comment: Some("created by the first 'mpcluster serve'".to_owned()),
        },
    );
    match store
        .write_doc(doc, &tokens.to_json(), Expect::Absent)
        .await
    {
        Ok(_) => Ok(Some(NewToken { id, secret })),
        Err(StoreError::Conflict { .. }) => Ok(None),
        Err(e) => Err(store_err(e)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn hashes_are_salted_and_never_the_secret() {
        let secret = new_secret();
        assert_eq!(secret.len(), 64);
        assert!(secret.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(new_secret(), secret);
        let a = hash_secret(&secret).unwrap();
        let b = hash_secret(&secret).unwrap();
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert_ne!(a, b, "a fresh salt each time");
        assert!(!a.contains(&secret) && a != secret);
        assert!(verify_secret(&secret, &a));
        assert!(verify_secret(&secret, &b));
        assert!(!verify_secret("wrong", &a));
        assert!(!verify_secret(&secret, "not a hash"));
    }
}
