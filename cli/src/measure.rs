//! Timing passes over a query set, recall against ground truth, and process CPU time: shared
//! by `neardb bench` and `neardb peer search` so both report the same way.

use std::time::Instant;

use neardb::{AnyIndex, Filter, Neighbor, Plan, SearchParams, SearchStats, VectorSearch};

/// The outcome of timing repeated passes over all queries.
pub struct Passes {
    /// Wall seconds of each pass.
    pub wall: Vec<f64>,
    /// Process CPU seconds of each pass.
    pub cpu: Vec<f64>,
    /// Per-query latencies of the fastest pass, in microseconds, sorted (single mode only).
    pub latencies_us: Vec<f64>,
    /// Result ids of the last pass, `nq × k`, -1 where fewer than k were found.
    pub ids: Vec<i32>,
}

impl Passes {
    /// Queries per second of the fastest pass.
    pub fn qps(&self, nq: usize) -> f64 {
        nq as f64 / self.wall.iter().cloned().fold(f64::INFINITY, f64::min)
    }
    /// Latency percentile `p` (0..=100) of the fastest pass.
    pub fn percentile_us(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let i = ((p / 100.0) * (self.latencies_us.len() - 1) as f64).round() as usize;
        self.latencies_us[i.min(self.latencies_us.len() - 1)]
    }
    /// Mean latency of the fastest pass.
    pub fn mean_us(&self) -> f64 {
        self.latencies_us.iter().sum::<f64>() / self.latencies_us.len().max(1) as f64
    }
}

/// Process CPU time (all threads), in seconds.
pub fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes the struct we pass, which is a valid, owned value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a valid out-pointer is always a defined call.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return f64::NAN;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn store(ids: &mut [i32], row: usize, k: usize, hits: &[Neighbor]) {
    let slot = &mut ids[row * k..(row + 1) * k];
    slot.fill(-1);
    for (s, h) in slot.iter_mut().zip(hits) {
        *s = h.id as i32;
    }
}

fn keep_going(wall: &[f64], min_time: f64, max_repeat: usize) -> bool {
    wall.iter().sum::<f64>() < min_time && wall.len() < max_repeat.max(1)
}

/// The columns of a result file: k, but never more than the index holds, so a huge k
/// (300,000,000) sizes no buffer by itself. 0 stays 0, for the search to refuse.
pub fn result_width(index: &AnyIndex, k: usize) -> usize {
    k.min(index.len().max(1))
}

/// One query at a time on this thread, `k` results each; repeated passes until `min_time`
/// seconds in total or `max_repeat` passes.
pub fn time_single(
    index: &AnyIndex,
    queries: &[f32],
    k: usize,
    params: &SearchParams,
    filter: Option<&dyn Filter>,
    timing: (f64, usize),
) -> neardb::Result<Passes> {
    let (min_time, max_repeat) = timing;
    let mut passes = time_single_by(index.dim(), queries, k, min_time, max_repeat, |q, out| {
        index.search_into(q, k, params, filter, out)
    })?;
    to_external(index, &mut passes.ids);
    Ok(passes)
}

/// [`time_single`] over any search: `search(query, out)` fills `out` with at most `k` hits.
pub fn time_single_by<E>(
    dim: usize,
    queries: &[f32],
    k: usize,
    min_time: f64,
    max_repeat: usize,
    mut search: impl FnMut(&[f32], &mut Vec<Neighbor>) -> Result<(), E>,
) -> Result<Passes, E> {
    let nq = queries.len() / dim;
    let mut out = Vec::with_capacity(k);
    let mut ids = vec![-1i32; nq * k];
    // Warm-up: page in the index and validate every query once, untimed.
    for (i, q) in queries.chunks_exact(dim).enumerate() {
        search(q, &mut out)?;
        store(&mut ids, i, k, &out);
    }
    let mut passes = Passes { wall: vec![], cpu: vec![], latencies_us: vec![], ids };
    let mut lat = vec![0.0f64; nq];
    loop {
        let c0 = cpu_seconds();
        let t0 = Instant::now();
        for (i, q) in queries.chunks_exact(dim).enumerate() {
            let s = Instant::now();
            search(q, &mut out)?;
            lat[i] = s.elapsed().as_secs_f64() * 1e6;
            store(&mut passes.ids, i, k, &out);
        }
        let wall = t0.elapsed().as_secs_f64();
        passes.cpu.push(cpu_seconds() - c0);
        if passes.wall.iter().all(|&w| wall < w) {
            passes.latencies_us.clone_from(&lat);
        }
        passes.wall.push(wall);
        if !keep_going(&passes.wall, min_time, max_repeat) {
            break;
        }
    }
    passes.latencies_us.sort_by(f64::total_cmp);
    Ok(passes)
}

