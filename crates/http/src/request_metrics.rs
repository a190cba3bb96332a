//! The request counter and latency histogram, recorded on every request.
//!
//! A `metrics::counter!` call looks its handle up in the recorder's registry
//! (hashing the name and labels, and formatting the status code) each time;
//! on the proxy path that costs more than the rest of the bookkeeping. The
//! handles are therefore looked up once per `(access, status)` pair and kept
//! here. They are looked up at first use, so the process-wide recorder must
//! be installed before requests are served (as `authgate serve` does).

use axum::http::StatusCode;
use metrics::{Counter, Histogram};
use std::sync::RwLock;
use std::time::Instant;

/// Request counter by route kind and status.
pub const REQUESTS_TOTAL: &str = "authgate_http_requests_total";
/// Request latency by route kind (the gateway's whole handling, upstream included).
pub const REQUEST_DURATION: &str = "authgate_http_request_duration_seconds";

/// The handles of [`REQUESTS_TOTAL`] and [`REQUEST_DURATION`] seen so far
/// (a handful of route kinds and statuses: a list is faster to search than
/// a hashed map).
#[derive(Default)]
pub(crate) struct RequestMetrics {
    counters: RwLock<Vec<((&'static str, u16), Counter)>>,
    histograms: RwLock<Vec<(&'static str, Histogram)>>,
}

impl RequestMetrics {
    /// Counts one request of kind `access` answered with `status`, and its
    /// latency since `started`.
    pub fn record(&self, access: &'static str, status: StatusCode, started: Instant) {
        let key = (access, status.as_u16());
        if let Some((_, counter)) = read(&self.counters).iter().find(|(k, _)| *k == key) {
            counter.increment(1);
        } else {
            let counter = metrics::counter!(
                REQUESTS_TOTAL,
                "access" => access,
                "status" => status.as_u16().to_string()
            );
            counter.increment(1);
            write(&self.counters).push((key, counter));
        }
        let seconds = started.elapsed().as_secs_f64();
        if let Some((_, histogram)) = read(&self.histograms).iter().find(|(k, _)| *k == access) {
            histogram.record(seconds);
        } else {
            let histogram = metrics::histogram!(REQUEST_DURATION, "access" => access);
            histogram.record(seconds);
            write(&self.histograms).push((access, histogram));
        }
    }
}

/// The map, whether or not a writer panicked (a handle map cannot be left
/// half-written: insertion is one call).
fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
