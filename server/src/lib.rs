//! `neardb serve`: NearDB's durable collections behind the core of Qdrant's REST API, so the
//! official `qdrant-client` and the integrations built on it work unchanged, plus NearDB's own
//! endpoints under `/neardb/…` (versions, duplicates, neighbours), `/metrics` in Prometheus
//! text format and health probes.
//!
//! Each collection is a `neardb::collection::Collection` in `DATA/collections/<name>/`. Every
//! request that touches one runs on tokio's blocking pool, so a long search or a sync never
//! stalls the async threads. Writes are acknowledged once durable (the library's default
//! policy); a collection commits (builds its index) in the background once enough records are
//! uncommitted.

mod metrics;
mod qdrant;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use neardb::collection::{Collection, CollectionConfig, CollectionError};
use serde_json::{json, Value};

pub use metrics::Metrics;

/// How the server runs.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// Directory holding the collections (created if missing).
    pub data: PathBuf,
    /// Address to listen on.
    pub addr: SocketAddr,
    /// Key every request must carry (`api-key` header or `Authorization: Bearer`), if set.
    pub api_key: Option<String>,
    /// A key that may read but not write, if set.
    pub read_only_key: Option<String>,
    /// Largest request body, bytes.
    pub max_body_bytes: usize,
    /// Most points (or searches) in one request.
    pub max_batch: usize,
    /// Longest a request may take.
    pub timeout: Duration,
    /// Uncommitted records after which a collection commits in the background.
    pub commit_rows: u64,
    /// Unnamed versions kept after a background commit (named ones are always kept).
    pub keep_versions: usize,
    /// Fraction of committed rows deleted or replaced past which a background commit also
    /// compacts (rewrites the live records into one segment).
    pub compact_deleted: f64,
}

impl ServeConfig {
    /// Defaults: port 6333 on loopback, 64 MiB bodies, 10,000 points a batch, 60 s, a commit
    /// every 50,000 records.
    pub fn new(data: impl Into<PathBuf>) -> Self {
        Self {
            data: data.into(),
            addr: SocketAddr::from(([127, 0, 0, 1], 6333)),
            api_key: None,
            read_only_key: None,
            max_body_bytes: 64 << 20,
            max_batch: 10_000,
            timeout: Duration::from_secs(60),
            commit_rows: 50_000,
            keep_versions: 2,
            compact_deleted: 0.2,
        }
    }
}

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The data directory or a collection in it could not be opened.
    #[error("{0}")]
    Data(String),
    /// The address could not be bound, or the server failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// One served collection.
pub(crate) struct Served {
    pub collection: Collection,
    /// Sequence of write operations (Qdrant's `operation_id`).
    pub operations: AtomicU64,
    /// A background commit is running.
    pub committing: AtomicBool,
}

pub(crate) struct AppState {
    pub config: ServeConfig,
    pub collections: RwLock<HashMap<String, Arc<Served>>>,
    pub metrics: Metrics,
}

impl AppState {
    /// Opens every collection of `config`'s data directory.
    fn open(config: ServeConfig) -> Result<Arc<Self>, ServeError> {
        let collections = open_all(&config.data.join("collections"))?;
        Ok(Arc::new(Self { config, collections: RwLock::new(collections), metrics: Metrics::default() }))
    }

    /// Flushes every collection's log (at shutdown).
    fn flush_all(&self) {
        let all: Vec<Arc<Served>> =
            self.collections.read().unwrap_or_else(|e| e.into_inner()).values().cloned().collect();
        for served in all {
            let _ = served.collection.flush();
        }
    }

    fn dir(&self) -> PathBuf {
        self.config.data.join("collections")
    }

    pub fn get(&self, name: &str) -> Result<Arc<Served>, ApiError> {
        self.collections
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(format!("Collection `{name}` doesn't exist!")))
    }
}

/// An error as Qdrant reports it: a status code and `{"status": {"error": …}, "time": …}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn bad(message: impl Into<String>) -> Self {
        Self { status: StatusCode::BAD_REQUEST, message: format!("Wrong input: {}", message.into()) }
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self { status: StatusCode::NOT_FOUND, message: format!("Not found: {}", message.into()) }
    }
    pub fn unsupported(feature: &str) -> Self {
        Self { status: StatusCode::NOT_IMPLEMENTED, message: format!("Not supported by NearDB: {feature}") }
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: format!("Service internal error: {}", message.into()),
        }
    }
}

