//! `--syslog` against a real receiver: Debian's rsyslogd (installed by
//! ci/rsyslog.sh), run by the test on 127.0.0.1 and a socket in a temp
//! directory, never the host's own syslog daemon. It writes what it
//! receives with dist/rsyslog-procwatch.conf, the example README.md gives,
//! so the fields checked are those rsyslog parsed.

use std::fs;
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::Value;

/// The example configuration, as README.md shows it.
const EXAMPLE: &str = include_str!("../../dist/rsyslog-procwatch.conf");

/// A port on 127.0.0.1 free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One line rsyslog wrote, split as the example template lays it out.
#[derive(Debug)]
struct Received {
    input: String,
    priority: String,
    timestamp: String,
    hostname: String,
    app: String,
    procid: String,
    msgid: String,
    sd: String,
    /// Null when truncated.
    msg: Value,
}

fn parse(line: &str) -> Received {
    let f: Vec<&str> = line.splitn(8, ' ').collect();
    assert_eq!(f.len(), 8, "{line}");
    let (sd, msg) = match f[7].strip_prefix("- ") {
        Some(msg) => ("-", msg),
        None => f[7].split_at(f[7].find("] ").expect(line) + 2),
    };
    Received {
        input: f[0].into(),
        priority: f[1].into(),
        timestamp: f[2].into(),
        hostname: f[3].into(),
        app: f[4].into(),
        procid: f[5].into(),
        msgid: f[6].into(),
        sd: sd.trim().into(),
        // Other processes' long execs arrive truncated (and flagged).
        msg: if sd.contains("truncated=\"true\"") {
            Value::Null
        } else {
            // A JSONL MSG is checked against schema/ like any line.
            parse_line(msg)
        },
    }
}

/// An rsyslogd of the test's own.
struct Rsyslog {
    dir: PathBuf,
    conf: PathBuf,
    out: PathBuf,
    child: Option<Child>,
    tcp: u16,
    udp: u16,
    tls: u16,
}

