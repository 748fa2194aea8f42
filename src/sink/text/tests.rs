//! The text sink's lines: layout, markers, escaping and colour.

use super::*;
use crate::event::{
    CapSets, ChangeCause, Hijack, HijackRole, LossPlace, PrivilegeChange, PrivilegeRaise,
    Privileges,
};
use crate::sink::escape::join_cmdline;
use crate::sink::testutil::*;

fn render(ev: &Event) -> String {
    let buf = SharedBuf::default();
    let mut s = TextSink::new(Box::new(buf.clone()));
    s.write_event(ev).unwrap();
    s.flush().unwrap();
    buf.string()
}

fn exec(ev: ExecEvent) -> String {
    render(&Event::Exec(Box::new(ev)))
}

/// No raw control anywhere except the final newline.
fn assert_one_safe_line(s: &str) {
    let body = s.strip_suffix('\n').expect("ends with newline");
    assert!(
        !body.bytes().any(|b| b < 0x20 || b == 0x7f),
        "raw control in {body:?}"
    );
    assert!(
        !body.chars().any(crate::sink::escape::needs_escape),
        "{body:?}"
    );
}

#[test]
fn plain_exec_line() {
    assert_eq!(
        exec(exec_event()),
        "05:26:10.123     4242     1000  alice       -  ls -la /tmp\n"
    );
}

#[test]
fn columns_are_padded() {
    let mut ev = exec_event();
    ev.pid = 1;
    ev.ppid = Some(4_194_304);
    ev.user = None;
    assert_eq!(
        exec(ev),
        "05:26:10.123        1  4194304  1001        -  ls -la /tmp\n"
    );
}

#[test]
fn privileges_are_summarised() {
    let mut ev = exec_event();
    ev.argv = Some(vec![b"sudo".to_vec(), b"id".to_vec()]);
    ev.exe = Some(b"/usr/bin/sudo".to_vec());
    ev.user = Some("root".into());
    let Some(Privileges::Linux { caps, raised, .. }) = &mut ev.privileges else {
        unreachable!()
    };
    *caps = CapSets {
        effective: (1 << 41) - 1,
        ..CapSets::default()
    };
    *raised = Some(PrivilegeRaise::Setuid);
    assert_eq!(
        exec(ev),
        "05:26:10.123     4242     1000  root        caps=ALL [setuid]  sudo id\n"
    );
}

#[test]
fn hostile_exec_is_one_terminal_safe_line() {
    let ev = hostile_exec();
    let line = exec(ev.clone());
    assert_one_safe_line(&line);
    assert!(line.contains(&join_cmdline(ev.argv.as_deref().unwrap())));
    assert!(line.contains("$'bob\\x1b[0m'"));
    assert!(line.contains("(exe: $'/tmp/\\x1b[2Jevil,\"dir\"\\n/\\xc3(x')"));
}

#[test]
fn exe_shown_when_argv0_differs() {
    let mut ev = exec_event();
    ev.argv.as_mut().unwrap()[0] = b"sshd".to_vec();
    ev.exe = Some(b"/tmp/x/miner".to_vec());
    assert!(exec(ev).ends_with("  sshd -la /tmp (exe: /tmp/x/miner)\n"));

    // Same basename, different spelling of the path: not shown.
    let mut ev = exec_event();
    ev.argv.as_mut().unwrap()[0] = b"/bin/ls".to_vec();
    assert!(exec(ev).ends_with("  /bin/ls -la /tmp\n"));

    // Login shell convention.
    let mut ev = exec_event();
    ev.argv = Some(vec![b"-bash".to_vec()]);
    ev.exe = Some(b"/usr/bin/bash".to_vec());
    assert!(exec(ev).ends_with("  -bash\n"));

    // Script: the interpreter is what ran.
    let mut ev = exec_event();
    ev.argv = Some(vec![b"./deploy.sh".to_vec()]);
    ev.exe = Some(b"/usr/bin/bash".to_vec());
    assert!(exec(ev).ends_with("  ./deploy.sh (exe: /usr/bin/bash)\n"));

    // A path with spaces and a fake ")" is quoted.
    let mut ev = exec_event();
    ev.exe = Some(b"/tmp/a) b".to_vec());
    assert!(exec(ev).ends_with("(exe: '/tmp/a) b')\n"));
}

