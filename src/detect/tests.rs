//! Every modifier and condition form, with rules written here and exec
//! events built in code; the corpus tests are in tests/it/sigma.rs.

use std::sync::Arc;
use std::time::SystemTime;

use super::engine::{Detector, Engine};
use super::fields::Platform;
use super::rule::{self, ReadError};
use crate::event::{Credentials, ExecEvent, Level, ParentInfo, Privileges, ProcessImage};

/// A Linux rule whose `detection` is `body` (indented YAML lines).
fn rule_text(body: &str) -> String {
    format!(
        "title: T\nid: 0b0e0b0e-0000-4000-8000-000000000001\nstatus: test\nlevel: high\n\
         tags: [attack.t1059]\nlogsource:\n  category: process_creation\n  product: linux\n\
         detection:\n{body}"
    )
}

fn detector(body: &str) -> Detector {
    let doc = rule::parse(&rule_text(body), None).unwrap_or_else(|e| panic!("{e:?}\n{body}"));
    let (engine, skipped) = Engine::compile(vec![("t.yml".into(), doc)], Platform::Linux);
    assert!(skipped.is_empty(), "{skipped:?}");
    assert_eq!(engine.len(), 1);
    Detector::new(Arc::new(engine))
}

/// Why the rule is not loaded.
fn refused(body: &str) -> String {
    match rule::parse(&rule_text(body), None) {
        Ok(doc) => {
            let (engine, mut skipped) =
                Engine::compile(vec![("t.yml".into(), doc)], Platform::Linux);
            assert_eq!(engine.len(), 0, "loaded: {body}");
            skipped.pop().unwrap().1
        }
        Err(ReadError::Skipped(r)) | Err(ReadError::Malformed(r)) => r,
    }
}

/// An exec of `exe` with `argv`, run by root from /root, its parent bash.
fn exec(exe: &str, argv: &[&str]) -> ExecEvent {
    let mut ev = ExecEvent::new(SystemTime::now(), 4242, Some(4200), "4242:1".into());
    ev.exe = Some(exe.as_bytes().to_vec());
    ev.argv = Some(argv.iter().map(|a| a.as_bytes().to_vec()).collect());
    ev.cwd = Some(b"/root".to_vec());
    ev.user = Some(Arc::from("root"));
    ev.privileges = Some(Privileges::Linux {
        creds: Credentials {
            login_uid: Some(1000),
            ..Credentials::default()
        },
        caps: Default::default(),
        secureexec: None,
        file: None,
        raised: None,
    });
    ev.parent = Some(ParentInfo {
        pid: 4200,
        image: Arc::new(ProcessImage {
            exe: Some(b"/usr/bin/bash".to_vec()),
            argv: Some(vec![b"bash".to_vec(), b"-i".to_vec()]),
            user: Some(Arc::from("alice")),
            ..ProcessImage::default()
        }),
        start: None,
    });
    ev
}

fn fires(d: &mut Detector, ev: &ExecEvent) -> bool {
    let mut ev = ev.clone();
    d.detect(&mut ev);
    !ev.detections.is_empty()
}

/// Asserts the rule matches each of `yes` and none of `no` (argv only,
/// exe /usr/bin/prog).
fn check(body: &str, yes: &[&[&str]], no: &[&[&str]]) {
    let mut d = detector(body);
    for argv in yes {
        assert!(
            fires(&mut d, &exec("/usr/bin/prog", argv)),
            "should match {argv:?}\n{body}"
        );
    }
    for argv in no {
        assert!(
            !fires(&mut d, &exec("/usr/bin/prog", argv)),
            "should not match {argv:?}\n{body}"
        );
    }
}

#[test]
fn plain_value_is_whole_value_case_insensitive() {
    check(
        "  sel:\n    CommandLine: 'Prog -X'\n  condition: sel\n",
        &[&["prog", "-x"], &["PROG", "-X"]],
        &[&["prog", "-x", "y"], &["xprog", "-x"]],
    );
}

#[test]
fn command_line_is_argv_joined_unquoted() {
    // `sh -c 'x | sh'` must end with `| sh`, never with a quote.
    check(
        "  sel:\n    CommandLine|endswith: '| sh'\n  condition: sel\n",
        &[&["sh", "-c", "echo aWQ= | base64 -d | sh"]],
        &[&["sh", "-c", "echo | sh x"]],
    );
}

