//! A client that keeps connecting: a new TCP connection to an address
//! every 20 ms for a while, from a namespace, recording when each one
//! started and who answered (the first word of the answer) or why it
//! failed. For proving that traffic moves without a connection failing.

use std::process::{Child, Stdio};

use serde_json::Value;

use crate::netns::Netns;

const SCRIPT: &str = "import json, socket, sys, time
start = time.monotonic(); out = []
while time.monotonic() - start < float(sys.argv[3]):
    t = time.monotonic() - start
    try:
        c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1)
        who = c.recv(64).decode().split(' ')[0].strip() or 'fail: empty answer'
        c.close()
    except OSError as e:
        who = 'fail: %s' % e
    out.append([round(t, 3), who])
    time.sleep(0.02)
print(json.dumps(out))
";

pub struct ConnectLoop {
    child: Child,
}

/// One connection: seconds since the loop started, and who answered (or
/// `fail: why`).
pub type Attempt = (f64, String);

impl ConnectLoop {
    /// Starts connecting to `address:port` from `ns` for `secs` seconds.
    #[track_caller]
    pub fn start(ns: &Netns, address: &str, port: u16, secs: u32) -> ConnectLoop {
        let child = ns
            .command("/usr/bin/python3")
            .args(["-c", SCRIPT, address, &port.to_string(), &secs.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the client");
        ConnectLoop { child }
    }

    /// Waits for the end and returns every attempt.
    #[track_caller]
    pub fn finish(self) -> Vec<Attempt> {
        let out = self.child.wait_with_output().expect("client");
        serde_json::from_slice::<Value>(&out.stdout)
            .unwrap_or_else(|e| panic!("client: {e}: {}", String::from_utf8_lossy(&out.stderr)))
            .as_array()
            .expect("list")
            .iter()
            .map(|e| {
                (
                    e[0].as_f64().unwrap_or(0.0),
                    e[1].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    }
}

/// Attempts started in `[from, to)` that `who` answered.
pub fn answered_by(log: &[Attempt], from: f64, to: f64, who: &str) -> usize {
    log.iter()
        .filter(|(t, w)| *t >= from && *t < to && w == who)
        .count()
}

pub fn failures(log: &[Attempt]) -> Vec<&Attempt> {
    log.iter().filter(|(_, w)| w.starts_with("fail")).collect()
}
