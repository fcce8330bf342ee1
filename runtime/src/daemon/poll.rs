//! Several daemons on one store (RUNTIME.md §7): a deploy through one is
//! picked up by all. Every `Config::bundle_poll` each daemon reads the
//! stored bundles' hashes and deploy times and loads the latest one when it
//! is another version deployed after its own (deploy time, then insertion
//! order, as `Store::latest_bundle`). So a daemon never deploys an older
//! project over a newer one it read: a version counts as newer by when it
//! was deployed, not by its contents. A version it cannot run here (an
//! `env` value missing, a bundle it cannot read) is logged and counted, and
//! it keeps its own.

use super::{Shared, deploy};
use nudge_compiler::bundle::Bundle;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The task: look every `bundle_poll` until `cancel`.
pub(super) async fn run(shared: Arc<Shared>, cancel: CancellationToken) {
    let every = shared.config.bundle_poll;
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            () = tokio::time::sleep(every) => {}
        }
        if let Err(e) = poll_once(&shared).await {
            shared.metrics.deploy("failed");
            tracing::warn!(error = %e, "cannot load the version another daemon deployed; this one keeps its own");
        }
    }
}

/// One look: deploy the latest stored version if another daemon deployed
/// it after this one's. Gives whether it did.
pub async fn poll_once(shared: &Arc<Shared>) -> Result<bool, deploy::DeployError> {
    let Some((hash, at)) = shared.store.bundles().await?.into_iter().next() else {
        return Ok(false);
    };
    let _one = shared.deploying.lock().await;
    let current = shared.deployed();
    if hash == current.version || at <= current.deployed_at {
        return Ok(false);
    }
    let Some(bytes) = shared.store.get_bundle(&hash).await? else {
        return Ok(false);
    };
    let bundle = Bundle::from_bytes(&bytes)?;
    deploy::install(shared, bundle, "store", shared.config.migrate).await?;
    Ok(true)
}