#[test]
fn contains_startswith_endswith() {
    check(
        "  sel:\n    CommandLine|contains: 'pty.spawn'\n  condition: sel\n",
        &[&["python3", "-c", "import pty;PTY.Spawn('/bin/sh')"]],
        &[&["python3", "-c", "import pty"]],
    );
    check(
        "  sel:\n    CommandLine|startswith: 'prog --'\n  condition: sel\n",
        &[&["prog", "--x"]],
        &[&["xprog", "--x"], &["prog", "-x"]],
    );
    check(
        "  sel:\n    Image|endswith: '/prog'\n  condition: sel\n",
        &[&["anything"]],
        &[],
    );
    let mut d = detector("  sel:\n    Image|endswith: '/prog'\n  condition: sel\n");
    assert!(!fires(&mut d, &exec("/usr/bin/prog2", &["prog"])));
}

#[test]
fn wildcards_and_escapes() {
    check(
        "  sel:\n    CommandLine: 'prog * -?'\n  condition: sel\n",
        &[&["prog", "a", "b", "-z"], &["prog", "", "-q"]],
        &[&["prog", "a", "-zz"], &["prog", "-z"]],
    );
    // `\*` is a star; a backslash before anything else is itself.
    check(
        "  sel:\n    CommandLine|contains: 'a\\*b C:\\dir'\n  condition: sel\n",
        &[&["prog", "a*b", "c:\\dir"]],
        &[&["prog", "axb", "c:\\dir"]],
    );
}

#[test]
fn globs_fold_case_as_the_other_forms_do() {
    // U+017F (long s) is its own lower case, though Unicode folding
    // equates it with `s`: a glob compares lower-cased text, like a plain
    // value and the prefilter, so the outcome does not depend on whether
    // the prefilter let the rule through on another field.
    let shell = "  cmd:\n    CommandLine: '*shell?x*'\n";
    check(
        &format!("{shell}  condition: cmd\n"),
        &[&["SHELL_x"]],
        &[&["\u{17F}hell_x"]],
    );
    check(
        &format!("  img:\n    Image|endswith: '/prog'\n{shell}  condition: img and not cmd\n"),
        &[&["\u{17F}hell_x"], &["other"]],
        &[&["SHELL_x"]],
    );
    // U+212A (Kelvin) lower-cases to `k`: every form matches it.
    for value in [
        "CommandLine|contains: 'kill -9'",
        "CommandLine: '*kill -? *'",
    ] {
        check(
            &format!("  sel:\n    {value}\n  condition: sel\n"),
            &[&["\u{212A}ILL", "-9", "1"], &["KILL", "-9", "1"]],
            &[&["KIL", "-9", "1"]],
        );
    }
}

#[test]
fn lists_are_or_and_all_is_and() {
    check(
        "  sel:\n    CommandLine|contains:\n      - ' -a'\n      - ' -b'\n  condition: sel\n",
        &[&["prog", "-a"], &["prog", "-b"]],
        &[&["prog", "-c"]],
    );
    check(
        "  sel:\n    CommandLine|contains|all:\n      - ' -a'\n      - ' -b'\n  condition: sel\n",
        &[&["prog", "-b", "-a"]],
        &[&["prog", "-a"], &["prog", "-b"]],
    );
}

#[test]
fn maps_are_and_lists_of_maps_are_or() {
    let body = "  sel:\n    - Image|endswith: '/prog'\n      CommandLine|contains: 'x'\n    - CommandLine|contains: 'zzz'\n  condition: sel\n";
    let mut d = detector(body);
    assert!(fires(&mut d, &exec("/usr/bin/prog", &["prog", "x"])));
    assert!(!fires(&mut d, &exec("/usr/bin/other", &["other", "x"])));
    assert!(fires(&mut d, &exec("/usr/bin/other", &["other", "zzz"])));
}

