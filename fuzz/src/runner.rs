//! The fuzzing loop: turns an execution seed into an input (target, seed file, mutant), runs
//! the oracle on it under `catch_unwind` and the memory counter, keeps the statistics, writes
//! findings, and runs the watchdog that reports hangs and oversized allocations.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::disk::{self, DiskCorpus};
use crate::layout::{self, Layout};
use crate::memory;
use crate::mutate::{self, Checksums};
use crate::oracle::{self, Violation};
use crate::panics;
use crate::rng::Rng;
use crate::seeds::Seed;
use crate::vectors::{self, VecCorpus};

/// Which readers to fuzz.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// All three, chosen per execution (about one in five reads vector files, one in five
    /// SSD index files).
    All,
    /// Index files.
    Index,
    /// Vector files.
    Vectors,
    /// SSD index files.
    Disk,
}

impl Target {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Index => "index",
            Self::Vectors => "vectors",
            Self::Disk => "disk",
        }
    }

    /// The target a name designates.
    pub fn from_name(s: &str) -> Option<Self> {
        [Self::All, Self::Index, Self::Vectors, Self::Disk].into_iter().find(|t| t.name() == s)
    }

    /// The target execution `seed` runs: fixed unless this is `All`.
    pub fn resolve(self, seed: u64) -> Self {
        match self {
            Self::All => match Rng::derive(seed, 1).below(5) {
                0 => Self::Vectors,
                1 => Self::Disk,
                _ => Self::Index,
            },
            t => t,
        }
    }
}

/// What a run does.
#[derive(Clone, Debug)]
pub struct Config {
    /// Stop after this long.
    pub seconds: f64,
    /// Stop after this many executions, if set.
    pub iterations: Option<u64>,
    /// Execution `i` runs with seed `seed + i`.
    pub seed: u64,
    /// Which readers.
    pub target: Target,
    /// Where each finding's input and a log line go, if anywhere.
    pub findings_dir: Option<PathBuf>,
    /// An execution whose memory peak exceeds this is a finding.
    pub max_exec_bytes: usize,
    /// Print a progress line every ~10 s.
    pub progress: bool,
    /// Run the watchdog (hangs over 10 s and oversized allocations end the process).
    pub watchdog: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            seconds: 60.0,
            iterations: None,
            seed: 0,
            target: Target::All,
            findings_dir: None,
            max_exec_bytes: 512 << 20,
            progress: false,
            watchdog: false,
        }
    }
}

/// Every seed of both targets.
#[derive(Debug)]
pub struct Corpus {
    /// Index files.
    pub index: Vec<Seed>,
    /// Vector files and the directory their mutants are written to.
    pub vectors: VecCorpus,
    /// SSD index files and the directory their mutants are written to.
    pub disk: DiskCorpus,
}

impl Corpus {
    /// Builds the index seeds in memory and writes the vector seeds into `dir`.
    pub fn build(dir: &Path) -> Result<Self, String> {
        Ok(Self {
            index: crate::seeds::index_seeds()?,
            vectors: VecCorpus::create(dir)?,
            disk: DiskCorpus::create(dir)?,
        })
    }
}

/// An execution's input, a pure function of the corpus and the execution seed.
#[derive(Clone, Debug)]
pub struct Input {
    /// `index` or `vectors`.
    pub target: Target,
    /// The statistics bucket: the seed's index kind, or `vectors/<ext>`.
    pub label: String,
    /// The seed file's name.
    pub seed_name: String,
    /// The mutated bytes.
    pub bytes: Vec<u8>,
    /// Extension to save the input with.
    pub ext: &'static str,
    /// The mutations made.
    pub ops: Vec<String>,
    /// Index inputs: which checksums are valid.
    pub checksums: Checksums,
    /// Which seed, in its target's list.
    pub seed_index: usize,
}

