//! One probe: a TCP connection, an HTTP(S) GET or a DNS query, from
//! whatever network namespace the calling thread is in. The caller bounds
//! it with the check's timeout.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use http_body_util::Empty;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, UdpSocket};

use super::dns;
use crate::config::Probe;

/// Runs the probe: `Ok` with what it saw, or why it failed.
pub async fn run(probe: &Probe, seed: u16) -> Result<String, String> {
    match probe {
        Probe::Tcp(a) => {
            TcpStream::connect(a)
                .await
                .map_err(|e| format!("connect to {a}: {e}"))?;
            Ok(format!("connected to {a}"))
        }
        Probe::Http {
            tls,
            address,
            authority,
            path,
            expect,
        } => {
            let stream = TcpStream::connect(address)
                .await
                .map_err(|e| format!("connect to {address}: {e}"))?;
            let status = if *tls {
                let name = rustls::pki_types::ServerName::IpAddress(address.ip().into());
                let stream = tokio_rustls::TlsConnector::from(tls_config())
                    .connect(name, stream)
                    .await
                    .map_err(|e| format!("TLS with {address}: {e}"))?;
                get(stream, authority, path).await?
            } else {
                get(stream, authority, path).await?
            };
            let scheme = if *tls { "https" } else { "http" };
            if expect.contains(&status) {
                Ok(format!("GET {scheme}://{authority}{path}: {status}"))
            } else {
                Err(format!(
                    "GET {scheme}://{authority}{path}: status {status}, expected {}",
                    expect.iter().map(u16::to_string).collect::<Vec<_>>().join(" or ")
                ))
            }
        }
        Probe::Dns { server, name } => dns_query(*server, name, seed).await,
    }
}

async fn get<S>(stream: S, authority: &str, path: &str) -> Result<u16, String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP: {e}"))?;
    let conn = tokio::spawn(conn);
    let request = hyper::Request::get(path)
        .header(hyper::header::HOST, authority)
        .header(hyper::header::USER_AGENT, "tern-health-check")
        .header(hyper::header::CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("HTTP request: {e}"))?;
    let response = sender.send_request(request).await;
    conn.abort();
    response
        .map(|r| r.status().as_u16())
        .map_err(|e| format!("HTTP: {e}"))
}

async fn dns_query(server: SocketAddr, name: &str, id: u16) -> Result<String, String> {
    let local: SocketAddr = if server.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        ([0u16; 8], 0).into()
    };
    let socket = UdpSocket::bind(local)
        .await
        .map_err(|e| format!("DNS socket: {e}"))?;
    socket
        .connect(server)
        .await
        .map_err(|e| format!("DNS to {server}: {e}"))?;
    let query = dns::query(id, name)?;
    socket
        .send(&query)
        .await
        .map_err(|e| format!("DNS query to {server}: {e}"))?;
    let mut buf = [0u8; 1500];
    loop {
        let n = socket
            .recv(&mut buf)
            .await
            .map_err(|e| format!("DNS answer from {server}: {e}"))?;
        match dns::answer(id, &buf[..n]) {
            dns::Answer::Other => continue,
            dns::Answer::Ok(count) => {
                return Ok(format!("{server} answered {name}: NOERROR, {count} records"));
            }
            dns::Answer::Error(code) => return Err(format!("{server} answered {name}: {code}")),
        }
    }
}

/// TLS for HTTPS probes: the server must complete a handshake; its
/// certificate is not verified (as the kubelet's HTTPS probes: node-local
/// endpoints have self-signed certificates, and the probe tests the
/// datapath, not the identity).
fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let verifier = Arc::new(AnyCertificate(provider.clone()));
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("ring supports the default protocol versions")
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth();
            Arc::new(config)
        })
        .clone()
}

