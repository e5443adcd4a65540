//! After a reload: the app must still work. `--verify-url` must answer 2xx within its
//! timeout, and a signalled process must still be alive; otherwise the app refused the
//! content.

use super::{Failure, Reloader};
use crate::snapshot::ContentHash;
use std::time::Duration;
use tokio::time::Instant;

/// Pause between two verification requests.
const INTERVAL: Duration = Duration::from_millis(200);

/// What to check after a reload.
#[derive(Debug, Clone)]
pub struct Verify {
    /// Must answer 2xx.
    pub url: hyper::Uri,
    /// Within this long.
    pub timeout: Duration,
}

impl Reloader {
    /// Checks that the app works with snapshot `hash`; a failure is a refusal.
    pub(crate) async fn verify(&self, verify: &Verify, hash: ContentHash) -> Result<(), Failure> {
        let deadline = Instant::now() + verify.timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
            match self.http.call(hyper::Method::GET, &verify.url, Some(hash), left).await {
                Ok(()) => break,
                Err(error) if Instant::now() + INTERVAL >= deadline => {
                    let url = super::redact_url(&verify.url.to_string());
                    return Err(Failure::refused(format!(
                        "{url} did not answer 2xx within {:?}: {error}",
                        verify.timeout
                    )));
                }
                Err(_) => tokio::time::sleep(INTERVAL).await,
            }
        }
        if let Some(target) = self.settings.target.clone()
            && !super::signal::alive(&target).await
        {
            return Err(Failure::refused("the signalled process is gone after the reload"));
        }
        Ok(())
    }
}
