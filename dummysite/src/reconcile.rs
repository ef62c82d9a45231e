//! The reconciler: make a site's children serve a fresh copy of its page,
//! and say in its status how that went.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::children::{self, CONTENT_SHA256, Children, FETCHED_AT, PAGE_KEY, SOURCE_URL};
use crate::copy::with_base;
use crate::fetch::Fetcher;
use crate::status::{self, Outcome, Served};
use crate::{Config, DummySite, Error, Metrics, WebsiteUrl};

/// The field manager of everything the controller writes (server-side
/// apply: fields others set on the children are left alone).
pub const MANAGER: &str = "dummysite-controller";

/// What every reconcile shares.
pub struct Context {
    client: kube::Client,
    fetcher: Fetcher,
    config: Config,
    metrics: Metrics,
    /// Consecutive failures per site, for the backoff.
    failures: Mutex<HashMap<ObjectRef<DummySite>, u32>>,
}

impl Context {
    pub fn new(client: kube::Client, config: Config, metrics: Metrics) -> Context {
        Context {
            client,
            fetcher: Fetcher::new(config.fetch_timeout, config.max_page_bytes),
            config,
            metrics,
            failures: Mutex::default(),
        }
    }

    fn failed_again(&self, key: ObjectRef<DummySite>) -> u32 {
        let mut failures = self.failures.lock().expect("no panics while held");
        let count = failures.entry(key).or_default();
        *count = count.saturating_add(1);
        *count
    }

    fn succeeded(&self, key: &ObjectRef<DummySite>) {
        self.failures
            .lock()
            .expect("no panics while held")
            .remove(key);
    }
}

/// The copy the ConfigMap holds now, from its annotations.
struct CurrentCopy {
    url: String,
    sha256: String,
    bytes: u64,
    fetched_at: Timestamp,
}

impl CurrentCopy {
    fn read(config_map: &ConfigMap) -> Option<CurrentCopy> {
        let annotations = config_map.metadata.annotations.as_ref()?;
        Some(CurrentCopy {
            url: annotations.get(SOURCE_URL)?.clone(),
            sha256: annotations.get(CONTENT_SHA256)?.clone(),
            bytes: config_map
                .binary_data
                .as_ref()?
                .get(PAGE_KEY)
                .map(|page| page.0.len() as u64)?,
            fetched_at: annotations.get(FETCHED_AT)?.parse().ok()?,
        })
    }

    fn served(&self) -> Served {
        Served {
            url: self.url.clone(),
            bytes: self.bytes,
        }
    }
}