#[test]
fn re_with_flags() {
    check(
        "  sel:\n    CommandLine|re: 'prog -[0-9]+$'\n  condition: sel\n",
        &[&["prog", "-42"]],
        &[&["PROG", "-42"], &["prog", "-4x"]],
    );
    check(
        "  sel:\n    CommandLine|re|i: '^PROG -[0-9]+$'\n  condition: sel\n",
        &[&["prog", "-42"]],
        &[],
    );
    check(
        "  sel:\n    CommandLine|re|m: '^b$'\n  condition: sel\n",
        &[&["prog", "a\nb\nc"]],
        &[&["prog", "a b"]],
    );
    check(
        "  sel:\n    CommandLine|re|s: 'a.b'\n  condition: sel\n",
        &[&["prog", "a\nb"]],
        &[],
    );
    check(
        "  sel:\n    CommandLine|re: 'a.b'\n  condition: sel\n",
        &[],
        &[&["prog", "a\nb"]],
    );
    assert!(refused("  sel:\n    CommandLine|re: '(?<=x)y'\n  condition: sel\n").contains("re "));
}

#[test]
fn cased_compares_exactly() {
    check(
        "  sel:\n    CommandLine|contains|cased: 'SeCreT'\n  condition: sel\n",
        &[&["prog", "SeCreT"]],
        &[&["prog", "secret"]],
    );
}

#[test]
fn windash_accepts_every_dash() {
    check(
        "  sel:\n    CommandLine|windash|contains: ' -enc '\n  condition: sel\n",
        &[
            &["prog", "-enc", "x"],
            &["prog", "/enc", "x"],
            &["prog", "\u{2013}enc", "x"],
            &["prog", "\u{2014}enc", "x"],
            &["prog", "\u{2015}enc", "x"],
        ],
        &[&["prog", "+enc", "x"]],
    );
}

#[test]
fn base64_and_base64offset() {
    // base64("/bin/sh") is L2Jpbi9zaA==.
    check(
        "  sel:\n    CommandLine|base64|contains: '/bin/sh'\n  condition: sel\n",
        &[&["echo", "L2Jpbi9zaA=="]],
        &[&["echo", "/bin/sh"]],
    );
    // The value at each of the three offsets inside a longer encoding.
    let mut d =
        detector("  sel:\n    CommandLine|base64offset|contains: 'pty.spawn'\n  condition: sel\n");
    use base64::Engine as _;
    for prefix in ["", "a", "ab", "abc"] {
        let enc = base64::engine::general_purpose::STANDARD
            .encode(format!("{prefix}import pty.spawn('/bin/sh')"));
        assert!(
            fires(&mut d, &exec("/usr/bin/echo", &["echo", &enc])),
            "{prefix:?} {enc}"
        );
    }
    assert!(fires(
        &mut d,
        &exec("/usr/bin/echo", &["echo", "cHR5LnNwYXdu"])
    ));
    // Base64 is compared case-sensitively: this decodes to other bytes.
    assert!(!fires(
        &mut d,
        &exec("/usr/bin/echo", &["echo", "CHR5LNNWYXDU"])
    ));
}

#[test]
fn utf16_with_base64() {
    use base64::Engine as _;
    let wide: Vec<u8> = "ls".encode_utf16().flat_map(u16::to_le_bytes).collect();
    let enc = base64::engine::general_purpose::STANDARD.encode(wide);
    check(
        "  sel:\n    CommandLine|wide|base64|contains: 'ls'\n  condition: sel\n",
        &[&["x", &enc]],
        &[&["x", "bHM="]],
    );
}

#[test]
fn exists_and_null() {
    let mut d = detector("  sel:\n    CurrentDirectory|exists: true\n  condition: sel\n");
    let mut ev = exec("/usr/bin/prog", &["prog"]);
    assert!(fires(&mut d, &ev));
    ev.cwd = None;
    assert!(!fires(&mut d, &ev));
    let mut d = detector("  sel:\n    CurrentDirectory: null\n  condition: sel\n");
    assert!(fires(&mut d, &ev));
    ev.cwd = Some(b"/".to_vec());
    assert!(!fires(&mut d, &ev));
    let mut d = detector("  sel:\n    CurrentDirectory|exists: false\n  condition: sel\n");
    assert!(!fires(&mut d, &ev));
}

#[test]
fn fieldref_compares_two_fields() {
    // The parent runs as alice, the exec as root.
    let mut d = detector("  sel:\n    User|fieldref: ParentUser\n  condition: sel\n");
    let mut ev = exec("/usr/bin/prog", &["prog"]);
    assert!(!fires(&mut d, &ev));
    ev.user = Some(Arc::from("ALICE"));
    assert!(fires(&mut d, &ev));
    let mut d =
        detector("  sel:\n    CommandLine|fieldref|startswith: ParentImage\n  condition: sel\n");
    assert!(fires(
        &mut d,
        &exec("/usr/bin/x", &["/usr/bin/bash", "-c", "x"])
    ));
    assert!(!fires(&mut d, &exec("/usr/bin/x", &["bash", "-c", "x"])));
}