impl From<CollectionError> for ApiError {
    fn from(e: CollectionError) -> Self {
        match e {
            CollectionError::Io { .. }
            | CollectionError::Corrupt { .. }
            | CollectionError::Poisoned
            | CollectionError::File(_) => Self::internal(e.to_string()),
            CollectionError::UnknownId(_) | CollectionError::UnknownVersion(_) => {
                Self::not_found(e.to_string())
            }
            _ => Self::bad(e.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"status": {"error": self.message}, "time": 0.0});
        (self.status, axum::Json(body)).into_response()
    }
}

/// A successful Qdrant response: `{"result": …, "status": "ok", "time": seconds}`.
pub(crate) fn ok(result: Value, started: Instant) -> Response {
    axum::Json(json!({"result": result, "status": "ok", "time": started.elapsed().as_secs_f64()}))
        .into_response()
}

/// [`ok`] for a result serialized straight from its type (the search routes: no `Value` tree
/// per point).
pub(crate) fn ok_typed<T: serde::Serialize>(result: &T, started: Instant) -> Response {
    #[derive(serde::Serialize)]
    struct Answer<'a, T> {
        result: &'a T,
        status: &'static str,
        time: f64,
    }
    axum::Json(Answer { result, status: "ok", time: started.elapsed().as_secs_f64() }).into_response()
}

/// A JSON body, or a Qdrant-style 400 naming what is wrong with it.
pub(crate) fn parse_body(bytes: &Bytes) -> Result<Value, ApiError> {
    if bytes.is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    serde_json::from_slice(bytes).map_err(|e| ApiError::bad(format!("Format error in JSON body: {e}")))
}

/// Runs `work` on the blocking pool within the request timeout.
pub(crate) async fn blocking<T: Send + 'static>(
    state: &AppState,
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::time::timeout(state.config.timeout, tokio::task::spawn_blocking(work)).await {
        Ok(Ok(result)) => result,
        Ok(Err(e)) => Err(ApiError::internal(format!("a worker failed: {e}"))),
        Err(_) => Err(ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: format!("Timeout: the request took longer than {} s", state.config.timeout.as_secs()),
        }),
    }
}

/// Valid collection names: 1 to 255 of letters, digits, `-`, `_`, `.` (not only dots).
fn check_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.chars().all(|c| c == '.');
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad(format!("collection name {name:?}: use 1 to 255 letters, digits, '-', '_' or '.'")))
    }
}

/// Opens every collection under `data`.
fn open_all(dir: &Path) -> Result<HashMap<String, Arc<Served>>, ServeError> {
    std::fs::create_dir_all(dir).map_err(|e| ServeError::Data(format!("{}: {e}", dir.display())))?;
    let mut out = HashMap::new();
    let entries = std::fs::read_dir(dir).map_err(|e| ServeError::Data(format!("{}: {e}", dir.display())))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if check_name(&name).is_err() || !entry.path().join("MANIFEST").exists() {
            continue;
        }
        let collection = Collection::open(entry.path())
            .map_err(|e| ServeError::Data(format!("collection {name}: {e}")))?;
        out.insert(
            name,
            Arc::new(Served {
                collection,
                operations: AtomicU64::new(0),
                committing: AtomicBool::new(false),
            }),
        );
    }
    Ok(out)
}

/// Whether a request only reads (a read-only key may make it).
fn reads_only(method: &Method, path: &str) -> bool {
    if method == Method::GET || method == Method::HEAD {
        return true;
    }
    method == Method::POST
        && (path.ends_with("/points/search")
            || path.ends_with("/points/search/batch")
            || path.ends_with("/points/query")
            || path.ends_with("/points/query/batch")
            || path.ends_with("/points/scroll")
            || path.ends_with("/points/count")
            || path.ends_with("/points")
            || path.contains("/versions/") && path.ends_with("/search")
            || path.ends_with("/duplicates"))
}

