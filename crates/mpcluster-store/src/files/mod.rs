//! What the file-backed stores ([`crate::embedded`], [`crate::pve`]) share: crash-safe file
//! primitives ([`fsutil`]) and change detection by polling ([`watch`]).
//!
//! Each backend keeps its own layout, locking and membership; these modules know nothing of
//! them. In particular nothing here takes `flock`/`fcntl` locks: the embedded store's `flock`
//! lives in `embedded::flock`, and the pve store (pmxcfs ignores POSIX locks across nodes)
//! uses lock directories (`pve::lock`).

pub(crate) mod fsutil;
pub(crate) mod watch;

use crate::StoreError;

/// Run blocking file work off the async threads. `store` names the store in the error
/// returned when the runtime is shutting down.
pub(crate) async fn blocking<T: Send + 'static>(
    store: &str,
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(StoreError::Unavailable {
            store: store.to_owned(),
            reason: "the runtime is shutting down".to_owned(),
            source: None,
        }),
    }
}
