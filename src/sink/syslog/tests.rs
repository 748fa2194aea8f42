//! The syslog sink against receivers in this process (the integration
//! tests use rsyslog): framing, reconnection and loss accounting.

use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use super::*;
use crate::event::{Counters, StopInfo};
use crate::sink::testutil::*;

fn opts(target: Target) -> SyslogOptions {
    SyslogOptions {
        targets: vec![target],
        ..SyslogOptions::default()
    }
}

fn tcp_target(port: u16) -> Target {
    format!("tcp://127.0.0.1:{port}").parse().unwrap()
}

fn exec_with_pid(pid: u32) -> Event {
    let mut ev = exec_event();
    ev.pid = pid;
    Event::Exec(Box::new(ev))
}

fn stop() -> Event {
    Event::Stop(StopInfo {
        time: t0(),
        reason: "signal".into(),
        counters: Counters::default(),
    })
}

/// Reads one octet-counted frame.
fn frame(r: &mut BufReader<TcpStream>) -> String {
    let mut len = Vec::new();
    r.read_until(b' ', &mut len).unwrap();
    let n: usize = std::str::from_utf8(&len[..len.len() - 1])
        .unwrap()
        .parse()
        .unwrap();
    let mut msg = vec![0; n];
    r.read_exact(&mut msg).unwrap();
    String::from_utf8(msg).unwrap()
}

fn json_of(msg: &str) -> serde_json::Value {
    serde_json::from_str(&msg[msg.find(" {").unwrap() + 1..]).unwrap()
}

/// What `accept` needs of a TCP or Unix stream listener.
trait Listener {
    type Stream: Read;
    fn nonblocking(&self, on: bool);
    fn try_accept(&self) -> std::io::Result<Self::Stream>;
    /// Blocking reads that fail the test (rather than hang) after a minute.
    fn ready(s: &Self::Stream);
}

macro_rules! listener {
    ($listener:ty, $stream:ty) => {
        impl Listener for $listener {
            type Stream = $stream;
            fn nonblocking(&self, on: bool) {
                self.set_nonblocking(on).unwrap();
            }
            fn try_accept(&self) -> std::io::Result<$stream> {
                self.accept().map(|(s, _)| s)
            }
            fn ready(s: &$stream) {
                s.set_nonblocking(false).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
            }
        }
    };
}

listener!(TcpListener, TcpStream);
#[cfg(unix)]
listener!(
    std::os::unix::net::UnixListener,
    std::os::unix::net::UnixStream
);

/// Accepts the sink's connection; fails the test (rather than hang) if
/// none comes.
fn accept<L: Listener>(l: &L) -> BufReader<L::Stream> {
    l.nonblocking(true);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let s = loop {
        match l.try_accept() {
            Ok(s) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(std::time::Instant::now() < deadline, "no connection");
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("accept: {e}"),
        }
    };
    L::ready(&s);
    BufReader::new(s)
}

/// A JSONL sink fanned out to `o`'s targets, and what it writes to its
/// main output.
fn fan_out(o: &SyslogOptions, host: &str) -> (Box<dyn Sink>, SharedBuf) {
    let primary = SharedBuf::default();
    let sink = attach(
        crate::sink::make_sink(
            Format::Jsonl,
            Box::new(primary.clone()),
            true,
            Default::default(),
        ),
        o,
        host,
    )
    .unwrap();
    (sink, primary)
}

/// The main output's lines, parsed.
fn json_lines(primary: &SharedBuf) -> Vec<serde_json::Value> {
    primary
        .string()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn tcp_frames_are_octet_counted_and_a_closed_receiver_is_reconnected() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let (mut sink, primary) = fan_out(&opts(tcp_target(port)), "host a");
    sink.write_event(&exec_with_pid(111)).unwrap();
    let mut r = accept(&l);
    let first = frame(&mut r);
    assert!(first.starts_with("<30>1 2026-11-26T05:26:10.123456Z host_a procwatch "));
    assert!(first.contains(" exec - {"), "{first}");
    assert_eq!(json_of(&first)["pid"], 111);
    assert_eq!(
        json_of(&first)["argv"],
        serde_json::json!(["ls", "-la", "/tmp"])
    );
    // The receiver goes away; the next message must not go into the dead
    // connection.
    drop(r);
    std::thread::sleep(Duration::from_millis(50));
    sink.write_event(&exec_with_pid(222)).unwrap();
    let mut r = accept(&l);
    assert_eq!(json_of(&frame(&mut r))["pid"], 222);
    sink.write_event(&stop()).unwrap();
    sink.flush().unwrap();
    assert!(frame(&mut r).contains(" stop - {"));
    drop(sink);
    assert!(
        !primary.string().contains("\"loss\""),
        "{}",
        primary.string()
    );
}

