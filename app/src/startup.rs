//! Building the app from its configuration and running it until shutdown.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream;
use service_kit::NatsSettings;
use sqlx::Connection;
use sqlx::postgres::PgPoolOptions;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::api_tokens::{self, CurrentTokens};
use crate::auth::{Auth, Oidc};
use crate::config::Config;
use crate::db::{self, MIGRATOR};
use crate::faults::Faults;
use crate::live;
use crate::outbox::{JetStreamPublisher, Relay};
use crate::outbox_listener::{self, Listeners};
use crate::picture::{self, PictureSettings};
use crate::rate_limit::WriteLimiter;
use crate::routes;
use crate::server;
use crate::state::AppState;
use crate::write_marker::CookieKey;

/// How long in-flight requests may take to finish after SIGTERM. Together
/// with the relay's grace this stays under the 10 s Kubernetes gives by default.
const DRAIN_LIMIT: Duration = Duration::from_secs(8);
const RELAY_GRACE: Duration = Duration::from_millis(1500);
/// A pooled connection idle this long is pinged before it is handed out.
const PING_IDLE_AFTER: Duration = Duration::from_secs(1);

pub struct Application {
    listener: TcpListener,
    /// `ADMIN_PORT`'s listener: the operational routes, off the public port.
    admin_listener: Option<TcpListener>,
    state: AppState,
    relay: Relay,
    relay_wake: Arc<Notify>,
    nats: async_nats::Client,
    picture: Option<PictureSettings>,
}