/// The input of execution `seed` under `target` (already resolved or not).
pub fn prepare(corpus: &Corpus, target: Target, seed: u64) -> Input {
    let target = target.resolve(seed);
    let mut rng = Rng::derive(seed, 2);
    if target == Target::Vectors {
        let i = rng.below(corpus.vectors.seeds.len());
        let s = &corpus.vectors.seeds[i];
        let m = vectors::mutate(s, &mut rng);
        return Input {
            target,
            label: format!("vectors/{}", s.ext),
            seed_name: s.name.clone(),
            bytes: m.bytes,
            ext: m.ext,
            ops: m.ops,
            checksums: Checksums::Stale,
            seed_index: i,
        };
    }
    if target == Target::Disk {
        let i = rng.below(corpus.disk.seeds.len());
        let s = &corpus.disk.seeds[i];
        let m = disk::mutate(s, &mut rng);
        return Input {
            target,
            label: s.name.clone(),
            seed_name: s.name.clone(),
            bytes: m.bytes,
            ext: "disk",
            ops: m.ops,
            checksums: Checksums::Stale,
            seed_index: i,
        };
    }
    let i = rng.below(corpus.index.len());
    let s = &corpus.index[i];
    let m = mutate::mutate(&s.bytes, &mut rng);
    Input {
        target,
        label: s.kind.name().to_string(),
        seed_name: s.name.clone(),
        bytes: m.bytes,
        ext: "neardb",
        ops: m.ops,
        checksums: m.checksums,
        seed_index: i,
    }
}

/// What one execution did.
#[derive(Debug)]
pub struct Execution {
    /// Its seed.
    pub seed: u64,
    /// Its input.
    pub input: Input,
    /// Whether the file was accepted.
    pub opened: bool,
    /// The index kind it opened as, which findings are grouped by: a mutated header may send
    /// one kind's file to another kind's reader.
    pub opened_as: Option<&'static str>,
    /// The refusal, if refused.
    pub refusal: Option<String>,
    /// Broken rules.
    pub violations: Vec<Violation>,
    /// Peak bytes allocated during the execution.
    pub peak: usize,
    /// The largest k searched for (0 if nothing was searched).
    pub max_k: usize,
}

/// Runs execution `seed`.
pub fn execute(corpus: &Corpus, target: Target, seed: u64, max_exec_bytes: usize) -> Execution {
    let input = prepare(corpus, target, seed);
    let mut oracle_rng = Rng::derive(seed, 3);
    memory::begin();
    let (mut max_k, mut opened_as) = (0, None);
    let (refusal, mut violations) = match input.target {
        Target::Vectors => {
            let path = corpus.vectors.dir.join(format!("mutant.{}", input.ext));
            if let Err(e) = overwrite(&path, &input.bytes) {
                let v = Violation { cause: "harness-io".into(), detail: format!("{}: {e}", path.display()) };
                (None, vec![v])
            } else {
                match panics::catch(|| vectors::exercise(&path)) {
                    Ok(out) => (out.refused, out.violations),
                    Err(msg) => (None, vec![panic_violation(msg)]),
                }
            }
        }
        Target::Disk => {
            let path = corpus.disk.mutant_path();
            if let Err(e) = overwrite(&path, &input.bytes) {
                let v = Violation { cause: "harness-io".into(), detail: format!("{}: {e}", path.display()) };
                (None, vec![v])
            } else {
                let s = &corpus.disk.seeds[input.seed_index];
                match panics::catch(|| disk::exercise(&path, &s.vectors, s.dim, &mut oracle_rng)) {
                    Ok(out) => {
                        max_k = out.max_k;
                        opened_as = out.refused.is_none().then_some("disk");
                        (out.refused, out.violations)
                    }
                    Err(msg) => (None, vec![panic_violation(msg)]),
                }
            }
        }
        _ => {
            let rows = &corpus.index[input.seed_index].vectors;
            match panics::catch(|| oracle::exercise(&input.bytes, rows, &mut oracle_rng)) {
                Ok(out) => {
                    max_k = out.max_k;
                    opened_as = out.kind.map(|k| k.name());
                    (out.refused, out.violations)
                }
                Err(msg) => (None, vec![panic_violation(msg)]),
            }
        }
    };
    let peak = memory::peak();
    let opened = refusal.is_none();
    if input.target == Target::Index && opened && input.checksums != Checksums::Fixed {
        let seed_bytes = &corpus.index[input.seed_index].bytes;
        if let Some(v) = undetected_corruption(seed_bytes, &input.bytes) {
            violations.push(v);
        }
    }
    // At most `len` results can come back, so buffers sized by k instead of by the index show
    // up as memory far beyond the file's own size when k is huge.
    let k_bound = input.bytes.len().saturating_mul(8).max(4 << 20);
    if max_k >= oracle::HUGE_K && peak > k_bound {
        violations.push(Violation {
            cause: "memory-scales-with-k".into(),
            detail: format!("peak {} with k = {max_k} for a {}-byte file", mib(peak), input.bytes.len()),
        });
    }
    if peak > max_exec_bytes {
        violations.push(Violation {
            cause: "memory-over-budget".into(),
            detail: format!("peak {} for a {}-byte file", mib(peak), input.bytes.len()),
        });
    }
    Execution { seed, input, opened, opened_as, refusal, violations, peak, max_k }
}