async fn authorize(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let open = matches!(path.as_str(), "/healthz" | "/readyz" | "/livez");
    if state.config.api_key.is_none() && state.config.read_only_key.is_none() || open {
        return next.run(request).await;
    }
    let given = key_of(request.headers());
    let full = state.config.api_key.as_deref();
    let read = state.config.read_only_key.as_deref();
    match given {
        None => ApiError {
            status: StatusCode::UNAUTHORIZED,
            message: "Must provide an API key or an Authorization bearer token".into(),
        }
        .into_response(),
        Some(k) if Some(k.as_str()) == full => next.run(request).await,
        Some(k) if Some(k.as_str()) == read => {
            if reads_only(request.method(), &path) {
                next.run(request).await
            } else {
                ApiError {
                    status: StatusCode::FORBIDDEN,
                    message: "Forbidden: this API key may only read".into(),
                }
                .into_response()
            }
        }
        Some(_) => ApiError { status: StatusCode::FORBIDDEN, message: "Invalid API key or JWT".into() }
            .into_response(),
    }
}

fn key_of(headers: &HeaderMap) -> Option<String> {
    if let Some(k) = headers.get("api-key").and_then(|v| v.to_str().ok()) {
        return Some(k.to_owned());
    }
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned)
}

async fn observe(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let route = metrics::route_of(request.method(), request.uri().path());
    let started = Instant::now();
    let response = next.run(request).await;
    state.metrics.record(&route, response.status().as_u16(), started.elapsed());
    response
}

/// The router over `state` (what `serve` listens with; tests drive it directly too).
pub(crate) fn router(state: Arc<AppState>) -> Router {
    let limit = state.config.max_body_bytes;
    Router::new()
        .route(
            "/",
            get(|| async { axum::Json(json!({"title": "neardb", "version": env!("CARGO_PKG_VERSION")})) }),
        )
        .route("/healthz", get(|| async { "healthz check passed" }))
        .route("/livez", get(|| async { "healthz check passed" }))
        .route("/readyz", get(|| async { "all shards are ready" }))
        .route("/metrics", get(metrics::handler))
        .route("/collections", get(qdrant::list_collections))
        .route(
            "/collections/{name}",
            get(qdrant::get_collection).put(qdrant::create_collection).delete(qdrant::delete_collection),
        )
        .route("/collections/{name}/exists", get(qdrant::collection_exists))
        .route("/collections/{name}/points", post(qdrant::retrieve).put(qdrant::upsert))
        .route("/collections/{name}/points/{id}", get(qdrant::get_point))
        .route("/collections/{name}/points/delete", post(qdrant::delete_points))
        .route("/collections/{name}/points/payload", post(qdrant::set_payload).put(qdrant::overwrite_payload))
        .route("/collections/{name}/points/search", post(qdrant::search))
        .route("/collections/{name}/points/search/batch", post(qdrant::search_batch))
        .route("/collections/{name}/points/query", post(qdrant::query))
        .route("/collections/{name}/points/query/batch", post(qdrant::query_batch))
        .route("/collections/{name}/points/scroll", post(qdrant::scroll))
        .route("/collections/{name}/points/count", post(qdrant::count))
        .route("/collections/{name}/index", axum::routing::put(qdrant::create_field_index))
        .route("/neardb/collections/{name}/commit", post(qdrant::commit))
        .route("/neardb/collections/{name}/versions", get(qdrant::versions))
        .route("/neardb/collections/{name}/versions/{version}/search", post(qdrant::search_version))
        .route("/neardb/collections/{name}/duplicates", post(qdrant::duplicates))
        .route("/neardb/collections/{name}/points/{id}/neighbours", get(qdrant::neighbours))
        .fallback(|method: Method, uri: axum::http::Uri| async move {
            ApiError::not_found(format!("no endpoint {method} {}", uri.path())).into_response()
        })
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(state.clone(), authorize))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// Commits `served` on the blocking pool when enough records are uncommitted and no commit
/// is running.
pub(crate) fn maybe_commit(state: &AppState, served: &Arc<Served>) {
    if served.collection.uncommitted_rows() < state.config.commit_rows
        || served.committing.swap(true, Ordering::AcqRel)
    {
        return;
    }
    let served = served.clone();
    let (keep, compact_at) = (state.config.keep_versions, state.config.compact_deleted);
    tokio::task::spawn_blocking(move || {
        let c = &served.collection;
        // Commit; compact once replaced and deleted rows pass the threshold (as Qdrant's
        // optimizer does); then release old unnamed versions, so their files and mapped
        // pages go.
        let _ = c.commit(None);
        if c.deleted_fraction() > compact_at {
            let _ = c.compact(None);
        }
        let _ = c.retain(keep, true);
        served.committing.store(false, Ordering::Release);
    });
}

