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