/// Three execs and the stop event through a fan-out to a port where
/// nothing listens, with `buffer` bytes of queue: the main output's event
/// kinds and the loss events' dropped counts.
fn to_a_dead_receiver(buffer: usize) -> (Vec<String>, Vec<u64>) {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut o = opts(tcp_target(port));
    o.buffer = buffer;
    let (mut sink, primary) = fan_out(&o, "h");
    for pid in 1..=3 {
        sink.write_event(&exec_with_pid(pid)).unwrap();
    }
    sink.write_event(&stop()).unwrap();
    sink.flush().unwrap();
    drop(sink);
    let lines = json_lines(&primary);
    let kinds = lines
        .iter()
        .map(|v| v["event"].as_str().unwrap().to_owned())
        .collect();
    let mut total = 0;
    let dropped = lines
        .iter()
        .filter(|v| v["event"] == "loss")
        .map(|v| {
            assert_eq!(v["place"], "syslog", "{v}");
            total += v["dropped"].as_u64().unwrap();
            assert_eq!(v["total"], total, "{v}");
            v["dropped"].as_u64().unwrap()
        })
        .collect();
    (kinds, dropped)
}

#[test]
fn overflow_is_counted_in_band_before_the_stop_event() {
    // No message fits: each is dropped when written, and the loss is
    // reported at the latest before the stop event.
    let (kinds, dropped) = to_a_dead_receiver(1);
    assert_eq!(kinds.last().map(String::as_str), Some("stop"), "{kinds:?}");
    assert_eq!(dropped.iter().sum::<u64>(), 3, "{kinds:?}");
}

#[test]
fn messages_undelivered_at_exit_are_counted_before_the_stop_event() {
    // All fit, none can be sent: the stop event waits DRAIN_WAIT, then
    // gives them up.
    let (kinds, dropped) = to_a_dead_receiver(1 << 20);
    assert_eq!(
        kinds,
        ["exec", "exec", "exec", "loss", "stop"].map(String::from),
        "{kinds:?}"
    );
    assert_eq!(dropped, [3]);
}

#[cfg(unix)]
#[test]
fn unix_datagram_socket_gets_one_message_per_datagram() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.sock");
    let rx = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    rx.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let target: Target = format!("unix://{}", path.display()).parse().unwrap();
    let (mut sink, _) = fan_out(&opts(target), "h");
    for pid in [7, 8] {
        sink.write_event(&exec_with_pid(pid)).unwrap();
    }
    let mut buf = vec![0; 65536];
    for pid in [7, 8] {
        let n = rx.recv(&mut buf).unwrap();
        let msg = std::str::from_utf8(&buf[..n]).unwrap();
        assert!(msg.starts_with("<30>1 "), "{msg}");
        assert_eq!(json_of(msg)["pid"], pid);
    }
}

#[test]
fn a_datagram_too_large_is_counted_and_does_not_block_the_next() {
    let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    rx.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let port = rx.local_addr().unwrap().port();
    let mut o = opts(format!("udp://127.0.0.1:{port}").parse().unwrap());
    o.max_message = 1 << 20;
    let (mut sink, primary) = fan_out(&o, "h");
    let mut huge = exec_event();
    huge.argv = Some(vec![vec![b'x'; 70_000]]);
    sink.write_event(&Event::Exec(Box::new(huge))).unwrap();
    sink.write_event(&exec_with_pid(5)).unwrap();
    let mut buf = vec![0; 65536];
    let n = rx.recv(&mut buf).unwrap();
    assert_eq!(json_of(std::str::from_utf8(&buf[..n]).unwrap())["pid"], 5);
    sink.write_event(&stop()).unwrap();
    sink.flush().unwrap();
    drop(sink);
    let loss: Vec<serde_json::Value> = json_lines(&primary)
        .into_iter()
        .filter(|v| v["event"] == "loss")
        .collect();
    assert_eq!(loss.len(), 1, "{loss:?}");
    assert_eq!(
        (&loss[0]["place"], &loss[0]["dropped"]),
        (&"syslog".into(), &1.into())
    );
}

#[cfg(unix)]
#[test]
fn unix_stream_socket_gets_one_message_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.sock");
    let l = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let target: Target = format!("unix://{}", path.display()).parse().unwrap();
    let (mut sink, _) = fan_out(&opts(target), "h");
    for pid in [7, 8] {
        sink.write_event(&exec_with_pid(pid)).unwrap();
    }
    let mut lines = accept(&l).lines();
    for pid in [7, 8] {
        let msg = lines.next().unwrap().unwrap();
        assert!(msg.starts_with("<30>1 "), "{msg}");
        assert_eq!(json_of(&msg)["pid"], pid);
    }
}
