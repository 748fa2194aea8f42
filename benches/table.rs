//! `cargo bench --bench table`: the process table's memory and time after
//! 1M fork → exec → exit cycles (each with a realistic argv), against a
//! baseline measured in the same run (the resident size before).
//!
//! Exited processes linger 10 s before expiry, so this also shows the
//! steady state under a storm: what lingers, plus what is still running.

use std::time::{Duration, Instant, SystemTime};

use procwatch::enrich::table::ProcessTable;
use procwatch::event::{CapSets, Credentials, ExecEvent, Privileges};
use procwatch::event::{Exit, Fork, ProcKey};

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn exec(pid: u32) -> ExecEvent {
    let mut ev = ExecEvent::new(
        SystemTime::now(),
        pid,
        Some(1),
        format!("{pid}:{}", pid as u64 * 1000),
    );
    ev.exe = Some(b"/usr/bin/true".to_vec());
    ev.argv = Some(vec![
        b"/bin/true".to_vec(),
        b"pwbench-0123456789abcdef".to_vec(),
        b"--flag=value".to_vec(),
    ]);
    ev.user = Some("root".into());
    ev.privileges = Some(Privileges::Linux {
        creds: Credentials::default(),
        caps: CapSets {
            effective: 0x1ff_ffff_ffff,
            ..CapSets::default()
        },
        secureexec: Some(false),
        file: None,
        raised: None,
    });
    ev
}

fn main() {
    const N: u32 = 1_000_000;
    let before = rss_kib();
    let mut table = ProcessTable::new(65_536);
    let mut init = exec(1);
    let k = table.exec(&mut init, 1, 0);
    table.commit_exec(k, &mut init, true);
    let t = Instant::now();
    for i in 0..N {
        let pid = 1000 + (i % 4_000_000);
        let key = ProcKey {
            pid,
            start_ns: 10 + i as u64,
        };
        table.fork(Fork {
            child: key,
            parent: ProcKey {
                pid: 1,
                start_ns: 1,
            },
        });
        let mut ev = exec(pid);
        let k = table.exec(&mut ev, key.start_ns, 1);
        table.commit_exec(k, &mut ev, true);
        table.exit(&Exit {
            key,
            ppid: 1,
            time: SystemTime::now(),
            status: 0,
            comm: b"true".to_vec(),
            lifetime: Duration::from_millis(1),
        });
        if i % 1000 == 0 {
            table.maintain();
        }
    }
    let per_cycle = t.elapsed() / N;
    table.maintain();
    let after = rss_kib();
    let stats = table.stats();
    println!(
        "1M fork+exec+exit cycles: {} ns per cycle",
        per_cycle.as_nanos()
    );
    println!(
        "table holds {} processes (cap 65536, {} evicted for the cap); resident memory {} KiB -> {} KiB (+{} KiB, {:.2}x the baseline)",
        stats.processes,
        stats.evicted_for_cap,
        before,
        after,
        after.saturating_sub(before),
        after as f64 / before as f64
    );
}
