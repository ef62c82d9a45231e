//! Made-up and altered cookies buy nothing, against the real `todo-app`
//! binary:
//!
//! - a page-cache bypass marker (`docket_wrote`) that the app did not sign,
//!   or signed for another expiry, is ignored: the page comes from the
//!   cache (`page_cache_lookups_total{result="hit"}` counts every one, and
//!   no `bypass`, so no database read), while the marker the app gave a
//!   writer does bypass it; a made-up session cookie beside it changes
//!   nothing;
//! - with `AUTH=oidc`, a made-up or altered session cookie cannot write,
//!   while the session it was altered from can.

use std::time::Duration;

use faults::eventually;
use faults::metrics::metric;
use faults::stack;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use test_support::{OidcClient, OidcProvider, free_port};

const WAIT: Duration = Duration::from_secs(20);
/// Each forged cookie pair is sent this many times.
const REPEATS: usize = 50;

/// A client that keeps no cookies and follows no redirects: what each
/// request carries is what the test gives it.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(WAIT)
        .build()
        .expect("a plain client builds")
}

/// The page cache's counters: hits, misses, bypasses.
async fn lookups(client: &reqwest::Client, base: &str) -> anyhow::Result<[f64; 3]> {
    let mut counts = [0.0; 3];
    for (count, result) in counts.iter_mut().zip(["hit", "miss", "bypass"]) {
        *count = metric(
            client,
            base,
            &format!("page_cache_lookups_total{{result=\"{result}\"}}"),
        )
        .await?;
    }
    Ok(counts)
}

/// The `name=value` of the cookie `name` a response sets.
fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok()?.split(';').next())
        .find(|pair| pair.starts_with(&format!("{name}=")) && pair.len() > name.len() + 1)
        .map(str::to_owned)
}

/// `value` with its character at `at` replaced by another base64 one.
fn flip(value: &str, at: usize) -> String {
    let replacement = if value.as_bytes()[at] == b'A' {
        "B"
    } else {
        "A"
    };
    format!("{}{replacement}{}", &value[..at], &value[at + 1..])
}

#[tokio::test]
async fn forged_bypass_markers_are_served_from_the_page_cache() -> anyhow::Result<()> {
    // A page may be kept for a minute: only a change or a marker makes the
    // app read the database while this runs.
    let stack = stack::start_with_app(&[], &[("PAGE_CACHE_MAX_AGE", "60s")]).await?;
    let base = stack.app.url();
    let client = client();

    // A real marker, earned by writing through the page.
    let write = client
        .post(format!("{base}/todos"))
        .header("sec-fetch-site", "same-origin")
        .form(&[("text", "Earn a marker")])
        .send()
        .await?;
    assert_eq!(write.status(), 303);
    let marker = set_cookie(&write, "docket_wrote").expect("a write sets the marker");
    let (expiry, signature) = marker["docket_wrote=".len()..]
        .split_once('.')
        .expect("<expiry>.<signature>");
    let later: u64 = expiry.parse::<u64>()? + 3600;
    // Until the write has been heard and a page rendered after it is kept,
    // two plain loads in a row are hits.
    eventually(WAIT, "the page cache to settle after the write", || async {
        let before = lookups(&client, &base).await.ok()?;
        for _ in 0..2 {
            client.get(&base).send().await.ok()?.bytes().await.ok()?;
        }
        let after = lookups(&client, &base).await.ok()?;
        (after[0] - before[0] == 2.0).then_some(())
    })
    .await?;

    let made_up_session = format!("docket_session={}", "QUJD".repeat(40));
    let forged = [
        "docket_wrote=1".to_owned(),
        format!("docket_wrote={later}"),
        format!("docket_wrote={later}.{signature}"),
        format!("docket_wrote={expiry}.{}", flip(signature, 5)),
        format!("docket_wrote={expiry}.{signature}A"),
        format!("docket_wrote={later}.{}", "A".repeat(signature.len())),
    ];
    let before = lookups(&client, &base).await?;
    for cookie in &forged {
        for _ in 0..REPEATS {
            let page = client
                .get(&base)
                .header(COOKIE, format!("{cookie}; {made_up_session}"))
                .send()
                .await?;
            assert_eq!(page.status(), 200, "{cookie}");
            page.bytes().await?;
        }
    }
    let after = lookups(&client, &base).await?;
    let sent = (forged.len() * REPEATS) as f64;
    assert_eq!(
        [
            after[0] - before[0],
            after[1] - before[1],
            after[2] - before[2]
        ],
        [sent, 0.0, 0.0],
        "every forged marker served from the cache: [hits, misses, bypasses]"
    );

    // The marker the app signed does bypass the cache: were markers taken
    // on sight, the forged ones above would have too.
    let page = client.get(&base).header(COOKIE, &marker).send().await?;
    assert_eq!(page.status(), 200);
    assert!(page.text().await?.contains("Earn a marker"));
    let with_real = lookups(&client, &base).await?;
    assert_eq!(with_real[2] - after[2], 1.0, "the real marker bypasses");
    Ok(())
}

