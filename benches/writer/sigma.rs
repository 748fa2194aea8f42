//! `cargo bench --bench writer -- sigma`: what the Sigma rules cost. The
//! corpus is `../shared/sigma` (or `PROCWATCH_SIGMA_CORPUS`); without it
//! these cases say so and measure nothing.
//!
//! * loading: the Linux rules, and the whole corpus (Windows rules read
//!   and skipped), best of 3;
//! * the detector alone per exec, with no rule (the same loop: the
//!   baseline), the Linux rules and the whole corpus given, on execs
//!   that match no rule and on ones that do;
//! * the writer (table, enrichment, JSON lines) with and without the
//!   Linux rules, as added ns per exec and a ratio, measured in this run.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use super::common::{self, root_exec};
use procwatch::detect::{self, Detector, Engine, Platform};
use procwatch::event::{ExecEvent, ParentInfo, ProcessImage};

fn corpus() -> Option<PathBuf> {
    let dir = match std::env::var_os("PROCWATCH_SIGMA_CORPUS") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/sigma"),
    };
    dir.join("rules").is_dir().then_some(dir)
}

/// Execs as a busy host runs them: matching no rule, and a few that do.
fn execs() -> (Vec<ExecEvent>, Vec<ExecEvent>) {
    let parent = ParentInfo {
        pid: 1000,
        image: Arc::new(ProcessImage {
            exe: Some(b"/usr/bin/bash".to_vec()),
            argv: Some(vec![
                b"/bin/bash".to_vec(),
                b"/etc/cron.daily/logrotate".to_vec(),
            ]),
            user: Some(Arc::from("root")),
            ..ProcessImage::default()
        }),
        start: None,
    };
    let mk = |exe: &str, argv: &[&str]| {
        let argv: Vec<&[u8]> = argv.iter().map(|a| a.as_bytes()).collect();
        let mut ev = root_exec(4242, exe.as_bytes(), exe.as_bytes(), &argv);
        ev.parent = Some(parent.clone());
        ev.user = Some(Arc::from("root"));
        ev
    };
    let quiet = vec![
        mk("/usr/bin/true", &["/bin/true", "pwbench-0123456789abcdef"]),
        mk("/usr/bin/gzip", &["gzip", "-9", "/var/log/syslog.1"]),
        mk(
            "/usr/sbin/logrotate",
            &["/usr/sbin/logrotate", "/etc/logrotate.conf"],
        ),
        mk(
            "/usr/bin/git",
            &["git", "-C", "/srv/repo", "fetch", "--prune", "origin"],
        ),
    ];
    let loud = vec![
        mk("/usr/bin/mawk", &["awk", "BEGIN {system(\"/bin/sh\")}"]),
        mk("/usr/sbin/setcap", &["setcap", "cap_setuid+ep", "/tmp/x"]),
    ];
    (quiet, loud)
}

/// One run of `detect` over `evs` repeated, in ns per exec.
fn once(d: &mut Detector, evs: &[ExecEvent]) -> f64 {
    let mut work: Vec<ExecEvent> = evs.to_vec();
    let t = common::per_event(RUN, || {
        for ev in &mut work {
            d.detect(std::hint::black_box(ev));
        }
    });
    t.as_nanos() as f64 / evs.len() as f64
}

const RUN: u32 = 50_000;
const ROUNDS: usize = 7;

/// The best of [`ROUNDS`] runs of each detector on `evs`, in ns per exec.
/// The detectors take turns within each round, so a slow spell of the
/// shared host falls on all of them rather than on whichever ran then.
fn per_exec(ds: &mut [&mut Detector], evs: &[ExecEvent]) -> Vec<f64> {
    let mut best = vec![f64::INFINITY; ds.len()];
    for _ in 0..ROUNDS {
        for (d, b) in ds.iter_mut().zip(&mut best) {
            *b = b.min(once(d, evs));
        }
    }
    best
}

/// Prints the Sigma cases; `writer(args)` measures the writer with the
/// extra arguments, in ns per exec.
pub fn main(writer: impl Fn(&[&str]) -> f64) {
    let Some(root) = corpus() else {
        println!("sigma: skipped, no corpus at ../shared/sigma (set PROCWATCH_SIGMA_CORPUS)");
        return;
    };
    let linux: Vec<PathBuf> = [
        "rules",
        "rules-threat-hunting",
        "rules-emerging-threats",
        "rules-placeholder",
    ]
    .iter()
    .map(|d| root.join(d).join("linux"))
    .filter(|p| p.is_dir())
    .collect();
    let load = |paths: &[PathBuf]| {
        let mut best = f64::INFINITY;
        let mut set = None;
        for _ in 0..3 {
            let t = Instant::now();
            set = Some(detect::load(paths, Platform::Linux).expect("corpus"));
            best = best.min(t.elapsed().as_secs_f64() * 1000.0);
        }
        (set.unwrap(), best)
    };
    let (lin, lin_ms) = load(&linux);
    let (all, all_ms) = load(std::slice::from_ref(&root));
    println!(
        "sigma load, Linux rules: {lin_ms:>6.1} ms ({} loaded, {} prefiltered)",
        lin.summary.loaded,
        lin.engine.prefiltered()
    );
    println!(
        "sigma load, whole corpus: {all_ms:>6.1} ms ({} loaded, {} skipped)",
        all.summary.loaded,
        all.summary.skipped.len()
    );
    let (quiet, loud) = execs();
    let mut none = Detector::new(Arc::new(Engine::default()));
    let mut with_lin = Detector::new(Arc::new(lin.engine));
    let mut with_all = Detector::new(Arc::new(all.engine));
    let before = [with_lin.evaluated, with_all.evaluated];
    let q = per_exec(&mut [&mut none, &mut with_lin, &mut with_all], &quiet);
    let on_quiet = [
        with_lin.evaluated - before[0],
        with_all.evaluated - before[1],
    ];
    let l = per_exec(&mut [&mut none, &mut with_lin, &mut with_all], &loud);
    let base = q[0];
    println!("sigma detect, no rules (baseline):    {base:>6.1} ns/exec");
    // Each exec of `quiet` counts once per iteration and per warm-up one.
    let runs = (ROUNDS as u64) * u64::from(RUN + RUN / 10) * quiet.len() as u64;
    for (k, name) in ["Linux rules", "whole corpus"].into_iter().enumerate() {
        let evaluated = on_quiet[k] as f64 / runs as f64;
        println!(
            "sigma detect, {name}: {:>6.1} ns/exec added on execs matching nothing ({:.0}x baseline; {evaluated:.1} rules evaluated per exec), {:>6.1} ns on matching ones",
            q[k + 1] - base,
            q[k + 1] / base,
            l[k + 1] - l[0]
        );
    }
    let bare = ["--format", "jsonl", "--no-hash", "--no-hijack-check"];
    let plain = writer(&bare);
    let rules_arg = root.join("rules/linux");
    let mut with = bare.to_vec();
    with.extend(["--rules", rules_arg.to_str().unwrap()]);
    let ruled = writer(&with);
    println!(
        "sigma writer (jsonl bare -> discard): {plain:>6.0} ns/exec without rules, {ruled:>6.0} with the Linux rules: +{:.0} ns ({:.3}x)",
        ruled - plain,
        ruled / plain
    );
}