#[test]
fn numeric_comparisons() {
    // LogonId is the login uid, 1000 here.
    for (m, yes) in [
        ("gt: 999", true),
        ("gt: 1000", false),
        ("gte: 1000", true),
        ("lt: 1000", false),
        ("lte: 1000", true),
        ("lt: 1001", true),
    ] {
        let mut d = detector(&format!("  sel:\n    LogonId|{m}\n  condition: sel\n"));
        assert_eq!(fires(&mut d, &exec("/usr/bin/prog", &["prog"])), yes, "{m}");
    }
    let mut d = detector("  sel:\n    LogonId: 1000\n  condition: sel\n");
    assert!(fires(&mut d, &exec("/usr/bin/prog", &["prog"])));
}

#[test]
fn expand_with_an_unknown_placeholder_is_skipped() {
    let why = refused("  sel:\n    User|expand: '%admins%'\n  condition: sel\n");
    assert!(why.contains("placeholder"), "{why}");
    // Parsed all the same (the Windows corpus has one such rule).
    assert!(
        rule::parse(
            &rule_text("  sel:\n    User|expand: '%admins%'\n  condition: sel\n"),
            None
        )
        .is_ok()
    );
}

#[test]
fn keywords_match_any_field() {
    check(
        "  keywords:\n    - 'EVIL'\n    - 'bad stuff'\n  condition: keywords\n",
        &[&["prog", "some evil"], &["prog", "bad", "stuff"]],
        &[&["prog", "good"]],
    );
    // The parent's command line is a field too.
    let mut d = detector("  kw:\n    - 'bash -i'\n  condition: kw\n");
    assert!(fires(&mut d, &exec("/usr/bin/prog", &["prog"])));
}

#[test]
fn conditions() {
    let sels = "  sel_a:\n    CommandLine|contains: ' -a'\n  sel_b:\n    CommandLine|contains: ' -b'\n  filter:\n    CommandLine|contains: ' -f'\n";
    type Case<'a> = (&'a str, &'a [&'a [&'a str]], &'a [&'a [&'a str]]);
    let cases: &[Case] = &[
        ("sel_a and sel_b", &[&["p", "-a", "-b"]], &[&["p", "-a"]]),
        (
            "sel_a or sel_b",
            &[&["p", "-a"], &["p", "-b"]],
            &[&["p", "-c"]],
        ),
        (
            "sel_a and not filter",
            &[&["p", "-a"]],
            &[&["p", "-a", "-f"]],
        ),
        ("not sel_a", &[&["p", "-b"]], &[&["p", "-a"]]),
        (
            "(sel_a or sel_b) and not filter",
            &[&["p", "-b"]],
            &[&["p", "-b", "-f"], &["p"]],
        ),
        (
            "sel_a or sel_b and filter",
            &[&["p", "-a"], &["p", "-b", "-f"]],
            &[&["p", "-b"]],
        ),
        ("1 of sel_*", &[&["p", "-a"], &["p", "-b"]], &[&["p", "-f"]]),
        ("all of sel_*", &[&["p", "-a", "-b"]], &[&["p", "-a"]]),
        (
            "1 of sel_* and not 1 of filter*",
            &[&["p", "-a"]],
            &[&["p", "-a", "-f"]],
        ),
        ("1 of them", &[&["p", "-f"]], &[&["p"]]),
        (
            "all of them",
            &[&["p", "-a", "-b", "-f"]],
            &[&["p", "-a", "-b"]],
        ),
        (
            "NOT sel_a AND sel_b",
            &[&["p", "-b"]],
            &[&["p", "-a", "-b"]],
        ),
    ];
    for (cond, yes, no) in cases {
        check(&format!("{sels}  condition: {cond}\n"), yes, no);
    }
}

#[test]
fn them_leaves_out_underscore_identifiers() {
    check(
        "  sel:\n    CommandLine|contains: ' -a'\n  _aux:\n    CommandLine|contains: ' -z'\n  condition: all of them\n",
        &[&["p", "-a"]],
        &[&["p", "-z"]],
    );
}

