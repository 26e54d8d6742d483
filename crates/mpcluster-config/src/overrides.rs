//! The admin's verbatim `devices` / `overrides` sections (their own document and digest),
//! checked with multipath's tokenizer rules before they are stored.
//!
//! Field errors are keyed `content` (and `digest`, `delete`, any other property).

use mpcluster_core::config::Overrides;
use mpcluster_store::ClusterStore;

use crate::document::{edit, load};
use crate::error::EditError;
use crate::form::{Form, rekey};
use crate::views::{OverridesView, Written};

/// Validate overrides text, errors keyed `content`.
pub fn parse_overrides(content: String) -> Result<Overrides, EditError> {
    Overrides::parse(content)
        .map_err(|e| EditError::Invalid(rekey(e, "", Some(("overrides", "content")))))
}

/// The overrides text and its digest.
pub async fn view(store: &dyn ClusterStore) -> Result<OverridesView, EditError> {
    let l = load::<Overrides>(store).await?;
    Ok(OverridesView {
        content: l.value.as_str().to_owned(),
        digest: l.digest,
    })
}

/// Replace the overrides with the form's `content` (nothing else is accepted).
pub async fn replace(store: &dyn ClusterStore, mut form: Form) -> Result<Written, EditError> {
    let content = form.take_string("content")?;
    form.no_props()?;
    let overrides = parse_overrides(content)?;
    let e = edit::<Overrides, _, _>(store, form.digest, move |o| {
        *o = overrides.clone();
        Ok(())
    })
    .await?;
    Ok(Written { digest: e.digest })
}