#[test]
fn empty_argv_and_truncation_are_visible() {
    let mut ev = exec_event();
    ev.argv = Some(Vec::new());
    ev.exe_truncated = true;
    ev.exe = Some(b"/very/long/ls".to_vec());
    assert_eq!(
        exec(ev),
        "05:26:10.123     4242     1000  alice       -  (empty argv) (exe: .../very/long/ls)\n"
    );
    let mut ev = exec_event();
    ev.argv_truncated = true;
    ev.argv_size = Some(300_000);
    assert!(exec(ev).ends_with("ls -la /tmp [argv truncated, 300000 bytes]\n"));
}

#[test]
fn argv_cannot_forge_a_comment_line() {
    let mut ev = exec_event();
    ev.argv = Some(vec![b"# LOST 0 events".to_vec()]);
    let line = exec(ev);
    assert!(line.contains("'# LOST 0 events'"));
    assert_one_safe_line(&line);
}

#[test]
fn start_loss_stop_lines() {
    assert_eq!(
        render(&Event::Start(start_info())),
        "# procwatch 0.1.0 watching execs via ebpf (tp_btf/sched_process_exec) on host1\n"
    );
    assert_eq!(
        render(&Event::Loss(loss_info())),
        "# LOST 12 events (kernel), total 40\n"
    );
    let mut q = loss_info();
    q.place = LossPlace::Queue;
    assert_eq!(
        render(&Event::Loss(q)),
        "# LOST 12 events (queue), total 40\n"
    );
    assert_eq!(
        render(&Event::Stop(stop_info())),
        "# stop (signal): seen 100, emitted 88, dropped 12, queue_dropped 5, written 83, filtered 4\n"
    );
}

#[test]
fn hostile_start_fields_are_escaped() {
    let mut s = start_info();
    s.hostname = "h\x1b]0;x\x07".to_owned();
    let line = render(&Event::Start(s));
    assert_one_safe_line(&line);
    assert!(line.ends_with("on $'h\\x1b]0;x\\x07'\n"));
}

fn render_color(ev: &Event) -> String {
    let buf = SharedBuf::default();
    let mut s = TextSink::with_color(Box::new(buf.clone()), true);
    s.write_event(ev).unwrap();
    s.flush().unwrap();
    buf.string()
}

fn exec_color(ev: ExecEvent) -> String {
    render_color(&Event::Exec(Box::new(ev)))
}

/// The line with every escape this sink may add removed; whatever
/// remains must be as safe as an uncoloured line.
fn strip_ours(s: &str) -> String {
    let mut ours = vec![RESET, ROOT, RAISED, HIJACKABLE, EXIT_FAILED, ALARM];
    ours.extend(USER_PALETTE);
    ours.iter()
        .fold(s.to_owned(), |acc, sgr| acc.replace(sgr, ""))
}

fn set_euid(ev: &mut ExecEvent, euid: u32) {
    let Some(Privileges::Linux { creds, .. }) = &mut ev.privileges else {
        unreachable!()
    };
    creds.euid = euid;
}

fn exit_event() -> ExitEvent {
    ExitEvent {
        time: t0(),
        pid: 4242,
        ppid: 1000,
        exec_id: Some("4242:1".to_owned()),
        exit_code: Some(0),
        signal: None,
        core_dumped: false,
        lifetime: Some(std::time::Duration::from_millis(1500)),
        comm: Some(b"ls".to_vec()),
    }
}

#[test]
fn markers_are_plain_text_without_colour() {
    let mut ev = exec_event();
    ev.privilege_change = Some(setuid_change());
    assert_eq!(
        exec(ev.clone()),
        "05:26:10.123     4242     1000  alice       -  RAISED(setuid 1000→0)  ls -la /tmp\n"
    );
    ev.hijackable.push(hijack_dir());
    let mut h = hijack_dir();
    h.path = b"/opt/x y".to_vec();
    h.writable = h.path.clone();
    h.writers = vec!["others".to_owned()];
    ev.hijackable.push(h);
    let line = exec(ev);
    assert_eq!(
        line,
        "05:26:10.123     4242     1000  alice       -  RAISED(setuid 1000→0) \
         HIJACKABLE(/opt/job.sh: dir /opt writable by user alice) \
         HIJACKABLE('/opt/x y': file writable by others)  ls -la /tmp\n"
    );
    assert!(!line.contains('\x1b'));
}

