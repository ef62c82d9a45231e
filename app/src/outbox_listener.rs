//! One `LISTEN outbox` connection per replica, for everything that wants to
//! hear of a committed change: it wakes the outbox relay and moves the
//! replica's [`Generation`], so the page cache and the API's known tags
//! stop answering from what was read before.
//!
//! PostgreSQL signals every listening backend at each commit that notifies,
//! and each of them then writes to its client: a second listener per
//! replica cost 15 % of the creates per second on 2 cores. So there is one.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::generation::Generation;

/// The channel the outbox trigger notifies at commit.
const CHANNEL: &str = "outbox";
/// Pause before listening again after the connection was lost.
const RELISTEN_DELAY: Duration = Duration::from_secs(1);

/// Who is told of a change.
pub struct Listeners {
    pub relay: Arc<Notify>,
    pub generation: Generation,
}

impl Listeners {
    /// Something changed, or may have (notifications were lost).
    fn changed(&self) {
        self.generation.bump();
        self.relay.notify_one();
    }
}

/// Listens until `shutdown`, telling `listeners` of every notification,
/// and of every connection loss (notifications sent meanwhile are lost; the
/// relay's slow poll and the caches' maximum age bound what that costs).
pub async fn listen(pool: PgPool, listeners: Listeners, shutdown: CancellationToken) {
    while !shutdown.is_cancelled() {
        match listen_once(&pool, &listeners, &shutdown).await {
            Ok(Ended::Shutdown) => return,
            Ok(Ended::ConnectionLost) => {
                tracing::debug!("the outbox listener lost its connection; listening again");
            }
            Err(e) => {
                tracing::debug!(error = %e, "the outbox listener failed; listening again");
            }
        }
        listeners.changed();
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(RELISTEN_DELAY) => {}
        }
    }
}

enum Ended {
    Shutdown,
    ConnectionLost,
}

/// One listening connection, until it fails or `shutdown`.
async fn listen_once(
    pool: &PgPool,
    listeners: &Listeners,
    shutdown: &CancellationToken,
) -> sqlx::Result<Ended> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    // Changes committed before LISTEN took effect went unheard.
    listeners.changed();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return Ok(Ended::Shutdown),
            // `None`: the connection dropped. The next `try_recv` would
            // reconnect on its own, but without telling us when, and the
            // generation must move after LISTEN is back, not before.
            notification = listener.try_recv() => match notification? {
                Some(_) => listeners.changed(),
                None => return Ok(Ended::ConnectionLost),
            },
        }
    }
}