/// Rewrites the reused mutant file in place. Not `fs::write`: truncating a file to zero and
/// refilling it makes ext4 flush it to disk on close (`auto_da_alloc`), which cut the vector
/// target from tens of thousands of executions a second to a few hundred.
fn overwrite(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(false).open(path)?;
    f.write_all(bytes)?;
    f.set_len(bytes.len() as u64)
}

fn panic_violation(msg: String) -> Violation {
    Violation { cause: format!("panic at {}", panics::place(&msg)), detail: msg }
}

/// A file that differs from its valid seed while no checksum was recomputed must be refused;
/// if it opened, the changed bytes were covered by no checksum.
fn undetected_corruption(seed: &[u8], mutant: &[u8]) -> Option<Violation> {
    if seed == mutant {
        return None;
    }
    let l = Layout::read(mutant);
    let changed: Vec<usize> =
        (0..seed.len().max(mutant.len())).filter(|&i| seed.get(i) != mutant.get(i)).collect();
    let uncovered = changed.iter().filter(|&&i| !layout::is_covered(&l, l.entries.len(), i)).count();
    Some(Violation {
        cause: "undetected-corruption".into(),
        detail: format!(
            "{} changed bytes (first at {}), {uncovered} outside the header, table and sections, \
             and the file opens with its old checksums",
            changed.len(),
            changed[0]
        ),
    })
}

fn mib(bytes: usize) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

/// Counts of one statistics bucket.
#[derive(Clone, Debug, Default)]
pub struct KindStats {
    /// Files accepted.
    pub opened: u64,
    /// Files refused.
    pub refused: u64,
    /// Largest peak: bytes, execution seed, input length.
    pub worst_peak: (usize, u64, usize),
    /// Largest peak per input byte of a file that opened: ratio, execution seed, peak, input
    /// length.
    pub worst_ratio: (f64, u64, usize, usize),
    /// Largest peak of the executions that searched with k = [`oracle::HUGE_K`] (kept apart
    /// from the two above, which then measure what the file costs): bytes, execution seed.
    pub huge_k_peak: (usize, u64),
}

/// Findings of one cause.
#[derive(Clone, Debug)]
pub struct Group {
    /// How many.
    pub count: u64,
    /// The first execution seed that showed it.
    pub seed: u64,
    /// Its target.
    pub target: Target,
    /// The first one's details.
    pub example: String,
}

/// The result of a run.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Executions run.
    pub executions: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// Findings (one per broken rule per execution).
    pub findings: u64,
    /// Per index kind / vector format.
    pub kinds: BTreeMap<String, KindStats>,
    /// Findings by `label: cause`.
    pub groups: BTreeMap<String, Group>,
}