/// Serves until `shutdown` resolves, then flushes every collection's log.
pub async fn serve(
    config: ServeConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let addr = config.addr;
    let state = AppState::open(config)?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, router(state.clone())).with_graceful_shutdown(shutdown).await?;
    state.flush_all();
    Ok(())
}

/// Resolves at Ctrl-C or SIGTERM.
async fn stop_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(t) => t,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// A listener on `addr` that other listeners of the same address share (`SO_REUSEPORT`: the
/// kernel spreads new connections over them).
#[cfg(unix)]
fn shared_listener(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket =
        if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Serves until Ctrl-C or SIGTERM, then flushes every collection's log; prints the address.
///
/// One single-threaded runtime per core, each accepting on its own `SO_REUSEPORT` listener of
/// the address: a connection's requests are read, searched (the quick ones inline) and
/// answered on one thread, with no task moved or woken across threads — the multi-threaded
/// runtime spent about a tenth of a search request's CPU in cross-thread wake-ups. Long work
/// still goes to each runtime's blocking pool.
pub fn serve_blocking(config: ServeConfig) -> Result<(), ServeError> {
    #[cfg(not(unix))]
    {
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
        return runtime.block_on(async move {
            eprintln!("neardb serve: {} on http://{}", config.data.display(), config.addr);
            serve(config, stop_signal()).await
        });
    }
    #[cfg(unix)]
    {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let (data, addr) = (config.data.clone(), config.addr);
        let state = AppState::open(config)?;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        // Resolves once the stop flag is raised (or its sender is gone).
        let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|&s| s).await;
        };
        let runtime = || tokio::runtime::Builder::new_current_thread().enable_all().build();
        let main = runtime()?;
        // The first listener fixes the port (port 0 picks one); the others join it, each
        // registered with its own thread's runtime.
        let first = {
            let _context = main.enter();
            shared_listener(addr)?
        };
        let bound = first.local_addr()?;
        let mut workers = Vec::new();
        for _ in 1..threads {
            let (state, shutdown) = (state.clone(), stopped(stop_rx.clone()));
            workers.push(std::thread::spawn(move || -> std::io::Result<()> {
                runtime()?.block_on(async move {
                    let listener = shared_listener(bound)?;
                    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await
                })
            }));
        }
        eprintln!("neardb serve: {} on http://{bound} ({threads} threads)", data.display());
        let served = main.block_on(async {
            let serving = axum::serve(first, router(state.clone())).with_graceful_shutdown(stopped(stop_rx));
            let mut serving = std::pin::pin!(std::future::IntoFuture::into_future(serving));
            tokio::select! {
                r = &mut serving => r,
                () = stop_signal() => {
                    let _ = stop_tx.send(true);
                    serving.await
                }
            }
        });
        // However the first thread ended, the others stop too.
        let _ = stop_tx.send(true);
        let mut result = served.map_err(ServeError::from);
        for w in workers {
            match w.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => result = result.and(Err(e.into())),
                Err(_) => result = result.and(Err(ServeError::Data("a server thread panicked".into()))),
            }
        }
        state.flush_all();
        result
    }
}

/// Creates a collection directory for `config` (used by the create endpoint).
pub(crate) fn create_collection_dir(
    state: &AppState,
    name: &str,
    config: CollectionConfig,
) -> Result<(), ApiError> {
    check_name(name)?;
    let mut map = state.collections.write().unwrap_or_else(|e| e.into_inner());
    if map.contains_key(name) {
        return Err(ApiError::bad(format!("Collection `{name}` already exists!")));
    }
    let collection = Collection::create(state.dir().join(name), config)?;
    map.insert(
        name.to_owned(),
        Arc::new(Served { collection, operations: AtomicU64::new(0), committing: AtomicBool::new(false) }),
    );
    Ok(())
}

/// Removes a collection and its directory; whether it existed.
pub(crate) fn delete_collection_dir(state: &AppState, name: &str) -> Result<bool, ApiError> {
    check_name(name)?;
    let removed = state.collections.write().unwrap_or_else(|e| e.into_inner()).remove(name);
    let Some(served) = removed else { return Ok(false) };
    drop(served);
    std::fs::remove_dir_all(state.dir().join(name)).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(true)
}

/// `?wait=…` and similar query flags (accepted; writes are always complete when answered).
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct WriteQuery {
    #[allow(dead_code)]
    pub wait: Option<bool>,
}

pub(crate) type Name = UrlPath<String>;
pub(crate) type Wait = Query<WriteQuery>;