/// An app with `AUTH=oidc` against a real provider, and a browser session
/// of `ada` in it.
struct SignedIn {
    stack: test_support::Stack,
    _provider: OidcProvider,
    session: String,
    csrf: String,
}

async fn signed_in_app() -> anyhow::Result<SignedIn> {
    let port = free_port();
    let client = OidcClient {
        redirect_uris: vec![format!("http://127.0.0.1:{port}/auth/callback")],
        ..OidcClient::default()
    };
    let provider = OidcProvider::start(client.clone()).await?;
    let public_url = format!("http://127.0.0.1:{port}");
    let stack = stack::start_with_app_on(
        port,
        &[
            ("AUTH", "oidc"),
            ("OIDC_ISSUER_URL", provider.issuer_url()),
            ("OIDC_CLIENT_ID", &client.client_id),
            ("OIDC_CLIENT_SECRET", &client.client_secret),
            ("PUBLIC_URL", &public_url),
            ("COOKIE_KEY", "abuse-cookies-test-key-0123456789abcdef"),
        ],
    )
    .await?;
    let browser = reqwest::Client::builder()
        .no_proxy()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(WAIT)
        .build()?;
    let to_provider = eventually(WAIT, "sign-in to become available", || async {
        let response = browser
            .get(format!("{public_url}/auth/login"))
            .send()
            .await
            .ok()?;
        let location = response.headers().get(LOCATION)?.to_str().ok()?;
        location
            .starts_with(provider.issuer_url())
            .then(|| location.to_owned())
    })
    .await?;
    let ada = provider.user("ada");
    let back = provider
        .sign_in(&to_provider.parse()?, &ada.username, &ada.password)
        .await?;
    let signed_in = browser.get(back).send().await?;
    let session = set_cookie(&signed_in, "docket_session").expect("a session cookie");
    let page = browser.get(&public_url).send().await?.text().await?;
    let marker = r#"name="csrf" value=""#;
    let start = page.find(marker).expect("a csrf field when signed in") + marker.len();
    let csrf = page[start..start + page[start..].find('"').unwrap_or(0)].to_owned();
    Ok(SignedIn {
        stack,
        _provider: provider,
        session,
        csrf,
    })
}

#[tokio::test]
async fn made_up_and_altered_sessions_cannot_write() -> anyhow::Result<()> {
    let app = signed_in_app().await?;
    let base = app.stack.app.url();
    let db = sqlx::PgPool::connect(&app.stack.database_url).await?;
    let count = || async {
        sqlx::query_scalar::<_, i64>("select count(*) from todos")
            .fetch_one(&db)
            .await
    };
    let client = client();
    let write = |cookie: String, text: &'static str| {
        let (client, base, csrf) = (client.clone(), base.clone(), app.csrf.clone());
        async move {
            client
                .post(format!("{base}/todos"))
                .header(COOKIE, cookie)
                .header("sec-fetch-site", "same-origin")
                .form(&[("text", text), ("csrf", &csrf)])
                .send()
                .await
        }
    };
    let (name, value) = app.session.split_once('=').expect("name=value");
    let forged = [
        format!("{name}={}", "QUJD".repeat(40)),
        format!("{name}={}", flip(value, 10)),
        format!("{name}={}", flip(value, value.len() - 3)),
        format!("{name}={}", &value[..value.len() - 4]),
        // With a made-up bypass marker too.
        format!("{name}={}; docket_wrote=9999999999.AAAA", flip(value, 20)),
    ];
    let stored = count().await?;

    for cookie in forged {
        let response = write(cookie.clone(), "Forged").await?;
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
            .to_owned();
        assert!(
            response.status().is_client_error() || (response.status() == 303 && location != "/"),
            "{cookie}: {} to {location}",
            response.status()
        );
    }
    assert_eq!(count().await?, stored, "nothing forged was stored");

    // The session they were altered from writes: the refusals above were
    // for the cookie, not the form.
    let real = write(app.session.clone(), "Real").await?;
    assert_eq!(real.status(), 303);
    assert_eq!(real.headers()[LOCATION], "/");
    assert_eq!(count().await?, stored + 1);
    Ok(())
}