impl Rsyslog {
    /// Writes the configuration (the example, plus the test's inputs and
    /// a TLS certificate from a CA made here) and starts rsyslogd.
    fn start(dir: &Path) -> Rsyslog {
        let d = dir.display();
        make_ca(dir);
        let (tcp, udp, tls) = (free_port(), free_port(), free_port());
        let out = dir.join("events.log");
        let inputs = format!(
            r#"global(workDirectory="{d}" maxMessageSize="64k")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="{d}/log.sock" UseSpecialParser="off" ParseHostname="on" RateLimit.Interval="0")
module(load="imudp")
input(type="imudp" address="127.0.0.1" port="{udp}" name="udp")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="{tcp}" name="tcp")
input(type="imtcp" address="127.0.0.1" port="{tls}" name="tls"
      StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="anon"
      StreamDriver.CAFile="{d}/ca.pem" StreamDriver.CertFile="{d}/server.pem"
      StreamDriver.KeyFile="{d}/server.key")
"#
        );
        let conf = dir.join("rsyslog.conf");
        let example = EXAMPLE.replace("/var/log/procwatch/events.log", out.to_str().unwrap());
        assert_ne!(example, EXAMPLE, "the example names its output file");
        fs::write(&conf, inputs + &example).unwrap();
        let mut r = Rsyslog {
            dir: dir.to_owned(),
            conf,
            out,
            child: None,
            tcp,
            udp,
            tls,
        };
        r.restart();
        r
    }

    /// Starts rsyslogd (again) and waits until its inputs take messages.
    fn restart(&mut self) {
        let pidfile = self.dir.join("rsyslogd.pid");
        let _ = fs::remove_file(&pidfile);
        let child = Command::new("rsyslogd")
            .arg("-n")
            .arg("-f")
            .arg(&self.conf)
            .arg("-i")
            .arg(&pidfile)
            .stdin(Stdio::null())
            .spawn()
            .expect("rsyslogd (ci/rsyslog.sh installs it)");
        self.child = Some(child);
        // UDP loses what arrives before the input is up: probe until a
        // probe comes through. The stream inputs are up by then too, and
        // procwatch retries those anyway.
        let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
        let marker = unique_tag("probe");
        let deadline = Instant::now() + PATIENCE;
        while !read(&self.out).contains(&marker) {
            self.assert_running();
            assert!(Instant::now() < deadline, "rsyslogd never took a message");
            let msg = format!("<30>1 - probe procwatch - probe - {{\"probe\":\"{marker}\"}}");
            let _ = probe.send_to(msg.as_bytes(), ("127.0.0.1", self.udp));
            thread::sleep(Duration::from_millis(100));
        }
        while TcpStream::connect(("127.0.0.1", self.tcp)).is_err() {
            assert!(Instant::now() < deadline, "rsyslogd's imtcp never listened");
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn assert_running(&mut self) {
        let child = self.child.as_mut().unwrap();
        if let Some(st) = child.try_wait().unwrap() {
            panic!("rsyslogd exited with {st}; config {}", self.conf.display());
        }
    }

    /// SIGKILL: no chance to say goodbye.
    fn kill(&mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// Every procwatch message received so far.
    fn received(&self) -> Vec<Received> {
        read(&self.out)
            .lines()
            .filter(|l| !l.contains(" probe "))
            .map(parse)
            .collect()
    }

    /// The execs of `tag` received by `input`, by exec_id.
    fn tagged(&self, input: &str, tag: &str) -> Vec<String> {
        let mut ids: Vec<String> = self
            .received()
            .into_iter()
            .filter(|r| r.input == input && r.msgid == "exec")
            .filter(|r| !execs_with_tag(std::slice::from_ref(&r.msg), tag).is_empty())
            .map(|r| r.msg["exec_id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.kill();
        }
    }
}

fn read(p: &Path) -> String {
    String::from_utf8_lossy(&fs::read(p).unwrap_or_default()).into_owned()
}

/// A CA and a certificate for localhost signed by it, with the openssl
/// CLI (ci/rsyslog.sh installs it).
fn make_ca(dir: &Path) {
    let ssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    ssl(&[
        &["req", "-x509"],
        &ec[..],
        &[
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=pwtest CA",
        ],
    ]
    .concat());
    ssl(&[
        &["req"],
        &ec[..],
        &[
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
    ]
    .concat());
    fs::write(
        dir.join("ext"),
        "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    ssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext",
    ]);
}

/// procwatch with `--syslog` to each of `urls` (and jsonl on stdout).
/// `--exe` for the programs in `dir`: only the test's own execs reach
/// rsyslog and the file the test reads again and again. A busy shared host
/// (an exec storm) would otherwise send it gigabytes.
fn only_from(dir: &Path) -> String {
    format!("{}/*", dir.display())
}

fn monitor(r: &Rsyslog, urls: &[String]) -> Monitor {
    let ca = r.dir.join("ca.pem");
    let exe = only_from(&r.dir);
    let mut args = vec![
        "--format",
        "jsonl",
        "--no-hash",
        "--exe",
        &exe,
        "--syslog-ca",
        ca.to_str().unwrap(),
    ];
    for u in urls {
        args.extend(["--syslog", u.as_str()]);
    }
    Monitor::start(&args)
}

/// Waits until `cond` holds, failing after [`PATIENCE`] with `what`.
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(50));
    }
}

