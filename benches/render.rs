//! `cargo bench --bench render`: CPU cost of the user-space path per event
//! (decode-free: enrich + render + write to a sink that discards), for each
//! format, against a baseline that only clones the event. Reports ratios
//! to the baseline measured in the same run, and ns per event. The last
//! case renders the lines other than exec (a loss and a stop, counted as
//! two events) as JSONL.

mod common;

use std::hint::black_box;

use common::{Discard, per_event};
use procwatch::enrich::Enricher;
use procwatch::event::{Counters, Event, LossInfo, LossPlace, StopInfo};

use procwatch::sink::{Format, make_sink};

fn main() {
    const N: u32 = 200_000;
    let ev = common::root_exec(
        4242,
        b"/usr/bin/true",
        b"/bin/true",
        &[b"/bin/true", b"pwbench-0123456789abcdef"],
    );
    let baseline = per_event(N, || {
        black_box(Box::new(ev.clone()));
    });
    println!(
        "baseline (clone an event): {:>7.0} ns/event",
        baseline.as_nanos()
    );
    let mut enricher = Enricher::new();
    for (name, format) in [
        ("text", Format::Text),
        ("csv", Format::Csv),
        ("jsonl", Format::Jsonl),
        ("ecs", Format::Ecs),
    ] {
        let mut sink = make_sink(format, Box::new(Discard), false, Default::default());
        let cost = per_event(N, || {
            let mut e = Box::new(ev.clone());
            enricher.enrich(&mut e);
            sink.write_event(&Event::Exec(e)).unwrap();
        });
        println!(
            "{name:>5}: {:>7.0} ns/event  ({:.1}x baseline)",
            cost.as_nanos(),
            cost.as_secs_f64() / baseline.as_secs_f64()
        );
    }
    let mut sink = make_sink(Format::Jsonl, Box::new(Discard), false, Default::default());
    let loss = Event::Loss(LossInfo {
        time: std::time::SystemTime::now(),
        place: LossPlace::Queue,
        dropped: 12,
        total: 40,
    });
    let stop = Event::Stop(StopInfo {
        time: std::time::SystemTime::now(),
        reason: "signal".to_owned(),
        counters: Counters {
            seen: 1_000_000,
            emitted: 999_000,
            dropped: 1_000,
            written: 998_000,
            ..Counters::default()
        },
    });
    let cost = per_event(N / 2, || {
        sink.write_event(black_box(&loss)).unwrap();
        sink.write_event(black_box(&stop)).unwrap();
    }) / 2;
    println!(
        "jsonl loss+stop: {:>7.0} ns/event  ({:.1}x baseline)",
        cost.as_nanos(),
        cost.as_secs_f64() / baseline.as_secs_f64()
    );
}
