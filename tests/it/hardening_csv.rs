//! CSV against hostile argv: the formula guard must be undone exactly, and
//! a cut command line must say so.
//!
//! The undo rules (README, CSV): CommandLine is shell words, given back by
//! bash; a truncated one ends with ` …[truncated N bytes]`; any other cell
//! loses one leading `'` if it has one.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use crate::common::*;
use procwatch::event::{Event, ExecEvent};
use procwatch::sink::CsvColumn;
use procwatch::sink::csv::CsvSink;
use procwatch::sink::escape::display_bytes;

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A small deterministic generator (xorshift64*), so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Pieces a hostile argument is made of: formula starters, both quote
/// kinds, shell syntax, controls, bidi and non-breaking space, invalid
/// UTF-8, and the truncation marker itself.
const PIECES: &[&[u8]] = &[
    b"=",
    b"+",
    b"-",
    b"@",
    b"\t",
    b"\r",
    b"\n",
    b"'",
    b"\"",
    b"$",
    b"\\",
    b" ",
    b",",
    b"a",
    b"Z",
    b"0",
    b"%",
    b"~",
    b"*",
    b"!",
    b"#",
    b"(",
    b"]",
    b"[",
    b"\x1b",
    b"\x7f",
    b"\xff",
    b"\xc3",
    "…".as_bytes(),
    "é".as_bytes(),
    "\u{202e}".as_bytes(),
    "\u{a0}".as_bytes(),
    "…[truncated 3 bytes]".as_bytes(),
    b"$'x'",
    b"'=1'",
    b"-bash",
    b"=cmd|' /C calc'!A0",
];

fn hostile(rng: &mut Rng, max_pieces: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..rng.below(max_pieces + 1) {
        out.extend_from_slice(PIECES[rng.below(PIECES.len())]);
    }
    out
}

/// Parses the shell words of each cell with bash (the undo of CommandLine).
fn bash_words(cells: &[String]) -> Vec<Vec<Vec<u8>>> {
    let mut script = String::new();
    for c in cells {
        script.push_str(&format!("set -- {c}\nprintf '%s\\0' \"$#\" \"$@\"\n"));
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("undo.sh");
    std::fs::write(&file, &script).unwrap();
    let out = Command::new("bash")
        .arg(&file)
        .env("LC_ALL", "C")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut fields = out.stdout.split(|&b| b == 0);
    let mut all = Vec::new();
    for _ in cells {
        let n: usize = std::str::from_utf8(fields.next().unwrap())
            .unwrap()
            .parse()
            .unwrap();
        all.push((0..n).map(|_| fields.next().unwrap().to_vec()).collect());
    }
    all
}

/// Splits the truncation marker off a CommandLine cell: (words, N).
fn split_marker(cell: &str) -> (&str, Option<u64>) {
    if let Some(head) = cell.strip_suffix(" bytes]")
        && let Some((words, n)) = head.rsplit_once(" …[truncated ")
        && let Ok(n) = n.parse()
    {
        return (words, Some(n));
    }
    (cell, None)
}

fn is_formula(cell: &str) -> bool {
    cell.starts_with(['=', '+', '-', '@', '\t', '\r'])
}

#[test]
fn formula_guard_undo_is_exact_for_generated_hostile_argvs() {
    let mut rng = Rng(0x5eed_cafe_f00d_0001);
    let buf = Buf::default();
    let mut sink = CsvSink::new(Box::new(buf.clone()), false)
        .with_columns(vec![CsvColumn::ArgvTruncated, CsvColumn::ArgvSize]);
    let mut cases = Vec::new();
    for i in 0..3000u32 {
        let argv: Vec<Vec<u8>> = (0..rng.below(5)).map(|_| hostile(&mut rng, 6)).collect();
        let mut ev = ExecEvent::new(
            UNIX_EPOCH + Duration::from_secs(1),
            i + 1,
            Some(1),
            i.to_string(),
        );
        let shown = argv.iter().map(Vec::len).sum::<usize>() + argv.len().saturating_sub(1);
        let truncated = !argv.is_empty() && rng.below(4) == 0;
        let missing = if truncated {
            rng.below(100_000) as u64
        } else {
            0
        };
        ev.argv = Some(argv.clone());
        ev.argv_truncated = truncated;
        ev.argv_size = Some(shown as u64 + u64::from(!truncated && !argv.is_empty()) + missing);
        ev.exe = Some(hostile(&mut rng, 4));
        ev.user = Some(String::from_utf8_lossy(&hostile(&mut rng, 3)).into());
        sink.write_event(&Event::Exec(Box::new(ev.clone())))
            .unwrap();
        cases.push((argv, truncated, missing, ev));
    }
    use procwatch::sink::Sink;
    sink.flush().unwrap();
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    let rows: Vec<csv::StringRecord> = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes())
        .records()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(rows.len(), cases.len());
    let mut word_cells = Vec::new();
    for (row, (_, truncated, missing, ev)) in rows.iter().zip(&cases) {
        for cell in row.iter() {
            assert!(!is_formula(cell), "a spreadsheet would evaluate {cell:?}");
        }
        let (words, n) = split_marker(&row[0]);
        assert_eq!(
            n,
            truncated.then_some(*missing),
            "marker of {:?} in {row:?} for {:?}",
            &row[0],
            ev.argv
        );
        assert_eq!(&row[7], if *truncated { "true" } else { "false" });
        word_cells.push(words.to_owned());
        // Plain cells: strip one leading quote.
        let undo = |c: &str| c.strip_prefix('\'').unwrap_or(c).to_owned();
        assert_eq!(undo(&row[2]), display_bytes(ev.exe.as_deref().unwrap()));
        assert_eq!(
            undo(&row[5]),
            display_bytes(ev.user.as_deref().unwrap().as_bytes())
        );
    }
    let parsed = bash_words(&word_cells);
    for ((argv, ..), words) in cases.iter().zip(parsed) {
        assert_eq!(&words, argv, "CommandLine undo");
    }
}