#[root_test("runs the eBPF monitor")]
fn each_transport_delivers_the_exec_as_rsyslog_parses_it() {
    let dir = open_tempdir();
    let r = Rsyslog::start(dir.path());
    let urls = [
        format!("unix://{}/log.sock", dir.path().display()),
        format!("udp://127.0.0.1:{}", r.udp),
        format!("tcp://127.0.0.1:{}", r.tcp),
        format!("tls://localhost:{}", r.tls),
    ];
    let echo = copy_program("/bin/echo", dir.path(), "echo", 0o755);
    let mut mon = monitor(&r, &urls);
    let tag = unique_tag("syslog");
    run_ok(
        Command::new(&echo)
            .args([&tag, "two words", "é"])
            .stdout(Stdio::null()),
    );
    let exec = mon.wait_for_exec(&tag);
    let start = mon.wait_for("\"start\"", |v| v["event"] == "start");
    let inputs = ["imuxsock", "udp", "tcp", "tls"];
    wait_until("the exec over every transport", || {
        inputs.iter().all(|i| !r.tagged(i, &tag).is_empty())
    });
    let procwatch = mon.pid().to_string();
    for input in inputs {
        let got: Vec<Received> = r
            .received()
            .into_iter()
            .filter(|m| m.input == input && m.msg["exec_id"] == exec["exec_id"])
            .collect();
        assert_eq!(got.len(), 1, "{input}: {got:?}");
        let m = &got[0];
        assert_eq!(m.app, "procwatch", "{m:?}");
        assert_eq!(m.msgid, "exec", "{m:?}");
        assert_eq!(m.procid, procwatch, "{m:?}");
        assert_eq!(m.priority, "daemon.info", "{m:?}");
        assert_eq!(m.sd, "-", "{m:?}");
        assert_eq!(m.hostname, start["hostname"].as_str().unwrap(), "{m:?}");
        assert_eq!(
            m.msg["argv"],
            serde_json::json!([echo, tag, "two words", "é"]),
            "{m:?}"
        );
        // MSG is the line the main output has.
        assert_eq!(m.msg, exec, "{input}");
        // imuxsock stamps its own reception time; the others keep the
        // header's, which is the event's (rsyslog writes +00:00 for Z).
        if input != "imuxsock" {
            let t = exec["time"].as_str().unwrap().trim_end_matches('Z');
            assert_eq!(
                m.timestamp.trim_end_matches("+00:00").trim_end_matches('Z'),
                t
            );
        }
    }
    let done = mon.stop();
    done.assert_clean_exit();
    let lines = done.json_lines();
    assert!(
        !lines
            .iter()
            .any(|v| v["event"] == "loss" && v["place"] == "syslog"),
        "nothing was lost: {:?}",
        lines
            .iter()
            .filter(|v| v["event"] == "loss")
            .collect::<Vec<_>>()
    );
    wait_until("the stop event over every transport", || {
        let got = r.received();
        inputs
            .iter()
            .all(|i| got.iter().any(|m| m.input == *i && m.msgid == "stop"))
    });
}

#[root_test("runs the eBPF monitor")]
fn rsyslog_killed_and_restarted_mid_run_every_exec_is_delivered_or_counted_lost() {
    let dir = open_tempdir();
    let mut r = Rsyslog::start(dir.path());
    let urls = [
        format!("unix://{}/log.sock", dir.path().display()),
        format!("tcp://127.0.0.1:{}", r.tcp),
    ];
    let inputs = ["imuxsock", "tcp"];
    let true_ = copy_true(dir.path(), "true", 0o755);
    let mut mon = monitor(&r, &urls);
    let tag = unique_tag("syslog-restart");
    let mut sent = Vec::new();
    let mut run = |mon: &mut Monitor, n: usize| {
        for _ in 0..n {
            let i = sent.len().to_string();
            run_ok(Command::new(&true_).args([&tag, &i]));
            let ev = mon.wait_for(&tag, |v| {
                v["event"] == "exec" && v["argv"][1] == tag.as_str() && v["argv"][2] == i.as_str()
            });
            sent.push(ev["exec_id"].as_str().unwrap().to_owned());
        }
    };
    run(&mut mon, 5);
    wait_until("the first execs", || {
        inputs.iter().all(|i| r.tagged(i, &tag).len() == 5)
    });
    // Down: what procwatch sends now waits in its queue.
    r.kill();
    run(&mut mon, 5);
    r.restart();
    run(&mut mon, 5);
    let all = |r: &Rsyslog| inputs.iter().all(|i| r.tagged(i, &tag).len() == 15);
    // Delivered in the end, unless counted as lost: wait a while, then
    // let the sum decide.
    let deadline = Instant::now() + PATIENCE;
    while !all(&r) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(100));
    }
    let done = mon.stop();
    done.assert_clean_exit();
    let lines = done.json_lines();
    let lost: u64 = lines
        .iter()
        .filter(|v| v["event"] == "loss" && v["place"] == "syslog")
        .map(|v| v["dropped"].as_u64().unwrap())
        .sum();
    let stop_at = lines.iter().position(|v| v["event"] == "stop").unwrap();
    assert_eq!(stop_at, lines.len() - 1, "the stop event is last");
    for input in inputs {
        let got = r.tagged(input, &tag);
        assert!(got.iter().all(|id| sent.contains(id)), "{input}: {got:?}");
        assert!(
            got.len() as u64 + lost >= sent.len() as u64,
            "{input}: {} delivered + {lost} counted lost < {} sent",
            got.len(),
            sent.len()
        );
        eprintln!(
            "{input}: {} of {} delivered, {lost} counted lost",
            got.len(),
            sent.len()
        );
    }
}