#[test]
fn hostile_marker_fields_cannot_forge_or_escape() {
    let mut ev = hostile_exec();
    ev.hijackable.push(Hijack {
        path: b"/tmp/a) RAISED(x\x1b[2J".to_vec(),
        role: HijackRole::Binary,
        writable: b"/tmp".to_vec(),
        writers: vec!["user \x1b]0;t\x07".to_owned()],
    });
    ev.privilege_change = Some(PrivilegeChange {
        cause: ChangeCause::Launcher,
        launcher: Some(b"/x/\x9b31m)".to_vec()),
        ..setuid_change()
    });
    let plain = exec(ev.clone());
    assert_one_safe_line(&plain);
    assert!(plain.contains(
        "HIJACKABLE($'/tmp/a) RAISED(x\\x1b[2J': dir /tmp writable by user $'\\x1b]0;t\\x07')"
    ));
    assert!(plain.contains("RAISED(launcher $'\\x9b31m)': 1000→0)"));
    assert_eq!(plain.matches("RAISED(").count(), 2, "one real, one quoted");

    let colored = exec_color(ev);
    assert_one_safe_line(&strip_ours(&colored));
    // Colour adds escapes and nothing else.
    assert_eq!(strip_ours(&colored), plain);
}

#[test]
fn user_column_colours() {
    let mut ev = exec_event();
    set_euid(&mut ev, 0);
    ev.user = Some("root".into());
    let line = exec_color(ev.clone());
    // Padding inside the colour, so columns still line up.
    assert!(
        line.contains("  \x1b[1;31mroot      \x1b[0m  -  ls"),
        "{line:?}"
    );
    // Other users: a palette colour fixed by uid.
    set_euid(&mut ev, 1001);
    ev.user = Some("alice".into());
    let a = exec_color(ev.clone());
    assert!(a.contains(&format!("{}alice     {RESET}", USER_PALETTE[1001 % 6])));
    assert_eq!(exec_color(ev.clone()), a, "stable");
    set_euid(&mut ev, 1002);
    assert_ne!(exec_color(ev.clone()), a);
    assert!(!exec_color(ev.clone()).contains(ROOT));
    // Unknown credentials: no colour at all on a plain exec.
    ev.privileges = None;
    assert!(!exec_color(ev).contains('\x1b'));
    // Same text as without colour, once our escapes are removed.
    let mut ev = exec_event();
    ev.privilege_change = Some(setuid_change());
    ev.hijackable.push(hijack_dir());
    let c = exec_color(ev.clone());
    assert!(c.contains(&format!("{RAISED}RAISED(setuid 1000→0){RESET}")));
    assert!(c.contains(&format!("{HIJACKABLE}HIJACKABLE(/opt/job.sh: ")));
    assert_eq!(strip_ours(&c), exec(ev));
}

#[test]
fn exit_lines() {
    let x = exit_event();
    let line = |x: &ExitEvent| render(&Event::Exit(Box::new(x.clone())));
    let color = |x: &ExitEvent| render_color(&Event::Exit(Box::new(x.clone())));
    assert_eq!(
        line(&x),
        "05:26:10.123     4242     1000  exit: exited 0 after 1.500s ls\n"
    );
    assert_eq!(color(&x), line(&x), "a clean exit stays plain");
    let mut failed = x.clone();
    failed.exit_code = Some(3);
    assert!(line(&failed).contains("exit: exited 3 after"));
    assert!(color(&failed).contains(&format!("exit: {EXIT_FAILED}exited 3{RESET} after")));
    let mut killed = x.clone();
    killed.exit_code = None;
    killed.signal = Some(9);
    assert!(color(&killed).contains(&format!("{ALARM}killed by signal 9{RESET}")));
    killed.core_dumped = true;
    assert!(line(&killed).contains("killed by signal 9 (core dumped)"));
    let mut hostile = x;
    hostile.comm = Some(b"\x1b[31m".to_vec());
    hostile.lifetime = None;
    assert_one_safe_line(&line(&hostile));
    assert_one_safe_line(&strip_ours(&color(&hostile)));
}

#[test]
fn loss_is_red_with_colour_only() {
    let ev = Event::Loss(loss_info());
    assert_eq!(render(&ev), "# LOST 12 events (kernel), total 40\n");
    // Late sources: what was reported with fields missing is not "lost".
    let mut late = loss_info();
    late.place = LossPlace::TooLate;
    assert!(render(&Event::Loss(late)).starts_with("# INCOMPLETE 12 events: the process was gone"),);
    assert_eq!(
        render_color(&ev),
        format!("{ALARM}# LOST 12 events (kernel), total 40{RESET}\n")
    );
    // Start and stop are never coloured.
    assert_eq!(
        render_color(&Event::Stop(stop_info())),
        render(&Event::Stop(stop_info()))
    );
}
