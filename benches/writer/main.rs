//! `cargo bench --bench writer`: the writer stage's CPU per exec of an exec
//! storm, without a kernel source: each exec arrives as the eBPF source
//! hands it over (fork, exec, exit records) and goes through the process
//! table, enrichment, hijack check, hash, filters and the sink, into a file
//! on the temp dir (like `-o`) or into a writer that discards.
//!
//! `cargo bench --bench writer -- NAME` runs only the cases whose name
//! contains NAME. Numbers are the best of 5 runs of 50,000 execs, in ns
//! per exec with the cost of building the records taken off, and as a
//! ratio to that baseline (building and dropping the records), measured
//! in the same run.
//! The end-to-end figure (reader thread and kernel included) comes from
//! `bench/exec_storm.py`.
//!
//! `cargo bench --bench writer -- sigma`: the Sigma rules' cost (see
//! sigma.rs).
//!
//! `cargo bench --bench writer -- --dump DIR` measures nothing: it writes
//! a small fixed storm in every format to DIR (see dump.rs), to compare
//! two builds' output byte for byte.
//!
//! `cargo bench --bench writer -- --bytes [ARGS...]` measures bytes per
//! JSONL exec line over a realistic mix instead (see bytes.rs).

// The process table's seeding, the hash and the hijack check are Linux
// code (src/enrich/mod.rs); elsewhere this bench does nothing.
#[cfg(target_os = "linux")]
mod bytes;
#[cfg(target_os = "linux")]
#[path = "../common/mod.rs"]
mod common;
#[cfg(target_os = "linux")]
mod dump;
#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
mod sigma;

fn main() {
    #[cfg(target_os = "linux")]
    {
        let args: Vec<String> = std::env::args().collect();
        if let Some(i) = args.iter().position(|a| a == "--bytes") {
            // `--bench`, which cargo appends, is not a procwatch argument.
            let extra: Vec<String> = args[i + 1..]
                .iter()
                .filter(|a| *a != "--bench")
                .cloned()
                .collect();
            return bytes::bytes(&extra);
        }
        match args.iter().position(|a| a == "--dump") {
            Some(i) => dump::dump(std::path::Path::new(args.get(i + 1).expect("--dump DIR"))),
            None => linux::main(),
        }
    }
}
