//! TCP inside namespaces, from threads of the test process that entered
//! them ([`Netns::spawn_in`]): a server that greets each client, and a
//! client that reads what a server sends.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::netns::Netns;

/// A listener on `[::]:port` (IPv4 too) in a namespace that writes
/// `"<greeting> <client address>\n"` to every client and closes. Stopped
/// and joined on drop.
pub struct Server {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Vec<SocketAddr>>>,
}

impl Server {
    /// Binds in `ns` and returns once the socket listens.
    #[track_caller]
    pub fn start(ns: &Netns, port: u16, greeting: &str) -> Server {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let greeting = greeting.to_owned();
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = ns.spawn_in(move || {
            let listener = match TcpListener::bind(("::", port)).and_then(|l| {
                l.set_nonblocking(true)?;
                Ok(l)
            }) {
                Ok(l) => {
                    let _ = tx.send(Ok(()));
                    l
                }
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                    return Vec::new();
                }
            };
            let mut served = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut s, peer)) => {
                        let _ = s.set_nonblocking(false);
                        let _ = writeln!(s, "{greeting} {peer}");
                        served.push(peer);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
            served
        });
        match rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("{}: cannot listen on [::]:{port}: {e}", ns.name()),
            Err(_) => panic!("{}: the server thread died", ns.name()),
        }
        Server {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops it; returns the addresses of the clients it served.
    pub fn finish(mut self) -> Vec<SocketAddr> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().and_then(|t| t.join().ok()).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Connects from `ns` to `addr` and reads until the server closes; each
/// step within `within`. The error says which step failed.
pub fn fetch(ns: &Netns, addr: SocketAddr, within: Duration) -> Result<String, String> {
    ns.spawn_in(move || {
        let mut s =
            TcpStream::connect_timeout(&addr, within).map_err(|e| format!("connect to {addr}: {e}"))?;
        s.set_read_timeout(Some(within)).map_err(|e| e.to_string())?;
        let mut out = String::new();
        s.read_to_string(&mut out)
            .map_err(|e| format!("read from {addr}: {e}"))?;
        Ok(out)
    })
    .join()
    .unwrap_or_else(|_| Err("the client thread panicked".into()))
}
