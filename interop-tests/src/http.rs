//! A minimal HTTP/1.0 client over a Unix socket, for tern's status API: a
//! Unix socket is reachable from the test process without entering the
//! daemon's namespace.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// `method path` on the socket; returns the status code and the body.
pub fn request(socket: &Path, method: &str, path: &str) -> Result<(u16, String), String> {
    let mut s =
        UnixStream::connect(socket).map_err(|e| format!("cannot connect to {}: {e}", socket.display()))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .and_then(|_| s.set_write_timeout(Some(Duration::from_secs(10))))
        .map_err(|e| e.to_string())?;
    // HTTP/1.0: the server closes the connection after the response.
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: tern\r\nContent-Length: 0\r\n\r\n"
    )
    .map_err(|e| format!("{method} {path}: {e}"))?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .map_err(|e| format!("{method} {path}: {e}"))?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("{method} {path}: malformed response {text:?}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("{method} {path}: bad status line in {head:?}"))?;
    let chunked = head
        .lines()
        .any(|l| l.to_ascii_lowercase().starts_with("transfer-encoding:") && l.contains("chunked"));
    let body = if chunked { dechunk(body)? } else { body.to_owned() };
    Ok((status, body))
}

fn dechunk(mut s: &str) -> Result<String, String> {
    let mut out = String::new();
    loop {
        let (size, rest) = s.split_once("\r\n").ok_or("truncated chunk")?;
        let n = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|e| format!("bad chunk size {size:?}: {e}"))?;
        if n == 0 {
            return Ok(out);
        }
        out.push_str(rest.get(..n).ok_or("truncated chunk")?);
        s = rest.get(n + 2..).ok_or("truncated chunk")?;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn dechunks() {
        assert_eq!(
            super::dechunk("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").unwrap(),
            "abcde"
        );
    }
}
