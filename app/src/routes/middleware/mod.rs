//! Layers the app's routes go through. Each is a `from_fn` function over a
//! plain type that knows nothing of HTTP routing (a limiter, the metrics).

pub mod metrics;
pub mod rate_limit;
pub mod security;
pub mod sign_in;