pub async fn reconcile(site: Arc<DummySite>, context: Arc<Context>) -> Result<Action, Error> {
    // Deleting the site deletes its children through their owner
    // references; nothing is left to do.
    if site.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let children = Children::of(&site).ok_or(Error::Unstored)?;
    let key = ObjectRef::from_obj(&*site);
    let now = Timestamp::now();

    let url = match WebsiteUrl::parse(&site.spec.website_url) {
        Ok(url) => url,
        Err(reason) => {
            let outcome = Outcome::Failed {
                reason: "InvalidUrl",
                message: format!("spec.website_url {reason}"),
                previous: None,
            };
            write_status(&context, &site, &children, &outcome, now).await?;
            return Err(Error::InvalidUrl(reason));
        }
    };

    let config_maps: Api<ConfigMap> = Api::namespaced(context.client.clone(), children.namespace());
    let current = config_maps
        .get_opt(children.name())
        .await?
        .as_ref()
        .and_then(CurrentCopy::read);
    let refresh =
        SignedDuration::try_from(context.config.refresh_interval).unwrap_or(SignedDuration::MAX);
    let fresh = current
        .as_ref()
        .filter(|copy| copy.url == url.as_str() && copy.fetched_at + refresh > now);

    let (sha256, outcome, failure) = match fresh {
        Some(copy) => (copy.sha256.clone(), Outcome::Serving(copy.served()), None),
        None => match context.fetcher.fetch(&url).await {
            Ok(page) => {
                let copy = with_base(&page.body, &url);
                apply(
                    &context,
                    &children,
                    children.config_map(&url, &copy, &now.to_string()),
                )
                .await?;
                tracing::info!(site = %key, %url, bytes = copy.len(), "copied the page");
                let served = Served {
                    url: url.to_string(),
                    bytes: copy.len() as u64,
                };
                (children::sha256(&copy), Outcome::Serving(served), None)
            }
            Err(error) => {
                context.metrics.fetch_failed(error.reason());
                let outcome = Outcome::Failed {
                    reason: error.reason(),
                    message: error.to_string(),
                    previous: current.as_ref().map(CurrentCopy::served),
                };
                match &current {
                    // Keep serving what was copied before.
                    Some(copy) => (copy.sha256.clone(), outcome, Some(error)),
                    None => {
                        write_status(&context, &site, &children, &outcome, now).await?;
                        return Err(error.into());
                    }
                }
            }
        },
    };

    apply(
        &context,
        &children,
        children.deployment(&context.config.server_image, &sha256),
    )
    .await?;
    apply(&context, &children, children.service()).await?;
    write_status(&context, &site, &children, &outcome, now).await?;

    if let Some(error) = failure {
        return Err(error.into());
    }
    context.succeeded(&key);
    // Fetch again when the copy is due for a refresh.
    let fetched_at = fresh.map_or(now, |copy| copy.fetched_at);
    let due = (fetched_at + refresh).duration_since(now);
    Ok(Action::requeue(
        Duration::try_from(due).unwrap_or(context.config.refresh_interval),
    ))
}

/// After a failed reconcile: wait, doubling with each failure in a row,
/// and try again; an invalid spec waits for the spec to change.
pub fn error_policy(site: Arc<DummySite>, error: &Error, context: Arc<Context>) -> Action {
    let key = ObjectRef::from_obj(&*site);
    context.metrics.reconcile_failed();
    match error {
        Error::InvalidUrl(_) | Error::Unstored => {
            tracing::warn!(site = %key, error = %error, "waiting for the spec to change");
            Action::await_change()
        }
        Error::Fetch(_) | Error::Kube(_) => {
            let failures = context.failed_again(key.clone());
            let delay = backoff(
                context.config.retry_first,
                context.config.retry_longest,
                failures,
            );
            tracing::warn!(
                site = %key,
                error = %service_kit::backoff::chain(error),
                retry_in_s = delay.as_secs(),
                "reconcile failed"
            );
            Action::requeue(delay)
        }
    }
}

/// `first`, doubled for each failure after the first, at most `longest`.
pub fn backoff(first: Duration, longest: Duration, failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(20);
    first.saturating_mul(1 << doublings).min(longest)
}

async fn apply<K>(context: &Context, children: &Children, object: K) -> Result<(), Error>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + Serialize
        + DeserializeOwned,
{
    let api: Api<K> = Api::namespaced(context.client.clone(), children.namespace());
    api.patch(
        children.name(),
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&object),
    )
    .await?;
    Ok(())
}

async fn write_status(
    context: &Context,
    site: &DummySite,
    children: &Children,
    outcome: &Outcome,
    now: Timestamp,
) -> Result<(), Error> {
    let status = status::next(
        site.status.as_ref(),
        site.meta().generation,
        &site.spec.website_url,
        outcome,
        now,
    );
    let sites: Api<DummySite> = Api::namespaced(context.client.clone(), children.namespace());
    sites
        .patch_status(
            children.name(),
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": status })),
        )
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::backoff;

    #[test]
    fn the_backoff_doubles_up_to_the_longest_wait() {
        let s = Duration::from_secs;
        let waits: Vec<_> = (1..=8).map(|n| backoff(s(5), s(300), n)).collect();
        assert_eq!(
            waits,
            [s(5), s(10), s(20), s(40), s(80), s(160), s(300), s(300)]
        );
        assert_eq!(backoff(s(5), s(300), u32::MAX), s(300));
    }
}
