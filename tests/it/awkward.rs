//! The awkward cases, each checked field by field in all three formats:
//! three procwatch instances (jsonl, csv, text) watch one workload.
//! Needs root (eBPF, bind mounts); CI runs it as root.

use std::ffi::{CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::Value;

/// An extra assertion on a case's JSON event.
type Check = Box<dyn Fn(&Value)>;

/// One workload case: what was run, and what procwatch must report.
struct Case {
    name: &'static str,
    tag: String,
    argv: Vec<Vec<u8>>,
    exe: String,
    filename: Option<Vec<u8>>,
    interpreter: Option<String>,
    cwd: Option<String>,
    pid: Option<u32>,
    truncated: bool,
    /// Extra check on the JSON event.
    check: Option<Check>,
}

impl Case {
    fn new(name: &'static str, tag: &str, argv: Vec<Vec<u8>>, exe: &str) -> Case {
        Case {
            name,
            tag: tag.to_string(),
            argv,
            exe: exe.to_string(),
            filename: None,
            interpreter: None,
            cwd: None,
            pid: None,
            truncated: false,
            check: None,
        }
    }
}

fn b(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

fn cstrings(argv: &[Vec<u8>]) -> Vec<CString> {
    argv.iter()
        .map(|a| CString::new(a.clone()).unwrap())
        .collect()
}

fn ptrs(v: &[CString]) -> Vec<*const libc::c_char> {
    v.iter()
        .map(|c| c.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// Forks; the child runs `child` (which must exec or _exit). Returns the pid
/// after the child exits.
fn fork_and_wait(child: impl FnOnce()) -> u32 {
    // SAFETY: the child only calls exec-family functions, thread creation and
    // _exit, with everything allocated before the fork.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        child();
        unsafe { libc::_exit(127) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child failed: {status:#x}"
    );
    pid as u32
}

struct ThreadExec {
    path: CString,
    argv: Vec<CString>,
}

extern "C" fn exec_from_thread(arg: *mut libc::c_void) -> *mut libc::c_void {
    // SAFETY: arg points at a ThreadExec that outlives the exec.
    let te = unsafe { &*(arg as *const ThreadExec) };
    let argv = ptrs(&te.argv);
    unsafe { libc::execv(te.path.as_ptr(), argv.as_ptr()) };
    std::ptr::null_mut()
}

/// Runs the whole workload and returns the cases to check.
fn workload(dir: &Path) -> Vec<Case> {
    let mut cases = Vec::new();
    let true_exe = canonical("/bin/true");
    let dirs = canonical(dir.to_str().unwrap());

    // A #! script: exe is the interpreter, filename the script.
    let tag = unique_tag("script");
    let script = format!("{dirs}/script.sh");
    std::fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    run_ok(Command::new(&script).arg(&tag));
    let mut c = Case::new(
        "script",
        &tag,
        vec![b("/bin/sh"), b(&script), b(&tag)],
        &canonical("/bin/sh"),
    );
    c.filename = Some(b(&script));
    c.interpreter = Some("/bin/sh".into());
    cases.push(c);

    // A relative path, resolved against the child's cwd.
    let tag = unique_tag("relative");
    std::fs::copy("/bin/true", dir.join("rel-true")).unwrap();
    run_ok(Command::new("./rel-true").arg(&tag).current_dir(dir));
    let mut c = Case::new(
        "relative",
        &tag,
        vec![b("./rel-true"), b(&tag)],
        &format!("{dirs}/rel-true"),
    );
    c.filename = Some(b("./rel-true"));
    c.cwd = Some(dirs.clone());
    cases.push(c);

    // exec from a non-leader thread.
    let tag = unique_tag("thread");
    let te = ThreadExec {
        path: CString::new("/bin/true").unwrap(),
        argv: cstrings(&[b("/bin/true"), b(&tag)]),
    };
    let pid = fork_and_wait(|| unsafe {
        let mut t: libc::pthread_t = std::mem::zeroed();
        libc::pthread_create(
            &mut t,
            std::ptr::null(),
            exec_from_thread,
            &te as *const _ as *mut _,
        );
        libc::pthread_join(t, std::ptr::null_mut());
    });
    let mut c = Case::new("thread", &tag, vec![b("/bin/true"), b(&tag)], &true_exe);
    c.pid = Some(pid);
    c.check = Some(Box::new(|ev: &Value| {
        assert_eq!(ev["tid"], ev["pid"], "after exec the thread is the leader");
        assert_ne!(
            ev["exec_tid"], ev["pid"],
            "the exec came from another thread: {ev}"
        );
    }));
    cases.push(c);

    // fexecve of a regular file: filename is /dev/fd/N, exe the real file.
    let tag = unique_tag("fexecve");
    let argv = cstrings(&[b("true"), b(&tag)]);
    let fd = unsafe { libc::open(c"/bin/true".as_ptr(), libc::O_RDONLY) };
    assert!(fd >= 0);
    let env: Vec<*const libc::c_char> = vec![std::ptr::null()];
    let pid = fork_and_wait(|| unsafe {
        libc::fexecve(fd, ptrs(&argv).as_ptr(), env.as_ptr());
    });
    unsafe { libc::close(fd) };
    let mut c = Case::new("fexecve", &tag, vec![b("true"), b(&tag)], &true_exe);
    c.pid = Some(pid);
    c.filename = Some(format!("/dev/fd/{fd}").into_bytes());
    cases.push(c);

    // memfd exec: compare exe with what /proc/<pid>/exe says while it runs.
    let tag = unique_tag("memfd");
    let name = CString::new(tag.clone()).unwrap();
    let mfd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
    assert!(mfd >= 0);
    let sleep = std::fs::read("/bin/sleep").unwrap();
    assert_eq!(
        unsafe { libc::write(mfd, sleep.as_ptr().cast(), sleep.len()) },
        sleep.len() as isize
    );
    let argv = cstrings(&[b(&tag), b("600")]);
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        unsafe {
            libc::fexecve(mfd, ptrs(&argv).as_ptr(), env.as_ptr());
            libc::_exit(127);
        }
    }
    // Until the child has exec'd, its exe is this test binary.
    let deadline = Instant::now() + PATIENCE;
    let proc_exe = loop {
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
        let exe = exe.to_str().unwrap().to_string();
        if exe.starts_with("/memfd:") {
            break exe;
        }
        assert!(Instant::now() < deadline, "the memfd exec never happened");
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut status = 0;
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::waitpid(pid, &mut status, 0);
        libc::close(mfd);
    }
    let mut c = Case::new("memfd", &tag, vec![b(&tag), b("600")], &proc_exe);
    c.pid = Some(pid as u32);
    cases.push(c);

    // A path deeper than 32 components and longer than 512 bytes, also as cwd.
    let tag = unique_tag("deep");
    let mut deep = PathBuf::from(&dirs);
    for i in 0..40 {
        deep.push(format!("component-{i:02}-abcdefgh"));
    }
    std::fs::create_dir_all(&deep).unwrap();
    let deep_true = deep.join("true");
    std::fs::copy("/bin/true", &deep_true).unwrap();
    let deep_true = deep_true.to_str().unwrap().to_string();
    assert!(deep_true.len() > 512);
    run_ok(Command::new(&deep_true).arg(&tag).current_dir(&deep));
    let mut c = Case::new("deep", &tag, vec![b(&deep_true), b(&tag)], &deep_true);
    c.cwd = Some(deep.to_str().unwrap().to_string());
    cases.push(c);

    // A bind mount, in a private mount namespace: exe is the path through it.
    let tag = unique_tag("bind");
    let (src, dst) = (dir.join("bind-src"), dir.join("bind-dst"));
    std::fs::create_dir_all(&src).unwrap();
    std::fs::create_dir_all(&dst).unwrap();
    std::fs::copy("/bin/true", src.join("true")).unwrap();
    let (src, dst) = (
        src.to_str().unwrap().to_string(),
        dst.to_str().unwrap().to_string(),
    );
    run_ok(Command::new("unshare").args([
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        &format!("mount --bind '{src}' '{dst}' && exec '{dst}/true' '{tag}'"),
    ]));
    cases.push(Case::new(
        "bind",
        &tag,
        vec![format!("{dst}/true").into_bytes(), b(&tag)],
        &format!("{dst}/true"),
    ));

    // 20 KB of argv: truncated at 16 KiB and flagged.
    let tag = unique_tag("long");
    let mut argv = vec![b("/bin/true"), b(&tag)];
    argv.extend((0..20).map(|i| vec![b'a' + i as u8; 1000]));
    run_ok(Command::new("/bin/true").args(argv[1..].iter().map(|a| OsStr::from_bytes(a))));
    let mut c = Case::new("long", &tag, argv, &true_exe);
    c.truncated = true;
    cases.push(c);

    // Hostile arguments.
    let tag = unique_tag("hostile");
    let argv: Vec<Vec<u8>> = vec![
        b("/bin/true"),
        b(&tag),
        b("a,b"),
        b("q\"uote"),
        b("it's"),
        b("new\nline"),
        b("\x1b[31mred\x1b[0m"),
        b"\xff\xfeinvalid".to_vec(),
        Vec::new(),
        b(" spaced "),
        b("=cmd|' /C calc'!A0"),
    ];
    run_ok(Command::new("/bin/true").args(argv[1..].iter().map(|a| OsStr::from_bytes(a))));
    cases.push(Case::new("hostile", &tag, argv, &true_exe));
    cases
}

fn find_one<'a>(lines: &'a [Value], case: &Case) -> &'a Value {
    let found = execs_with_tag(lines, &case.tag);
    assert_eq!(
        found.len(),
        1,
        "case {}: expected one event, got {}",
        case.name,
        found.len()
    );
    found[0]
}

fn check_json(lines: &[Value], case: &Case) {
    let ev = find_one(lines, case);
    let name = case.name;
    let argv = argv_bytes(ev);
    if case.truncated {
        assert_eq!(ev["argv_truncated"], true, "{name}");
        let full: usize = case.argv.iter().map(|a| a.len() + 1).sum();
        assert_eq!(
            ev["argv_size"].as_u64().unwrap() as usize,
            full,
            "{name}: argv_size is the full size"
        );
        let got: usize = argv.iter().map(|a| a.len() + 1).sum::<usize>() - 1;
        assert_eq!(got, 16384, "{name}: exactly 16 KiB kept");
        let last = argv.len() - 1;
        assert_eq!(argv[..last], case.argv[..last], "{name}");
        assert!(
            case.argv[last].starts_with(&argv[last]),
            "{name}: the cut argument is a prefix"
        );
    } else {
        assert_eq!(argv, case.argv, "{name}: argv");
        assert_eq!(ev["argv_truncated"], false, "{name}");
    }
    assert_eq!(json_bytes(ev, "/exe"), case.exe.as_bytes(), "{name}: exe");
    if let Some(f) = &case.filename {
        assert_eq!(&json_bytes(ev, "/filename"), f, "{name}: filename");
    }
    match &case.interpreter {
        Some(i) => assert_eq!(ev["interpreter"], i.as_str(), "{name}"),
        None => assert_eq!(ev["interpreter"], Value::Null, "{name}"),
    }
    if let Some(cwd) = &case.cwd {
        assert_eq!(ev["cwd"], cwd.as_str(), "{name}: cwd");
    }
    if let Some(pid) = case.pid {
        assert_eq!(ev["pid"], pid, "{name}: pid");
    }
    assert_eq!(ev["user"], "root", "{name}");
    if let Some(check) = &case.check {
        check(ev);
    }
    // cmdline is a shell rendering: bash must turn it back into argv.
    if !case.truncated {
        assert_eq!(
            shell_words(ev["cmdline"].as_str().unwrap()),
            case.argv,
            "{name}: cmdline round trip"
        );
    }
}

/// Lets bash parse a command line back into its words.
fn shell_words(cmdline: &str) -> Vec<Vec<u8>> {
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("printf '%s\\0' {cmdline}"))
        .output()
        .unwrap();
    assert!(out.status.success(), "bash could not parse {cmdline:?}");
    let mut words: Vec<Vec<u8>> = out.stdout.split(|&c| c == 0).map(<[u8]>::to_vec).collect();
    words.pop();
    words
}

fn check_csv(csv_out: &[u8], json: &[Value], case: &Case) {
    let ev = find_one(json, case);
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(csv_out);
    let headers = rdr.headers().unwrap().clone();
    assert_eq!(
        headers.iter().collect::<Vec<_>>(),
        [
            "CommandLine",
            "Time",
            "Executable",
            "Parent PID",
            "PID",
            "User",
            "Privileges"
        ]
    );
    let rows: Vec<csv::StringRecord> = rdr
        .records()
        .map(|r| r.expect("valid CSV"))
        .filter(|r| r[0].contains(&case.tag))
        .collect();
    // Other processes (a wrapping `sh -c`) may mention the tag too; exactly
    // one row must be this exec, with the same command line as the JSON.
    let mut cmdline = ev["cmdline"].as_str().unwrap().to_owned();
    if ev["argv_truncated"] == true {
        // A cut argv is marked with the bytes that were not captured.
        let argv = argv_bytes(ev);
        let shown = argv.iter().map(Vec::len).sum::<usize>() + argv.len() - 1;
        let missing = ev["argv_size"].as_u64().unwrap() - shown as u64;
        cmdline.push_str(&format!(" …[truncated {missing} bytes]"));
    }
    let rows: Vec<_> = rows.iter().filter(|r| r[0] == cmdline).collect();
    assert_eq!(
        rows.len(),
        1,
        "case {}: CSV rows with CommandLine {cmdline:?}",
        case.name
    );
    let row = rows[0];
    // Each procwatch maps boot time to wall time with its own measured
    // offset, re-measured every 5 s: two instances may differ by
    // microseconds, or by what NTP slews in 5 s (at most 2.5 ms). The two
    // times may fall on either side of midnight.
    let d = (time_of_day(&row[1]) - time_of_day(ev["time"].as_str().unwrap())).abs();
    let skew = d.min(86_400.0 - d);
    assert!(
        skew < 0.02,
        "{}: Time {} vs {}",
        case.name,
        &row[1],
        ev["time"]
    );
    assert_eq!(
        row[2].as_bytes(),
        case.exe.as_bytes(),
        "{}: Executable",
        case.name
    );
    assert_eq!(row[3], ev["ppid"].to_string());
    assert_eq!(row[4], ev["pid"].to_string());
    assert_eq!(&row[5], "root");
    // CSV names every capability; JSON says ALL and names what is
    // missing when the set is (nearly) full, the mask being exact.
    let caps: Vec<&str> = ev["caps"]["effective"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let mask = ev["caps_raw"]["effective"].as_str().unwrap();
    let mask = u64::from_str_radix(mask.trim_start_matches("0x"), 16).unwrap();
    let cells: Vec<&str> = row[6].split('|').filter(|c| !c.is_empty()).collect();
    assert_eq!(
        cells.len() as u32,
        mask.count_ones(),
        "{}: Privileges",
        case.name
    );
    if caps.first() == Some(&"ALL") {
        for missing in caps.iter().filter_map(|c| c.strip_prefix('-')) {
            assert!(!cells.contains(&missing), "{}: {missing}", case.name);
        }
    } else {
        assert_eq!(row[6], caps.join("|"), "{}: Privileges", case.name);
    }
}

/// Seconds since midnight of an RFC 3339 UTC time, checking its shape.
fn time_of_day(t: &str) -> f64 {
    assert!(
        t.len() == 27 && t.ends_with('Z') && &t[10..11] == "T",
        "not RFC 3339 UTC: {t}"
    );
    let (h, m, s): (f64, f64, f64) = (
        t[11..13].parse().unwrap(),
        t[14..16].parse().unwrap(),
        t[17..26].parse().unwrap(),
    );
    h * 3600.0 + m * 60.0 + s
}

fn check_text(text: &str, json: &[Value], case: &Case) {
    let ev = find_one(json, case);
    let cmdline = ev["cmdline"].as_str().unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| l.contains(cmdline)).collect();
    assert_eq!(
        lines.len(),
        1,
        "case {}: text lines showing {cmdline:?}: {lines:?}",
        case.name
    );
    let line = lines[0];
    let words: Vec<&str> = line.split_whitespace().collect();
    assert!(words.contains(&ev["pid"].to_string().as_str()), "{line}");
    assert!(words.contains(&ev["ppid"].to_string().as_str()), "{line}");
    assert!(words.contains(&"root"), "{line}");
}

#[root_test("loads eBPF, bind-mounts")]
fn awkward_cases_in_all_three_formats() {
    let dir = open_tempdir();
    let json_mon = Monitor::start(&[
        "--format",
        "jsonl",
        "--fields",
        "+cmdline,+tid,+exec_tid,+argv_truncated,+filename",
    ]);
    let csv_mon = Monitor::start(&["--format", "csv"]);
    let text_mon = Monitor::start(&["--format", "text"]);
    let cases = workload(dir.path());
    let (json, csv_out, text) = (json_mon.stop(), csv_mon.stop(), text_mon.stop());
    for out in [&json, &csv_out, &text] {
        out.assert_clean_exit();
    }
    // Nothing raw reaches a terminal or a log: no control bytes but newline.
    for (fmt, out) in [("jsonl", &json.stdout), ("text", &text.stdout)] {
        assert!(
            !out.iter().any(|&c| (c < 0x20 && c != b'\n') || c == 0x7f),
            "{fmt} output contains raw control bytes"
        );
    }
    assert!(!csv_out.stdout.contains(&0x1b), "no raw ESC in CSV");
    let text = String::from_utf8(text.stdout).expect("text output is UTF-8");
    let json = json.json_lines();
    for case in &cases {
        check_json(&json, case);
        check_csv(&csv_out.stdout, &json, case);
        check_text(&text, &json, case);
    }
}

#[root_test("loads eBPF")]
fn formula_injection_is_neutralised_in_csv() {
    let dir = open_tempdir();
    let evil = dir.path().join("=HYPERLINK(1)");
    std::fs::copy("/bin/true", &evil).unwrap();
    let evil_dir = canonical(dir.path().to_str().unwrap());
    // argv[0] is attacker-chosen: make it start a formula.
    let (tag1, tag2) = (unique_tag("formula"), unique_tag("formula"));
    let mon = Monitor::start(&["--format", "csv"]);
    {
        use std::os::unix::process::CommandExt;
        run_ok(Command::new(&evil).arg0("=1+1").arg(&tag1));
        run_ok(Command::new("/bin/true").arg0("-bash").arg(&tag2));
    }
    let out = mon.stop();
    out.assert_clean_exit();
    let mut rdr = csv::Reader::from_reader(&out.stdout[..]);
    let rows: Vec<csv::StringRecord> = rdr.records().map(|r| r.unwrap()).collect();
    let row = |tag: &str| {
        rows.iter()
            .find(|r| r[0].contains(tag))
            .unwrap_or_else(|| panic!("no row for {tag}"))
    };
    // A shell-quoted argument already starts with a quote: nothing to add.
    assert_eq!(&row(&tag1)[0], format!("'=1+1' {tag1}"));
    assert_eq!(
        &row(&tag1)[2],
        format!("{evil_dir}/=HYPERLINK(1)"),
        "starts with '/', left alone"
    );
    // A bare leading '-' (a login shell's argv[0]) is single-quoted as a
    // shell word: the cell stays exact shell.
    assert_eq!(
        &row(&tag2)[0],
        format!("'-bash' {tag2}"),
        "documented: argv[0] quoted"
    );
    for r in &rows {
        for cell in r.iter() {
            assert!(
                !cell.starts_with(['=', '+', '-', '@']),
                "formula-like cell: {cell}"
            );
        }
    }
}
