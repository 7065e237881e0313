//! `/metrics` in Prometheus text format: requests per route and status, a latency histogram
//! per route, and per collection its live records, uncommitted and unindexed records and log bytes.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::Method;
use axum::response::IntoResponse;

use crate::AppState;

/// Upper bounds (seconds) of the latency histogram's buckets.
const BUCKETS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

#[derive(Default)]
struct Route {
    /// Requests per status code.
    statuses: BTreeMap<u16, u64>,
    /// Requests at or below each bucket's bound (cumulative when printed).
    buckets: [u64; BUCKETS.len()],
    count: u64,
    seconds: f64,
}

/// Request counters and latency histograms, per route.
#[derive(Default)]
pub struct Metrics {
    routes: Mutex<BTreeMap<String, Route>>,
}

impl Metrics {
    pub(crate) fn record(&self, route: &str, status: u16, took: Duration) {
        let mut routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        let r = routes.entry(route.to_owned()).or_default();
        *r.statuses.entry(status).or_default() += 1;
        let s = took.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|&b| s <= b) {
            r.buckets[i] += 1;
        }
        r.count += 1;
        r.seconds += s;
    }
}

/// A route's pattern: collection names and point ids replaced by placeholders, so a metric
/// line does not appear per collection or per point.
pub(crate) fn route_of(method: &Method, path: &str) -> String {
    let mut parts: Vec<&str> = path.split('/').collect();
    let at = parts.iter().position(|p| *p == "collections");
    if let Some(i) = at {
        if let Some(name) = parts.get_mut(i + 1) {
            *name = "{name}";
        }
        if parts.get(i + 2) == Some(&"points") {
            if let Some(id) = parts.get_mut(i + 3) {
                if !matches!(*id, "delete" | "payload" | "search" | "query" | "scroll" | "count") {
                    *id = "{id}";
                }
            }
        }
        if parts.get(i + 2) == Some(&"versions") {
            if let Some(v) = parts.get_mut(i + 3) {
                *v = "{version}";
            }
        }
    }
    format!("{method} {}", parts.join("/"))
}

fn label(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// A per-collection gauge: name, help, how to read it.
type Gauge = (&'static str, &'static str, fn(&crate::Served) -> u64);

pub(crate) async fn handler(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let mut out = String::new();
    {
        let routes = state.metrics.routes.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(out, "# HELP neardb_requests_total Requests answered, by route and status.");
        let _ = writeln!(out, "# TYPE neardb_requests_total counter");
        for (route, r) in routes.iter() {
            for (status, n) in &r.statuses {
                let _ = writeln!(
                    out,
                    "neardb_requests_total{{route=\"{}\",status=\"{status}\"}} {n}",
                    label(route)
                );
            }
        }
        let _ = writeln!(out, "# HELP neardb_request_seconds Time to answer a request, by route.");
        let _ = writeln!(out, "# TYPE neardb_request_seconds histogram");
        for (route, r) in routes.iter() {
            let mut cumulative = 0;
            for (b, n) in BUCKETS.iter().zip(r.buckets) {
                cumulative += n;
                let _ = writeln!(
                    out,
                    "neardb_request_seconds_bucket{{route=\"{}\",le=\"{b}\"}} {cumulative}",
                    label(route)
                );
            }
            let _ = writeln!(
                out,
                "neardb_request_seconds_bucket{{route=\"{}\",le=\"+Inf\"}} {}",
                label(route),
                r.count
            );
            let _ = writeln!(out, "neardb_request_seconds_sum{{route=\"{}\"}} {}", label(route), r.seconds);
            let _ = writeln!(out, "neardb_request_seconds_count{{route=\"{}\"}} {}", label(route), r.count);
        }
    }
    let collections: Vec<(String, Arc<crate::Served>)> = state
        .collections
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let gauges: [Gauge; 4] = [
        ("neardb_collection_records", "Live records.", |s| s.collection.len()),
        ("neardb_collection_uncommitted_records", "Records not yet in a segment.", |s| {
            s.collection.uncommitted_rows()
        }),
        (
            "neardb_collection_unindexed_records",
            "Recent records not yet in their graph (scanned by searches).",
            |s| s.collection.unindexed_rows(),
        ),
        ("neardb_collection_log_bytes", "Bytes in the current write-ahead log.", |s| {
            s.collection.log_bytes()
        }),
    ];
    for (name, help, value) in gauges {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        for (c, served) in &collections {
            let _ = writeln!(out, "{name}{{collection=\"{}\"}} {}", label(c), value(served));
        }
    }
    ([("content-type", "text/plain; version=0.0.4")], out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_name_patterns_not_collections_or_points() {
        assert_eq!(
            route_of(&Method::POST, "/collections/docs/points/search"),
            "POST /collections/{name}/points/search"
        );
        assert_eq!(
            route_of(&Method::GET, "/collections/docs/points/42"),
            "GET /collections/{name}/points/{id}"
        );
        assert_eq!(route_of(&Method::PUT, "/collections/docs/points"), "PUT /collections/{name}/points");
        assert_eq!(
            route_of(&Method::POST, "/neardb/collections/a/versions/v1/search"),
            "POST /neardb/collections/{name}/versions/{version}/search"
        );
        assert_eq!(route_of(&Method::GET, "/metrics"), "GET /metrics");
    }
}