#[test]
fn unsupported_constructs_are_named() {
    let agg = refused("  sel:\n    CommandLine: x\n  condition: sel | count() > 5\n");
    assert!(agg.contains("aggregation"), "{agg}");
    let tf = refused("  sel:\n    CommandLine: x\n  timeframe: 5m\n  condition: sel\n");
    assert!(tf.contains("timeframe"), "{tf}");
    let m = refused("  sel:\n    CommandLine|cidr: 10.0.0.0/8\n  condition: sel\n");
    assert!(m.contains("modifier cidr"), "{m}");
    let f = refused("  sel:\n    Hashes|contains: 'SHA256=00'\n  condition: sel\n");
    assert!(f.contains("field Hashes"), "{f}");
    let i = refused("  sel:\n    IntegrityLevel: High\n  condition: sel\n");
    assert!(i.contains("not available on linux"), "{i}");
    let u = refused("  sel:\n    CommandLine: x\n  condition: sel and other\n");
    assert!(u.contains("undefined search"), "{u}");
}

#[test]
fn malformed_yaml_is_malformed() {
    assert!(matches!(
        rule::parse("title: [unclosed\n", None),
        Err(ReadError::Malformed(_))
    ));
    assert!(matches!(
        rule::parse("just text", None),
        Err(ReadError::Malformed(_))
    ));
}

#[test]
fn detections_carry_the_rule_metadata_and_the_prefilter_agrees() {
    let body = "  sel:\n    CommandLine|contains: 'needle'\n  condition: sel\n";
    let mut d = detector(body);
    assert_eq!(d.engine().prefiltered(), 1);
    let mut ev = exec("/usr/bin/prog", &["prog", "a-NEEDLE-b"]);
    d.detect(&mut ev);
    let det = &ev.detections[0];
    assert_eq!(
        det.id.as_deref(),
        Some("0b0e0b0e-0000-4000-8000-000000000001")
    );
    assert_eq!(
        (det.title.as_str(), det.level, det.status.as_deref()),
        ("T", Some(Level::High), Some("test"))
    );
    assert_eq!(det.tags, ["attack.t1059"]);
    assert_eq!(super::highest_level(&ev.detections), Some(Level::High));
    // Evaluated again, the previous result is replaced, not appended to.
    ev.argv = Some(vec![b"prog".to_vec()]);
    d.detect(&mut ev);
    assert!(ev.detections.is_empty());
    // The literal must be in the rule's field: in another it does not
    // even make the rule evaluated.
    let before = d.evaluated;
    ev.argv = Some(vec![b"prog".to_vec()]);
    ev.cwd = Some(b"/needle".to_vec());
    d.detect(&mut ev);
    assert!(ev.detections.is_empty());
    assert_eq!(d.evaluated, before, "prefiltered out by field");
    // A `not` rule cannot be prefiltered: it is evaluated on every exec.
    let d = detector("  sel:\n    CommandLine|contains: 'x'\n  condition: not sel\n");
    assert_eq!(d.engine().prefiltered(), 0);
}

#[test]
fn bytes_that_are_not_utf8_never_join_a_match() {
    let mut d = detector("  sel:\n    CommandLine|contains: 'ab'\n  condition: sel\n");
    let mut ev = exec("/usr/bin/prog", &["prog"]);
    ev.argv = Some(vec![b"prog".to_vec(), b"a\xffb".to_vec()]);
    assert!(!fires(&mut d, &ev));
    ev.argv = Some(vec![b"prog".to_vec(), b"\xffab".to_vec()]);
    assert!(fires(&mut d, &ev));
}

#[test]
fn windows_fields_on_windows() {
    let doc = rule::parse(
        &rule_text(
            "  sel:\n    IntegrityLevel: System\n    User|contains: 'AUTHORI'\n  condition: sel\n",
        )
        .replace("product: linux", "product: windows"),
        Some("windows"),
    )
    .unwrap();
    let (engine, skipped) = Engine::compile(vec![("w.yml".into(), doc)], Platform::Windows);
    assert!(skipped.is_empty(), "{skipped:?}");
    let mut d = Detector::new(Arc::new(engine));
    let mut ev = exec("C:\\Windows\\System32\\cmd.exe", &[]);
    ev.argv = None;
    ev.command_line = Some(b"cmd.exe /c whoami".to_vec());
    ev.user = Some(Arc::from("NT AUTHORITY\\SYSTEM"));
    ev.privileges = Some(Privileges::Windows(crate::event::WindowsToken {
        integrity: Some(crate::event::IntegrityLevel::System),
        ..Default::default()
    }));
    let mut d2 = Detector::new(Arc::clone(d.engine()));
    assert!(fires(&mut d, &ev));
    ev.privileges = None;
    assert!(!fires(&mut d2, &ev));
}

