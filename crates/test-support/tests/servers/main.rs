//! Integration tests of test-support itself, against real PostgreSQL and
//! nats-server processes: one test binary, one file per server kind.

mod database;
mod helpers;
mod nats;
mod oidc;
mod postgres;
mod process;
mod prometheus;
mod service;
mod webhook;
mod workspace;
