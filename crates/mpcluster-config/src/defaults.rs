//! The cluster-wide multipath `defaults` knobs (in the `multipath-config` document).
//!
//! Field errors are keyed `defaults.<knob>` (and `digest`, `delete`).

use std::collections::BTreeMap;

use mpcluster_core::config::{FIXED_DEFAULTS, KNOBS, MultipathConfig, apply_defaults_update};
use mpcluster_store::ClusterStore;

use crate::document::{edit, load};
use crate::error::EditError;
use crate::form::Form;
use crate::views::{ConfigView, Written};

/// The knobs set, the digest, the fixed defaults and the knob table.
pub async fn view(store: &dyn ClusterStore) -> Result<ConfigView, EditError> {
    let l = load::<MultipathConfig>(store).await?;
    Ok(ConfigView {
        defaults: l.value.defaults().clone(),
        digest: l.digest,
        fixed: FIXED_DEFAULTS
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>(),
        knobs: KNOBS.to_vec(),
    })
}

/// Apply a change to the knobs: those in `form.props` are set, those in `form.delete` unset,
/// the rest unchanged; guarded by `form.digest`.
pub async fn update(store: &dyn ClusterStore, form: Form) -> Result<Written, EditError> {
    let e = edit::<MultipathConfig, _, _>(store, form.digest, move |cfg| {
        apply_defaults_update(cfg, form.props.clone(), form.delete.clone())
            .map_err(EditError::Invalid)
    })
    .await?;
    Ok(Written { digest: e.digest })
}