#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, UdpSocket};

    use super::run;
    use crate::config::Probe;

    /// An HTTP server that answers every request with `status`, and the
    /// request lines it saw.
    async fn http_server(status: u16) -> (SocketAddr, tokio::sync::mpsc::Receiver<String>) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let mut buf = vec![0u8; 2048];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let _ = tx.send(String::from_utf8_lossy(&buf[..n]).into_owned()).await;
                let answer = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                let _ = s.write_all(answer.as_bytes()).await;
            }
        });
        (addr, rx)
    }

    fn http(addr: SocketAddr, tls: bool, expect: Vec<u16>) -> Probe {
        Probe::Http {
            tls,
            address: addr,
            authority: addr.to_string(),
            path: "/healthz".into(),
            expect,
        }
    }

    #[tokio::test]
    async fn tcp_passes_when_a_connection_is_accepted() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        assert!(run(&Probe::Tcp(addr), 1).await.is_ok());
        drop(l);
        let e = run(&Probe::Tcp(addr), 1).await.unwrap_err();
        assert!(e.contains("Connection refused"), "{e}");
    }

    #[tokio::test]
    async fn http_passes_on_an_expected_status_only() {
        let (addr, mut seen) = http_server(200).await;
        let ok = run(&http(addr, false, vec![200]), 1).await.unwrap();
        assert!(ok.ends_with(": 200"), "{ok}");
        let request = seen.recv().await.unwrap();
        assert!(request.starts_with("GET /healthz HTTP/1.1\r\n"), "{request}");
        assert!(
            request.to_lowercase().contains(&format!("host: {addr}")),
            "{request}"
        );
        let (addr, _seen) = http_server(503).await;
        let e = run(&http(addr, false, vec![200, 204]), 1).await.unwrap_err();
        assert!(e.contains("status 503, expected 200 or 204"), "{e}");
        assert!(run(&http(addr, false, vec![503]), 1).await.is_ok());
    }

    /// HTTPS against OpenSSL's test server with a self-signed certificate
    /// (`openssl s_server -www` answers every GET with 200).
    #[tokio::test]
    async fn https_completes_a_handshake_with_a_self_signed_server() {
        let dir = std::env::temp_dir().join(format!("tern-https-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let status = std::process::Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
            ])
            .args(["-nodes", "-days", "1", "-subj", "/CN=node", "-keyout"])
            .arg(dir.join("key.pem"))
            .arg("-out")
            .arg(dir.join("cert.pem"))
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl (Debian's openssl package)");
        assert!(status.success());
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let mut server = std::process::Command::new("openssl")
            .args(["s_server", "-www", "-quiet", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(dir.join("cert.pem"))
            .arg("-key")
            .arg(dir.join("key.pem"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("openssl s_server");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut result = Err(String::new());
        for _ in 0..50 {
            result = run(&http(addr, true, vec![200]), 1).await;
            if result.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Plain HTTP to a TLS server is no answer.
        let plain = run(&http(addr, false, vec![200]), 1).await;
        let _ = server.kill();
        let _ = server.wait();
        let _ = std::fs::remove_dir_all(&dir);
        let ok = result.unwrap();
        assert!(ok.starts_with("GET https://") && ok.ends_with(": 200"), "{ok}");
        assert!(plain.is_err(), "{plain:?}");
    }

    #[tokio::test]
    async fn dns_passes_on_noerror_and_names_any_other_code() {
        let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let server = s.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            let mut rcode = 0u8;
            while let Ok((n, from)) = s.recv_from(&mut buf).await {
                let mut answer = buf[..n].to_vec();
                // Something else first: another id must be skipped.
                let mut stray = answer.clone();
                stray[0] ^= 0xff;
                stray[2] |= 0x80;
                let _ = s.send_to(&stray, from).await;
                answer[2] |= 0x80;
                answer[3] = rcode;
                let _ = s.send_to(&answer, from).await;
                rcode = 2;
            }
        });
        let probe = Probe::Dns {
            server,
            name: "kube-dns.kube-system.svc.cluster.local".into(),
        };
        let ok = run(&probe, 7).await.unwrap();
        assert!(ok.contains("NOERROR"), "{ok}");
        let e = run(&probe, 8).await.unwrap_err();
        assert!(e.ends_with("SERVFAIL"), "{e}");
    }
}