/// Result slots as the caller's ids, where the file has an `ids` section (e.g. a reordered
/// HNSW file, whose ids are the rows of the base file); done after timing.
fn to_external(index: &AnyIndex, ids: &mut [i32]) {
    if index.external_ids().is_some() {
        for id in ids.iter_mut().filter(|id| **id >= 0) {
            *id = index.external_id(*id as u32) as i32;
        }
    }
}

/// All queries in one batch call on the current rayon pool; repeated like [`time_single`].
pub fn time_batch(
    index: &AnyIndex,
    queries: &[f32],
    k: usize,
    params: &SearchParams,
    filter: Option<&dyn Filter>,
    timing: (f64, usize),
) -> neardb::Result<Passes> {
    let (min_time, max_repeat) = timing;
    let nq = queries.len() / index.dim();
    let mut passes =
        time_batch_by(nq, k, min_time, max_repeat, || index.search_batch(queries, k, params, filter))?;
    to_external(index, &mut passes.ids);
    Ok(passes)
}

/// [`time_batch`] over any batch search of `nq` queries.
pub fn time_batch_by<E>(
    nq: usize,
    k: usize,
    min_time: f64,
    max_repeat: usize,
    mut batch: impl FnMut() -> Result<Vec<Vec<Neighbor>>, E>,
) -> Result<Passes, E> {
    // A full untimed pass, as in single mode: a fresh process starts with cold caches.
    batch()?;
    let mut passes = Passes { wall: vec![], cpu: vec![], latencies_us: vec![], ids: vec![-1; nq * k] };
    loop {
        let c0 = cpu_seconds();
        let t0 = Instant::now();
        let res = batch()?;
        passes.wall.push(t0.elapsed().as_secs_f64());
        passes.cpu.push(cpu_seconds() - c0);
        for (i, hits) in res.iter().enumerate() {
            store(&mut passes.ids, i, k, hits);
        }
        if !keep_going(&passes.wall, min_time, max_repeat) {
            break;
        }
    }
    Ok(passes)
}

/// What the searches of one sweep point did, over one untimed pass: the plan most queries
/// took and the mean work per query.
#[derive(Clone, Copy, Debug, Default)]
pub struct WorkSummary {
    pub plan: Option<Plan>,
    pub scans: usize,
    pub mean_expanded: f64,
    pub mean_distances: f64,
}

impl WorkSummary {
    /// Summarises per-query statistics.
    pub fn of(stats: &[SearchStats]) -> Self {
        let n = stats.len().max(1) as f64;
        let plans = [Plan::Walk, Plan::FilteredWalk, Plan::TwoHopWalk, Plan::Scan, Plan::WalkThenScan];
        let plan = plans.into_iter().max_by_key(|p| stats.iter().filter(|s| s.plan == *p).count());
        Self {
            plan: plan.filter(|_| !stats.is_empty()),
            scans: stats.iter().filter(|s| matches!(s.plan, Plan::Scan | Plan::WalkThenScan)).count(),
            mean_expanded: stats.iter().map(|s| s.expanded as f64).sum::<f64>() / n,
            mean_distances: stats.iter().map(|s| s.distances as f64).sum::<f64>() / n,
        }
    }
}

/// One untimed pass collecting every query's [`SearchStats`].
pub fn work_pass(
    index: &AnyIndex,
    queries: &[f32],
    k: usize,
    params: &SearchParams,
    filter: Option<&dyn Filter>,
) -> neardb::Result<WorkSummary> {
    let mut out = Vec::with_capacity(k.min(index.len()));
    let mut stats = Vec::with_capacity(queries.len() / index.dim().max(1));
    for q in queries.chunks_exact(index.dim()) {
        stats.push(index.search_with_stats(q, k, params, filter, &mut out)?);
    }
    Ok(WorkSummary::of(&stats))
}

/// Mean recall@k of `ids` (`nq × k`) against the first `k` columns of `truth` (`nq × truth_dim`).
pub fn recall(ids: &[i32], k: usize, truth: &[i32], truth_dim: usize) -> f64 {
    let nq = ids.len() / k;
    let kk = k.min(truth_dim);
    let mut hits = 0usize;
    for q in 0..nq {
        let gt = &truth[q * truth_dim..q * truth_dim + kk];
        hits += ids[q * k..(q + 1) * k].iter().filter(|&&id| id >= 0 && gt.contains(&id)).count();
    }
    hits as f64 / (nq * kk).max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recall_counts_overlap_with_the_first_k_truth_columns() {
        let truth = [1, 2, 3, 9, 4, 5, 6, 9];
        assert_eq!(recall(&[1, 2, 3, 4, 5, 6], 3, &truth, 4), 1.0);
        assert_eq!(recall(&[3, 2, 9, 6, -1, -1], 3, &truth, 4), 0.5);
    }
}
