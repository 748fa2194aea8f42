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
        "# procwatch 0.1.0 watching execs via ebpf (tp_btf/sched_process_exec) on host1\n\
         # time            pid     ppid  user        privileges  command\n"
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
    let lines = render(&Event::Start(s));
    let (line, header) = lines.split_at(lines.find('\n').unwrap() + 1);
    assert_one_safe_line(line);
    assert_one_safe_line(header);
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

fn compact(ev: ExecEvent) -> String {
    let buf = SharedBuf::default();
    let mut s = TextSink::new(Box::new(buf.clone())).compact(true);
    s.write_event(&Event::Exec(Box::new(ev))).unwrap();
    buf.string()
}

/// A root exec with every capability, raised by a setuid bit.
fn root_setuid_exec() -> ExecEvent {
    let mut ev = exec_event();
    ev.argv = Some(vec![b"sudo".to_vec(), b"id".to_vec()]);
    ev.exe = Some(b"/usr/bin/sudo".to_vec());
    ev.user = Some("root".into());
    set_euid(&mut ev, 0);
    let Some(Privileges::Linux { caps, raised, .. }) = &mut ev.privileges else {
        unreachable!()
    };
    caps.effective = (1 << 41) - 1 - (1 << 24);
    *raised = Some(PrivilegeRaise::Setuid);
    ev.privilege_change = Some(setuid_change());
    ev
}

fn in_container(ev: &mut ExecEvent, id: &str, delegated: Option<u32>) {
    ev.ns.container = Some(std::sync::Arc::new(crate::event::Container {
        id: id.to_owned(),
        runtime: "docker",
        delegated_uid: delegated,
        nested: false,
    }));
}

#[test]
fn compact_root_line_fits_80_columns() {
    let line = compact(root_setuid_exec());
    assert_eq!(
        line,
        "05:26:10.123     4242  root      ALL+suid RAISED  sudo id\n"
    );
    // A root cron job: the whole line in 80 columns.
    let mut cron = root_setuid_exec();
    cron.argv = Some(vec![
        b"/bin/sh".to_vec(),
        b"-c".to_vec(),
        b"/usr/local/bin/backup.sh".to_vec(),
    ]);
    cron.exe = Some(b"/usr/bin/sh".to_vec());
    cron.privilege_change = None;
    let line = compact(cron.clone());
    assert!(line.len() <= 81, "{} columns: {line}", line.len() - 1);
    // Every marker still shows, as a word.
    cron.privilege_change = Some(setuid_change());
    cron.hijackable.push(hijack_dir());
    cron.mark_incomplete("ppid", "unknown");
    cron.ns.user_ns = Some(crate::event::UserNs {
        level: 1,
        owner_uid: 0,
    });
    assert_eq!(
        compact(cron),
        "05:26:10.123     4242  root      ALL+suid RAISED HIJACKABLE userns incomplete  \
         /bin/sh -c /usr/local/bin/backup.sh\n"
    );
    // The wide layout of the same exec is much wider.
    assert!(exec(root_setuid_exec()).len() > compact(root_setuid_exec()).len() + 30);
}

#[test]
fn compact_privilege_tags_and_userns() {
    let mut ev = exec_event();
    assert!(compact(ev.clone()).contains("  alice     -  ls"));
    let Some(Privileges::Linux { caps, .. }) = &mut ev.privileges else {
        unreachable!()
    };
    caps.effective = 0b1010_0000_0000_0000;
    assert!(compact(ev.clone()).contains("  alice     caps:2  ls"));
    // A sandbox's capabilities: no host power, and marked.
    ev.ns.user_ns = Some(crate::event::UserNs {
        level: 1,
        owner_uid: 1001,
    });
    assert!(
        compact(ev.clone()).contains("  alice     - userns  ls"),
        "{}",
        compact(ev)
    );
    ev.privileges = None;
    assert!(compact(ev).contains("  ? userns  ls"));
}