impl Report {
    fn record(&mut self, ex: &Execution) {
        self.executions += 1;
        let k = self.kinds.entry(ex.input.label.clone()).or_default();
        if ex.opened {
            k.opened += 1;
        } else {
            k.refused += 1;
        }
        let len = ex.input.bytes.len();
        if ex.max_k >= oracle::HUGE_K {
            if ex.peak > k.huge_k_peak.0 {
                k.huge_k_peak = (ex.peak, ex.seed);
            }
        } else {
            if ex.peak > k.worst_peak.0 {
                k.worst_peak = (ex.peak, ex.seed, len);
            }
            // Over opened files only: a refused file of a few bytes still costs an error
            // message, and the ratio of that says nothing.
            let ratio = ex.peak as f64 / len.max(1) as f64;
            if ex.opened && ratio > k.worst_ratio.0 {
                k.worst_ratio = (ratio, ex.seed, ex.peak, len);
            }
        }
        for v in &ex.violations {
            self.findings += 1;
            let g = self.groups.entry(ex.group_key(&v.cause)).or_insert_with(|| Group {
                count: 0,
                seed: ex.seed,
                target: ex.input.target,
                example: format!("{} ({}): {}", ex.input.seed_name, ex.input.ops.join("; "), v.detail),
            });
            g.count += 1;
        }
    }

    /// The summary: the required first line, then per-kind counts and memory, then findings
    /// grouped by cause with a command that replays each.
    pub fn summary(&self) -> String {
        let secs = self.elapsed.as_secs_f64();
        let rate = self.executions as f64 / secs.max(1e-9);
        let mut s = format!(
            "fuzz: {} executions in {secs:.1} s ({rate:.0}/s), {} findings\n",
            self.executions, self.findings
        );
        for (label, k) in &self.kinds {
            let (peak, peak_seed, peak_len) = k.worst_peak;
            let (ratio, ratio_seed, ratio_peak, ratio_len) = k.worst_ratio;
            let _ = write!(s, "  {label}: {} opened, {} refused", k.opened, k.refused);
            if peak > 0 {
                let _ = write!(s, "; worst peak {} (seed {peak_seed}, {peak_len}-byte file)", mib(peak));
            }
            if ratio > 0.0 {
                let _ = write!(
                    s,
                    "; worst peak/file {ratio:.0}x (seed {ratio_seed}, {} for {ratio_len} bytes)",
                    mib(ratio_peak)
                );
            }
            if k.huge_k_peak.0 > 0 {
                let _ = write!(
                    s,
                    "; with k = {}: {} (seed {})",
                    oracle::HUGE_K,
                    mib(k.huge_k_peak.0),
                    k.huge_k_peak.1
                );
            }
            s.push('\n');
        }
        for (key, g) in &self.groups {
            let _ = writeln!(
                s,
                "  finding {key}: {}x; replay: neardb-fuzz --target {} --seed {} --iterations 1\n    e.g. {}",
                g.count,
                g.target.name(),
                g.seed,
                g.example
            );
        }
        s
    }
}

impl Execution {
    fn group_key(&self, cause: &str) -> String {
        format!("{}: {cause}", self.opened_as.unwrap_or(&self.input.label))
    }
}

/// Writes a finding's input and log line, at most `PER_GROUP` per cause.
struct Findings {
    dir: Option<PathBuf>,
    written: BTreeMap<String, usize>,
}

const PER_GROUP: usize = 20;

impl Findings {
    fn new(dir: Option<PathBuf>) -> std::io::Result<Self> {
        if let Some(d) = &dir {
            std::fs::create_dir_all(d)?;
        }
        Ok(Self { dir, written: BTreeMap::new() })
    }

    fn write(&mut self, ex: &Execution) {
        let Some(dir) = &self.dir else { return };
        for v in &ex.violations {
            let n = self.written.entry(ex.group_key(&v.cause)).or_default();
            if *n >= PER_GROUP {
                continue;
            }
            *n += 1;
            write_finding(dir, &ex.input, ex.seed, &v.cause, &v.detail);
        }
    }
}

fn write_finding(dir: &Path, input: &Input, seed: u64, cause: &str, detail: &str) {
    let name = format!("{}-{}-{seed}.{}", input.target.name(), input.label.replace('/', "-"), input.ext);
    let _ = std::fs::write(dir.join(&name), &input.bytes);
    let line = format!(
        "target={} seed={seed} kind={} seed-file={} input={name} cause={cause}: {detail} | ops: {}\n",
        input.target.name(),
        input.label,
        input.seed_name,
        input.ops.join("; ")
    );
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("findings.txt")) {
        let _ = f.write_all(line.as_bytes());
    }
}