/// procwatch's CSV rows on stdout, as records.
fn csv_rows(stdout: &[u8]) -> Vec<csv::StringRecord> {
    csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(stdout)
        .records()
        .map(|r| r.unwrap())
        .collect()
}

#[root_test("runs the eBPF monitor")]
fn real_hostile_execs_round_trip_and_a_cut_argv_is_marked() {
    let tag = unique_tag("csvguard");
    let argv0s: &[&[u8]] = &[
        b"-bash",
        b"=1+1",
        b"+x",
        b"@SUM(A1)",
        b"\t-x",
        b"'=x'",
        b"$'x'",
        b"-",
        b"a b",
        b"\xff-",
        "…[truncated 1 bytes]".as_bytes(),
    ];
    let mon = Monitor::start(&[
        "--format",
        "csv",
        "--csv-columns",
        "argv_truncated,argv_size",
    ]);
    let mut want = Vec::new();
    for a0 in argv0s {
        let os = <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(a0);
        run_ok(
            Command::new("/bin/true")
                .arg0(os)
                .arg(&tag)
                .arg("=2")
                .args(["-3 ]"]),
        );
        want.push(vec![
            a0.to_vec(),
            tag.clone().into_bytes(),
            b"=2".to_vec(),
            b"-3 ]".to_vec(),
        ]);
    }
    let big = "y".repeat(20_000);
    run_ok(
        Command::new("/bin/true")
            .arg(format!("{tag}-big"))
            .arg(&big),
    );
    let out = mon.stop();
    out.assert_clean_exit();
    let rows = csv_rows(&out.stdout);
    let mine: Vec<&csv::StringRecord> = rows.iter().filter(|r| r[0].contains(&tag)).collect();
    assert_eq!(mine.len(), argv0s.len() + 1, "{:?}", mine);
    let mut cells = Vec::new();
    for r in &mine {
        assert!(!is_formula(&r[0]), "{:?}", &r[0]);
        if !r[0].contains(&format!("{tag}-big")) {
            assert_eq!(split_marker(&r[0]).1, None);
            assert_eq!(&r[7], "false");
            cells.push(r[0].to_owned());
        }
    }
    let mut got = bash_words(&cells);
    got.sort();
    want.sort();
    assert_eq!(got, want, "bash gives back the exact argv");

    let big_row = mine
        .iter()
        .find(|r| r[0].contains(&format!("{tag}-big")))
        .unwrap();
    let total = ("/bin/true".len() + 1) + (tag.len() + 5) + (big.len() + 1);
    assert_eq!(&big_row[7], "true");
    assert_eq!(big_row[8].parse::<usize>().unwrap(), total);
    let (words, n) = split_marker(&big_row[0]);
    let n = n.expect("a cut CommandLine ends with the marker") as usize;
    let words = &bash_words(&[words.to_owned()])[0];
    assert_eq!(words[0], b"/bin/true");
    assert_eq!(words[1], format!("{tag}-big").as_bytes());
    assert!(big.as_bytes().starts_with(&words[2]) && words[2].len() < big.len());
    let shown: usize = words.iter().map(Vec::len).sum::<usize>() + words.len() - 1;
    assert_eq!(shown + n, total, "N counts exactly the bytes not captured");
}
