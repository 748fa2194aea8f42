//! Connections to a [`Target`] and the framing each one needs.
//!
//! Every socket has send (and, for TLS, receive) timeouts, so a receiver
//! that stops reading holds up only the sender thread, and only until the
//! timeout: then the connection is dropped and made again.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};

use super::target::Target;

/// Longest a connect or a write may take before the connection counts as
/// broken.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// An open connection.
pub enum Conn {
    Udp(UdpSocket),
    #[cfg(unix)]
    UnixDgram(std::os::unix::net::UnixDatagram),
    /// A stream socket at a `unix://` path: one message per line (the
    /// rendered event holds no newline).
    #[cfg(unix)]
    UnixStream(std::os::unix::net::UnixStream),
    Tcp(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

fn tcp(addr: (&str, u16)) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the name resolves to no address");
    for a in addr.to_socket_addrs()? {
        match TcpStream::connect_timeout(&a, IO_TIMEOUT) {
            Ok(s) => {
                s.set_write_timeout(Some(IO_TIMEOUT))?;
                s.set_read_timeout(Some(IO_TIMEOUT))?;
                s.set_nodelay(true)?;
                return Ok(s);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

impl Conn {
    /// Connects to `target`; `tls` is the configuration for `tls://`.
    pub fn connect(target: &Target, tls: Option<&Arc<ClientConfig>>) -> io::Result<Conn> {
        match target {
            #[cfg(unix)]
            Target::Unix(path) => {
                use std::os::unix::net::{UnixDatagram, UnixStream};
                let d = UnixDatagram::unbound()?;
                match d.connect(path) {
                    Ok(()) => {
                        d.set_write_timeout(Some(IO_TIMEOUT))?;
                        Ok(Conn::UnixDgram(d))
                    }
                    Err(e) if e.raw_os_error() == Some(libc::EPROTOTYPE) => {
                        let s = UnixStream::connect(path)?;
                        s.set_write_timeout(Some(IO_TIMEOUT))?;
                        Ok(Conn::UnixStream(s))
                    }
                    Err(e) => Err(e),
                }
            }
            #[cfg(not(unix))]
            Target::Unix(_) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "unix sockets exist only on Unix",
            )),
            Target::Udp(hp) => {
                let mut last =
                    io::Error::new(io::ErrorKind::NotFound, "the name resolves to no address");
                for a in hp.addr().to_socket_addrs()? {
                    let local = if a.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
                    let s = UdpSocket::bind(local)?;
                    match s.connect(a) {
                        Ok(()) => {
                            s.set_write_timeout(Some(IO_TIMEOUT))?;
                            return Ok(Conn::Udp(s));
                        }
                        Err(e) => last = e,
                    }
                }
                Err(last)
            }
            Target::Tcp(hp) => Ok(Conn::Tcp(tcp(hp.addr())?)),
            Target::Tls(hp) => {
                let config = tls.ok_or_else(|| io::Error::other("no TLS configuration"))?;
                let name = ServerName::try_from(hp.host.clone())
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
                let conn =
                    ClientConnection::new(Arc::clone(config), name).map_err(io::Error::other)?;
                let mut s = StreamOwned::new(conn, tcp(hp.addr())?);
                // Handshake now, so a certificate error shows as a connect
                // error rather than at the first message.
                while s.conn.is_handshaking() {
                    s.conn.complete_io(&mut s.sock)?;
                }
                Ok(Conn::Tls(Box::new(s)))
            }
        }
    }

    /// Whether messages go one per datagram.
    pub fn is_datagram(&self) -> bool {
        match self {
            Conn::Udp(_) => true,
            #[cfg(unix)]
            Conn::UnixDgram(_) => true,
            _ => false,
        }
    }

    /// Sends one message as a datagram.
    pub fn send_datagram(&mut self, msg: &[u8]) -> io::Result<()> {
        let n = match self {
            Conn::Udp(s) => s.send(msg)?,
            #[cfg(unix)]
            Conn::UnixDgram(s) => s.send(msg)?,
            _ => return Err(io::Error::other("not a datagram socket")),
        };
        if n != msg.len() {
            return Err(io::Error::other("datagram cut short"));
        }
        Ok(())
    }

    /// Appends `msg` to `out` framed for this stream: octet counting
    /// (`LEN SP MSG`, RFC 6587) over TCP and TLS, a line on a Unix stream.
    pub fn frame(&self, out: &mut Vec<u8>, msg: &[u8]) {
        #[cfg(unix)]
        if let Conn::UnixStream(_) = self {
            out.extend_from_slice(msg);
            out.push(b'\n');
            return;
        }
        out.extend_from_slice(itoa::Buffer::new().format(msg.len()).as_bytes());
        out.push(b' ');
        out.extend_from_slice(msg);
    }

    /// Writes framed bytes to a stream, all or an error.
    pub fn send_stream(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Conn::Tcp(s) => s.write_all(bytes),
            #[cfg(unix)]
            Conn::UnixStream(s) => s.write_all(bytes),
            Conn::Tls(s) => {
                s.write_all(bytes)?;
                s.flush()
            }
            _ => Err(io::Error::other("not a stream socket")),
        }
    }

    /// Whether a stream's receiver has closed it (or reset it). A receiver
    /// sends nothing but TLS records, so anything readable other than
    /// those is an end: checking before each write keeps a message from
    /// going into a socket whose peer is gone, where it would vanish.
    pub fn peer_closed(&mut self) -> bool {
        let mut scratch = [0u8; 512];
        let probe = |s: &TcpStream| -> Option<bool> {
            s.set_nonblocking(true).ok()?;
            let r = s.peek(&mut [0u8; 1]);
            s.set_nonblocking(false).ok()?;
            Some(match r {
                Ok(0) => true,
                Ok(_) => false,
                Err(e) => e.kind() != io::ErrorKind::WouldBlock,
            })
        };
        match self {
            Conn::Tcp(s) => probe(s).unwrap_or(true),
            #[cfg(unix)]
            Conn::UnixStream(s) => {
                if s.set_nonblocking(true).is_err() {
                    return true;
                }
                let r = s.read(&mut scratch);
                let _ = s.set_nonblocking(false);
                match r {
                    Ok(0) => true,
                    Ok(_) => false,
                    Err(e) => e.kind() != io::ErrorKind::WouldBlock,
                }
            }
            Conn::Tls(s) => {
                // Read through rustls, which takes session tickets and
                // close_notify alerts; plaintext from a receiver is ignored.
                if s.sock.set_nonblocking(true).is_err() {
                    return true;
                }
                let closed = loop {
                    match s.read(&mut scratch) {
                        Ok(0) => break true,
                        Ok(_) => continue,
                        Err(e) => break e.kind() != io::ErrorKind::WouldBlock,
                    }
                };
                closed || s.sock.set_nonblocking(false).is_err()
            }
            _ => false,
        }
    }
}
