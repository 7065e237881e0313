//! The `neardb-fuzz` command: parses the flags, builds the corpus, runs the loop and prints
//! the summary; exits 1 if anything was found.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use neardb_fuzz::runner::{self, Config, Corpus, Target};

const USAGE: &str = "\
usage: neardb-fuzz [--seconds N] [--iterations N] [--seed S] [--target all|index|vectors|disk]
                   [--findings DIR] [--max-exec-mib N]

  --seconds N       stop after N seconds (default 60)
  --iterations N    stop after N executions
  --seed S          execution i runs with seed S + i; a finding's seed replays it with
                    --seed <seed> --iterations 1
  --target T        which readers to fuzz (default all)
  --findings DIR    write each finding's input and a line in DIR/findings.txt
  --max-exec-mib N  an execution peaking above N MiB is a finding (default 512)";

fn parse() -> Result<Config, String> {
    let mut cfg = Config { progress: true, watchdog: true, ..Config::default() };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "-h" || flag == "--help" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = |what: &str| value.parse::<u64>().map_err(|_| format!("{flag}: {what}, got {value:?}"));
        match flag.as_str() {
            "--seconds" => {
                cfg.seconds = value.parse().map_err(|_| format!("--seconds: a number, got {value:?}"))?
            }
            "--iterations" => cfg.iterations = Some(number("a whole number")?),
            "--seed" => cfg.seed = number("a whole number")?,
            "--target" => {
                cfg.target = Target::from_name(&value)
                    .ok_or(format!("--target: all, index, vectors or disk, got {value:?}"))?
            }
            "--findings" => cfg.findings_dir = Some(PathBuf::from(value)),
            "--max-exec-mib" => {
                cfg.max_exec_bytes = (number("a whole number")? as usize).saturating_mul(1 << 20)
            }
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(cfg)
}

fn main() -> ExitCode {
    let cfg = match parse() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("neardb-fuzz: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    // Vector and SSD mutants need a file to be read from; one private directory, removed at the end.
    let dir = std::env::temp_dir().join(format!("neardb-fuzz-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("neardb-fuzz: {}: {e}", dir.display());
        return ExitCode::from(2);
    }
    let corpus = match Corpus::build(&dir) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            eprintln!("neardb-fuzz: building the seeds failed: {e}");
            let _ = std::fs::remove_dir_all(&dir);
            return ExitCode::from(2);
        }
    };
    println!(
        "fuzz: {} index seeds, {} vector-file seeds, {} SSD index seeds, target {}, seed {}, up to {} s{}",
        corpus.index.len(),
        corpus.vectors.seeds.len(),
        corpus.disk.seeds.len(),
        cfg.target.name(),
        cfg.seed,
        cfg.seconds,
        cfg.iterations.map_or(String::new(), |n| format!(" or {n} executions"))
    );
    let report = runner::run(&cfg, corpus);
    let _ = std::fs::remove_dir_all(&dir);
    match report {
        Ok(r) => {
            print!("{}", r.summary());
            if r.findings > 0 {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("neardb-fuzz: {e}");
            ExitCode::from(2)
        }
    }
}