#[test]
fn the_readme_shows_the_tested_rsyslog_example() {
    let readme = include_str!("../../README.md");
    assert!(
        readme.contains(&format!("```\n{EXAMPLE}```")),
        "README.md must show dist/rsyslog-procwatch.conf verbatim"
    );
}

#[root_test("runs the eBPF monitor")]
fn sighup_still_reopens_the_output_file_while_syslog_is_sent() {
    use crate::common::output::Running;
    let dir = open_tempdir();
    let r = Rsyslog::start(dir.path());
    let path = dir.path().join("out.jsonl");
    let rotated = dir.path().join("out.jsonl.1");
    let tcp = format!("tcp://127.0.0.1:{}", r.tcp);
    let true_ = copy_true(dir.path(), "true", 0o755);
    let mon = Running::start(&[
        "--format",
        "jsonl",
        "--no-hash",
        "--exe",
        &only_from(dir.path()),
        "-o",
        path.to_str().unwrap(),
        "--syslog",
        &tcp,
    ]);
    let tag = unique_tag("syslog-hup");
    let file_has = |p: &Path, n: &str| {
        json_lines(&read(p))
            .iter()
            .any(|v| v["event"] == "exec" && v["argv"][1] == tag.as_str() && v["argv"][2] == n)
    };
    wait_until("the start line", || read(&path).contains("\"start\""));
    run_ok(Command::new(&true_).args([&tag, "1"]));
    wait_until("the first exec in the file", || file_has(&path, "1"));
    fs::rename(&path, &rotated).unwrap();
    mon.signal(libc::SIGHUP);
    wait_until("the reopened file", || {
        read(&path).contains("\"continuation\":true")
    });
    run_ok(Command::new(&true_).args([&tag, "2"]));
    wait_until("the second exec in the new file", || file_has(&path, "2"));
    wait_until("both execs over syslog", || {
        r.tagged("tcp", &tag).len() == 2
    });
    mon.signal(libc::SIGINT);
    let end = mon.wait();
    assert!(end.status.success(), "{}", end.stderr);
    assert!(file_has(&rotated, "1") && !file_has(&rotated, "2"));
    assert!(!file_has(&path, "1"));
}

#[root_test("runs the eBPF monitor")]
fn a_message_over_syslog_max_arrives_truncated_and_flagged() {
    let dir = open_tempdir();
    let r = Rsyslog::start(dir.path());
    let tcp = format!("tcp://127.0.0.1:{}", r.tcp);
    let true_ = copy_true(dir.path(), "true", 0o755);
    let mut mon = Monitor::start(&[
        "--format",
        "jsonl",
        "--no-hash",
        "--exe",
        &only_from(dir.path()),
        "--syslog",
        &tcp,
        "--syslog-max",
        "1000",
    ]);
    let tag = unique_tag("syslog-max");
    let long = "y".repeat(3000);
    run_ok(Command::new(&true_).args([&tag, &long]));
    let exec = mon.wait_for_exec(&tag);
    let mut got = None;
    wait_until("the truncated exec", || {
        got = read(&r.out)
            .lines()
            .find(|l| l.contains(&tag) && l.starts_with("tcp "))
            .map(str::to_owned);
        got.is_some()
    });
    let line = got.unwrap();
    // Everything after the input name and facility.severity is what
    // procwatch sent (rsyslog rewrites only the timestamp's Z).
    let size = serde_json::to_string(&exec).unwrap().len();
    let sd = format!(" exec [procwatch@32473 truncated=\"true\" size=\"{size}\"] {{");
    assert!(line.contains(&sd), "{line}");
    let msg = line.split_once("\"] ").unwrap().1;
    assert!(msg.len() < 1000 && msg.len() > 850, "{}", msg.len());
    assert!(serde_json::from_str::<Value>(msg).is_err());
    mon.stop().assert_clean_exit();
}
