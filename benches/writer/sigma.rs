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

/// Best of 5 runs of `detect` over `evs` repeated, in ns per exec.
fn per_exec(d: &mut Detector, evs: &[ExecEvent]) -> f64 {
    let mut work: Vec<ExecEvent> = evs.to_vec();
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let t = common::per_event(50_000, || {
            for ev in &mut work {
                d.detect(std::hint::black_box(ev));
            }
        });
        best = best.min(t.as_nanos() as f64 / evs.len() as f64);
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
    let base = per_exec(&mut none, &quiet);
    println!("sigma detect, no rules (baseline): {base:>6.1} ns/exec");
    for (name, d) in [
        ("Linux rules", &mut with_lin),
        ("whole corpus", &mut with_all),
    ] {
        let before = d.evaluated;
        let q = per_exec(d, &quiet);
        let runs = 5 * 55_000 * quiet.len() as u64;
        let evaluated = (d.evaluated - before) as f64 / runs as f64;
        let l = per_exec(d, &loud);
        println!(
            "sigma detect, {name}: {:>6.1} ns/exec added on execs matching nothing ({:.0}x baseline; {evaluated:.1} rules evaluated per exec), {:>6.1} ns on matching ones",
            q - base,
            q / base,
            l - base
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