impl Application {
    /// Binds the port and prepares connections. Neither Postgres nor NATS has
    /// to be up yet: the app serves (and reports not ready) until they are.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        // The pool and the relay's own connection alike.
        let database = db::connect_options(&config.database);
        let pool = PgPoolOptions::new()
            .max_connections(config.pool_size)
            .acquire_timeout(Duration::from_secs(3))
            // By default sqlx pings every connection as it hands it out: a
            // round trip before each query, on paths that are mostly round
            // trips (a toggle batch took five). sqlx 0.8 pings each one as
            // it comes back too, so one used moments ago is known alive;
            // one idle a while is pinged still, as sqlx's documentation
            // suggests. A quick bench read the API's page 1.4x as fast.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= PING_IDLE_AFTER {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
            .connect_lazy_with(database.clone());
        let nats = config
            .nats
            .connect(NatsSettings::service_options("todo-app"))
            .await
            .context("setting up the NATS connection")?;
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {} (is the port taken? set PORT)", config.listen))?;
        let admin_listener = match config.admin_listen {
            None => None,
            Some(address) => Some(TcpListener::bind(address).await.with_context(|| {
                format!("binding {address} (is the port taken? set ADMIN_PORT)")
            })?),
        };
        let api_tokens = config
            .api_tokens
            .map(|source| CurrentTokens::from_source(source, api_tokens::RELOAD_EVERY));
        let cookie_key = config.cookie_key.unwrap_or_else(|| {
            tracing::info!(
                "COOKIE_KEY is unset: cookies are signed with a key of this process, \
                 so a writer's marker (and a session) counts on this replica only"
            );
            CookieKey::random()
        });
        let mut state = AppState::new(pool.clone(), None)
            .with_api_tokens(api_tokens)
            .with_page_cache_max_age(config.page_cache_max_age)
            .with_stream_limits(config.stream_limits)
            .with_client_ip(config.client_ip.clone())
            .with_cookie_key(cookie_key.clone());
        if let Auth::Oidc(settings) = config.auth {
            state = state.with_oidc(Oidc::new(*settings, &cookie_key));
        }
        if config.picture.is_some() {
            state = state.with_picture();
        }
        if let Some(limit) = config.write_limit {
            let sessions = state.oidc.as_ref().map(|oidc| oidc.cookies.clone());
            state = state.with_write_limiter(WriteLimiter::new(limit, config.client_ip, sessions));
        }
        let relay_wake = Arc::new(Notify::new());
        let relay = Relay::new(
            database,
            Arc::clone(&relay_wake),
            JetStreamPublisher::new(jetstream::new(nats.clone()), config.todos_stream),
            state.metrics.clone(),
        );
        Ok(Self {
            listener,
            admin_listener,
            state,
            relay,
            relay_wake,
            nats,
            picture: config.picture,
        })
    }

    /// Turns on test-only faults (see [`crate::faults`]).
    pub fn with_faults(mut self, faults: Option<Faults>) -> Self {
        self.state = self.state.with_faults(faults);
        self
    }

    pub fn port(&self) -> u16 {
        port_of(&self.listener)
    }

    /// The admin port, when `ADMIN_PORT` is set.
    pub fn admin_port(&self) -> Option<u16> {
        self.admin_listener.as_ref().map(port_of)
    }

    /// Serves until `shutdown` is cancelled, then stops accepting, lets
    /// in-flight requests and the relay's batch finish, and returns.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Self {
            listener,
            admin_listener,
            state,
            relay,
            relay_wake,
            nats,
            picture,
        } = self;
        tracing::info!(
            port = port_of(&listener),
            admin_port = admin_listener.as_ref().map(port_of),
            "todo-app listening"
        );

        let background = tokio::spawn(migrate_then_relay(state.clone(), relay, shutdown.clone()));
        // Off the request path: `/picture` serves what this keeps in memory.
        if let (Some(settings), Some(current)) = (picture, state.picture.clone()) {
            tokio::spawn(picture::keep_current(
                jetstream::new(nats.clone()),
                settings,
                current,
                state.metrics.picture_fetches.clone(),
                shutdown.clone(),
            ));
        }

        // Sign-in waits for this; nothing else does.
        if let Some(oidc) = &state.oidc {
            tokio::spawn(oidc.provider.clone().discover(shutdown.clone()));
        }

        // Feeds open pages from NATS; at shutdown it ends their event
        // streams, so draining does not wait for them.
        tokio::spawn(live::feed_from_nats(
            nats,
            state.live.clone(),
            shutdown.clone(),
        ));

        tokio::spawn(outbox_listener::listen(
            state.pool.clone(),
            Listeners {
                relay: relay_wake,
                generation: state.generation.clone(),
            },
            shutdown.clone(),
        ));

        // Both listeners stop accepting at shutdown and drain together.
        let server = async {
            match admin_listener {
                None => server::serve(listener, routes::router(state), shutdown.clone()).await,
                Some(admin_listener) => {
                    tokio::join!(
                        server::serve(
                            listener,
                            routes::public_router(state.clone()),
                            shutdown.clone()
                        ),
                        server::serve(
                            admin_listener,
                            routes::admin_router(state),
                            shutdown.clone()
                        ),
                    );
                }
            }
        };
        tokio::select! {
            () = server => {}
            () = async { shutdown.cancelled().await; tokio::time::sleep(DRAIN_LIMIT).await } => {
                tracing::warn!("in-flight requests did not finish within {DRAIN_LIMIT:?}; stopping anyway");
            }
        }
        if tokio::time::timeout(RELAY_GRACE, background).await.is_err() {
            tracing::warn!(
                "the outbox relay did not stop in time; unpublished rows stay in the outbox"
            );
        }
        tracing::info!("todo-app stopped");
        Ok(())
    }
}

fn port_of(listener: &TcpListener) -> u16 {
    listener
        .local_addr()
        .expect("a bound listener has an address")
        .port()
}

/// Applies migrations (retrying until Postgres answers), marks the app
/// ready, then runs the outbox relay.
async fn migrate_then_relay(state: AppState, relay: Relay, shutdown: CancellationToken) {
    loop {
        match MIGRATOR.run(&state.pool).await {
            Ok(()) => break,
            Err(e) => {
                tracing::warn!(error = %e, "database migrations could not run yet; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
    state.mark_migrated();
    tracing::info!("database migrations applied");
    relay.run(shutdown).await;
}

/// Cancels `shutdown` on SIGTERM or Ctrl-C.
pub async fn cancel_on_signal(shutdown: CancellationToken) {
    service_kit::stop::requested().await;
    tracing::info!("shutdown requested");
    shutdown.cancel();
    // Draining is bounded in `run_until_stopped`, but a process blocked
    // elsewhere (a full stdout pipe, a hung driver) must still honour the
    // orchestrator's deadline: leave on our own just before it.
    std::thread::spawn(|| {
        std::thread::sleep(SHUTDOWN_DEADLINE);
        std::process::exit(1);
    });
}

/// The longest a SIGTERM may take to end the process (Kubernetes' default
/// grace period is 10 s).
const SHUTDOWN_DEADLINE: Duration = Duration::from_millis(9_500);
