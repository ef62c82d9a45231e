//! The DummySite controller (the course's phase 8): a `DummySite` names a
//! web page; the controller copies the page into a ConfigMap and serves the
//! copy with a Deployment and a Service, and says in the site's status
//! whether that worked.

mod children;
mod config;
mod copy;
mod error;
mod fetch;
mod metrics;
mod reconcile;
mod resource;
mod run;
mod status;
mod website_url;

pub use children::{CONTENT_SHA256, PAGE_KEY, SOURCE_URL};
pub use config::Config;
pub use error::Error;
pub use fetch::{FetchError, Fetcher, Page};
pub use metrics::Metrics;
pub use reconcile::{Context, MANAGER, backoff, error_policy, reconcile};
pub use resource::{DummySite, DummySiteSpec, DummySiteStatus, GROUP};
pub use run::{crd_yaml, run};
pub use status::{FETCH_FAILED, READY};
pub use website_url::WebsiteUrl;