/// Whether the prefilter lets the rule be evaluated on an exec of `exe`
/// with `argv`.
fn evaluated(d: &mut Detector, exe: &str, argv: &[&str]) -> bool {
    let before = d.evaluated;
    d.detect(&mut exec(exe, argv));
    d.evaluated > before
}

#[test]
fn anchored_literals_are_looked_for_only_at_their_end() {
    let mut d = detector("  sel:\n    Image|endswith: '/Nmap'\n  condition: sel\n");
    assert!(!evaluated(&mut d, "/opt/nmap/bin/x", &["x"]), "mid-value");
    assert!(evaluated(&mut d, "/usr/bin/NMAP", &["nmap"]), "at the end");
    let mut d = detector("  sel:\n    CommandLine|startswith: 'Sudo '\n  condition: sel\n");
    assert!(!evaluated(&mut d, "/usr/bin/x", &["x", "sudo", "id"]));
    assert!(evaluated(&mut d, "/usr/bin/sudo", &["SUDO", "id"]));
    // An exact value: only the whole value.
    let mut d = detector("  sel:\n    Image: '/usr/bin/id'\n  condition: sel\n");
    assert!(!evaluated(&mut d, "/usr/bin/idx", &["x"]));
    assert!(!evaluated(&mut d, "/x/usr/bin/id", &["x"]));
    assert!(evaluated(&mut d, "/USR/bin/id", &["id"]));
    // A glob's last piece is anchored at the end, its first at the start.
    let mut d = detector("  sel:\n    CommandLine: '*x*/whoami'\n  condition: sel\n");
    assert!(!evaluated(&mut d, "/usr/bin/x", &["x", "/whoami", "-a"]));
    assert!(evaluated(&mut d, "/usr/bin/x", &["x", "/WhoAmI"]));
    // Values that are not ASCII are compared lower-cased.
    let mut d = detector("  sel:\n    CommandLine|endswith: 'ÉTÉ'\n  condition: sel\n");
    assert!(!evaluated(&mut d, "/usr/bin/x", &["x", "été-1"]));
    assert!(evaluated(&mut d, "/usr/bin/x", &["x", "Été"]));
    assert!(fires(&mut d, &exec("/usr/bin/x", &["x", "Été"])));
    let mut d = detector("  sel:\n    CommandLine|contains: 'Ärger'\n  condition: sel\n");
    assert!(!evaluated(&mut d, "/usr/bin/x", &["x", "arger"]));
    assert!(fires(&mut d, &exec("/usr/bin/x", &["x", "VIEL ÄRGER"])));
}

#[test]
fn unanchored_literals_are_found_anywhere_by_their_prefix() {
    // Literals sharing their first bytes, short ones, and overlapping
    // occurrences.
    let body = "  a:\n    CommandLine|contains: ['/etc/passwd', '/etc/shadow', '-c']\n  \
                b:\n    Image|endswith: '/nope'\n  condition: a or b\n";
    let mut d = detector(body);
    assert_eq!(d.engine().prefiltered(), 1);
    assert!(evaluated(
        &mut d,
        "/usr/bin/cat",
        &["cat", "/etc/pass", "/etc/shadoW2"]
    ));
    assert!(!evaluated(
        &mut d,
        "/usr/bin/cat",
        &["cat", "/etc/group", "/etc/pas"]
    ));
    assert!(evaluated(
        &mut d,
        "/usr/bin/cat",
        &["cat", "/etc//etc/PASSWD"]
    ));
    assert!(evaluated(&mut d, "/usr/bin/sh", &["sh", "-C", "x"]));
    assert!(fires(
        &mut d,
        &exec("/usr/bin/cat", &["cat", "/ETC/Shadow"])
    ));
    assert!(!fires(&mut d, &exec("/usr/bin/cat", &["cat", "/etc/sha"])));
}