/// Longest an execution may run before the watchdog calls it a hang.
pub const HANG_LIMIT: Duration = Duration::from_secs(10);

static EPOCH: OnceLock<Instant> = OnceLock::new();
/// Milliseconds since `EPOCH` at which the running execution started; 0 between executions.
static STARTED_MS: AtomicU64 = AtomicU64::new(0);
static CURRENT_SEED: AtomicU64 = AtomicU64::new(0);
static CURRENT_TARGET: AtomicU8 = AtomicU8::new(0);
static STOP: AtomicBool = AtomicBool::new(false);

fn now_ms() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}

fn spawn_watchdog(corpus: Arc<Corpus>, dir: Option<PathBuf>) -> std::thread::JoinHandle<()> {
    STOP.store(false, Relaxed);
    std::thread::spawn(move || {
        while !STOP.load(Relaxed) {
            std::thread::sleep(Duration::from_millis(100));
            let started = STARTED_MS.load(Relaxed);
            let oversize = memory::oversize_request();
            let hung = started != 0 && now_ms().saturating_sub(started) > HANG_LIMIT.as_millis() as u64;
            if !hung && oversize.is_none() {
                continue;
            }
            let seed = CURRENT_SEED.load(Relaxed);
            let target =
                [Target::Index, Target::Vectors, Target::Disk][CURRENT_TARGET.load(Relaxed) as usize];
            let (cause, detail) = match oversize {
                Some(n) => ("memory-oversize-allocation", format!("one allocation of {n} bytes")),
                None => ("hang", format!("an execution ran for more than {} s", HANG_LIMIT.as_secs())),
            };
            let input = prepare(&corpus, target, seed);
            println!(
                "fuzz: finding {}: {cause}: {detail}; replay: neardb-fuzz --target {} --seed {seed} --iterations 1",
                input.label,
                target.name()
            );
            if let Some(d) = &dir {
                write_finding(d, &input, seed, cause, &detail);
            }
            // `exit` runs no destructor: the vector mutants' directory goes by hand.
            let _ = std::fs::remove_dir_all(&corpus.vectors.dir);
            std::process::exit(1);
        }
    })
}

/// Runs the loop `cfg` describes over `corpus`.
pub fn run(cfg: &Config, corpus: Arc<Corpus>) -> std::io::Result<Report> {
    let mut findings = Findings::new(cfg.findings_dir.clone())?;
    let watchdog = cfg.watchdog.then(|| {
        memory::hold_oversize_allocations(cfg.max_exec_bytes.saturating_mul(4));
        spawn_watchdog(corpus.clone(), cfg.findings_dir.clone())
    });
    let start = Instant::now();
    let mut last_progress = start;
    let mut report = Report::default();
    let limit = Duration::from_secs_f64(cfg.seconds.max(0.0));
    for i in 0.. {
        if cfg.iterations.is_some_and(|n| i >= n) || start.elapsed() >= limit {
            break;
        }
        let seed = cfg.seed.wrapping_add(i);
        let target = cfg.target.resolve(seed);
        CURRENT_SEED.store(seed, Relaxed);
        let code = match target {
            Target::Vectors => 1,
            Target::Disk => 2,
            _ => 0,
        };
        CURRENT_TARGET.store(code, Relaxed);
        STARTED_MS.store(now_ms(), Relaxed);
        let ex = execute(&corpus, target, seed, cfg.max_exec_bytes);
        STARTED_MS.store(0, Relaxed);
        report.record(&ex);
        findings.write(&ex);
        if cfg.progress && last_progress.elapsed() >= Duration::from_secs(10) {
            last_progress = Instant::now();
            let secs = start.elapsed().as_secs_f64();
            println!(
                "fuzz: {secs:.0} s, {} executions ({:.0}/s), {} findings",
                report.executions,
                report.executions as f64 / secs,
                report.findings
            );
        }
    }
    report.elapsed = start.elapsed();
    STOP.store(true, Relaxed);
    if let Some(w) = watchdog {
        let _ = w.join();
    }
    Ok(report)
}