#[test]
fn container_tag_before_the_user_in_both_layouts() {
    let id = "0123456789abcdef".repeat(4);
    let mut ev = exec_event();
    in_container(&mut ev, &id, None);
    assert_eq!(
        exec(ev.clone()),
        "05:26:10.123     4242     1000  [0123456789ab] alice       -  ls -la /tmp\n"
    );
    assert_eq!(
        compact(ev.clone()),
        "05:26:10.123     4242  [0123456789ab] alice     -  ls -la /tmp\n"
    );
    // A name a user chose in their own cgroup subtree is flagged.
    in_container(&mut ev, "web", Some(1000));
    assert!(exec(ev.clone()).contains("  [web?] alice  "));
    // Hostile names stay one safe line.
    in_container(&mut ev, "\x1b[2J\n", None);
    assert_one_safe_line(&exec(ev.clone()));
    assert_one_safe_line(&compact(ev));
}

#[test]
fn incomplete_marker_names_what_the_line_lacks() {
    let mut ev = exec_event();
    ev.mark_incomplete("exe_sha256", "hash_pending");
    ev.mark_incomplete("login_uid", "unset");
    assert_eq!(exec(ev.clone()), exec(exec_event()), "not shown here");
    ev.mark_incomplete("hijackable", "other_mount_namespace: gone");
    ev.mark_incomplete("container", "the cgroup path is unknown");
    assert!(
        exec(ev.clone()).contains("  -  incomplete(hijackable,container)  ls -la /tmp"),
        "{}",
        exec(ev.clone())
    );
    assert!(compact(ev).contains("  - incomplete  ls"));
}

#[test]
fn layout_by_terminal_width_and_headers() {
    assert!(!compact_for(None));
    assert!(compact_for(Some(80)));
    assert!(compact_for(Some(WIDE_FROM - 1)));
    assert!(!compact_for(Some(WIDE_FROM)));
    let buf = SharedBuf::default();
    let mut s = TextSink::new(Box::new(buf.clone())).compact(true);
    s.write_event(&Event::Start(start_info())).unwrap();
    s.write_event(&Event::Exec(Box::new(exec_event()))).unwrap();
    let out = buf.string();
    let lines: Vec<_> = out.lines().collect();
    assert_eq!(
        lines[1],
        "# time            pid  user      privileges  command"
    );
    // The header's words sit over their columns.
    assert_eq!(
        lines[1].find("pid").unwrap() + 3,
        lines[2].find("4242").unwrap() + 4
    );
    assert_eq!(lines[1].find("user"), lines[2].find("alice"));
    let wide = render(&Event::Start(start_info()));
    let header = wide.lines().nth(1).unwrap();
    let line = exec(exec_event());
    assert_eq!(header.find("user"), line.find("alice"));
    assert_eq!(
        header.find("ppid").unwrap() + 4,
        line.find("1000").unwrap() + 4
    );
}

/// The first line of what `s` writes for a continuation start line after
/// `reopen` (whether the output was reopened first).
fn continuation_line(s: StartInfo, reopen: bool) -> String {
    let buf = SharedBuf::default();
    let mut sink = TextSink::new(Box::new(buf.clone()));
    if reopen {
        sink.reopened(false);
    }
    let mut start = s;
    start.continuation = true;
    sink.write_event(&Event::Start(start)).unwrap();
    buf.string().lines().next().unwrap().to_owned()
}

#[test]
fn continuation_says_what_sighup_did() {
    let ruled = || {
        let mut s = start_info();
        s.rules.loaded = 7;
        s
    };
    assert!(
        continuation_line(start_info(), true).ends_with(" (continued: the output was reopened)")
    );
    assert!(
        continuation_line(ruled(), false)
            .ends_with(" (continued: the rules were reloaded, 7 loaded)")
    );
    assert!(
        continuation_line(ruled(), true)
            .ends_with(" (continued: the output was reopened and the rules reloaded, 7 loaded)")
    );
    // A reopening is told once: the next start line is about what follows.
    let buf = SharedBuf::default();
    let mut sink = TextSink::new(Box::new(buf.clone()));
    sink.reopened(false);
    let mut s = ruled();
    s.continuation = true;
    sink.write_event(&Event::Start(s.clone())).unwrap();
    sink.write_event(&Event::Start(s)).unwrap();
    let text = buf.string();
    let starts: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("# procwatch"))
        .collect();
    assert_eq!(starts.len(), 2);
    assert!(
        starts[1].ends_with(" (continued: the rules were reloaded, 7 loaded)"),
        "{text}"
    );
}
