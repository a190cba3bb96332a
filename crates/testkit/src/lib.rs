//! Test support for authgate's integration tests (use it as a dev-dependency only).
//!
//! - [`require_url`]: service URLs from the environment, never skipping silently in CI.
//! - [`OidcProviderPeer`]: the real `oidc-provider` npm package (OpenID Certified), with strict
//!   refresh-token rotation, counted grants and an injectable refresh delay.
//! - [`login_with_dev_interactions`]: signs in at that provider with a plain HTTP client;
//!   [`login_with_dev_provider_fields`] at the built-in development provider, choosing the
//!   identity claims it states.
//! - [`RedisInstance`]: a private `redis-server` that can be killed and restarted on its port
//!   (plain, TLS-only with a [`TestCa`] made at test time, or a replica);
//!   [`SentinelInstance`]: a Redis Sentinel watching one; [`redis_command`] for set-up.
//! - [`FaultProxy`]: a fault-injecting HTTP proxy in front of a provider's token endpoint (5xx,
//!   429, resets, hangs, delays, provider error dialects, lost or late responses).
//! - [`PgFaultProxy`]: a TCP proxy in front of PostgreSQL that takes the store down or loses the
//!   answer to one statement after it committed.
//! - [`free_port`], [`interop_dir`], [`ensure_node_modules`].
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod env;
mod fault_proxy;
mod login;
mod nginx;
mod peer;
mod pg_proxy;
mod redis;

pub use env::{REQUIRE_SERVICES_VAR, ensure_node_modules, free_port, interop_dir, require_url};
pub use fault_proxy::{Fault, FaultProxy, FaultProxyStats};
pub use login::{
    DevLogin, Pkce, login_with_dev_interactions, login_with_dev_interactions_in,
    login_with_dev_provider, login_with_dev_provider_fields, random_token,
};
pub use nginx::{Nginx, nginx_binary};
pub use peer::{OidcProviderPeer, PeerClient, PeerError, PeerOptions, PeerStats, TokenResponse};
pub use pg_proxy::PgFaultProxy;
pub use redis::{RedisInstance, SentinelInstance, TestCa, redis_command};
