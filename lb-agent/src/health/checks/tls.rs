//! TLS for `type: https` (rustls with ring): the client configurations, one
//! verifying the server's certificate against the system's roots
//! (`verify: true`) and one accepting any certificate (keepalived's SSL_GET
//! and HAProxy's `check-ssl` without `verify required`), which still checks
//! the handshake's signatures. Both are built once.

use std::sync::{Arc, OnceLock};

use lb_api::types::CheckFailure;
use lb_config::check::HttpsCheck;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, ring};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, ConfigBuilder, DigitallySignedStruct, RootCertStore, SignatureScheme,
    WantsVerifier,
};
use tokio::net::TcpStream;
use tokio_rustls::{TlsConnector, client::TlsStream};

use super::{Aim, io_failure};

/// The TLS handshake over `stream`, sending the name `sni`, else `host`,
/// else none (and then verifying against the target's address).
pub async fn connect(
    stream: TcpStream,
    aim: &Aim,
    https: &HttpsCheck,
) -> Result<TlsStream<TcpStream>, CheckFailure> {
    let config = if https.verify {
        verifying()?
    } else {
        trusting()?
    };
    let name = match https.sni.as_ref().or(https.http.host.as_ref()) {
        Some(name) => ServerName::try_from(name.clone()).map_err(|_| CheckFailure::Tls {
            detail: format!("`{name}` is not a valid server name"),
        })?,
        None => ServerName::IpAddress(aim.target.ip().into()),
    };
    TlsConnector::from(config)
        .connect(name, stream)
        .await
        .map_err(|e| handshake_failure(&e))
}

/// What a failed handshake means: rustls's own reason when it has one.
fn handshake_failure(e: &std::io::Error) -> CheckFailure {
    if let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        return CheckFailure::Tls {
            detail: tls.to_string(),
        };
    }
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        return CheckFailure::Tls {
            detail: "the server closed the connection during the handshake".into(),
        };
    }
    io_failure(e)
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

/// `verify: true`: the system's roots (`rustls-native-certs`), loaded once.
fn verifying() -> Result<Arc<ClientConfig>, CheckFailure> {
    static CONFIG: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    cached(&CONFIG, || {
        let mut roots = RootCertStore::empty();
        let found = rustls_native_certs::load_native_certs();
        let (added, _) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            let why = found.errors.first().map(|e| format!(": {e}"));
            return Err(format!(
                "no system root certificates to verify against (install ca-certificates){}",
                why.unwrap_or_default()
            ));
        }
        Ok(versions(provider())?
            .with_root_certificates(roots)
            .with_no_client_auth())
    })
}

/// `verify: false`: any certificate, signatures still checked.
fn trusting() -> Result<Arc<ClientConfig>, CheckFailure> {
    static CONFIG: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    cached(&CONFIG, || {
        let provider = provider();
        Ok(versions(provider.clone())?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth())
    })
}

fn versions(
    provider: Arc<CryptoProvider>,
) -> Result<ConfigBuilder<ClientConfig, WantsVerifier>, String> {
    ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())
}

/// The configuration `cell` holds, built by `build` the first time.
fn cached(
    cell: &OnceLock<Result<Arc<ClientConfig>, String>>,
    build: impl FnOnce() -> Result<ClientConfig, String>,
) -> Result<Arc<ClientConfig>, CheckFailure> {
    cell.get_or_init(|| build().map(Arc::new))
        .clone()
        .map_err(|detail| CheckFailure::Tls { detail })
}

/// Accepts whatever certificate the server shows.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
