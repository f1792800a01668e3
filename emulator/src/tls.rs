//! The emulator's TLS identity: a throw-away certificate authority generated at start (written out
//! as PEM so the worker can trust it through `--ca-cert`) and a leaf certificate for `127.0.0.1`
//! and `localhost` signed by it. Nothing here is persisted except the CA's public certificate.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// File name of the CA certificate inside the configured state directory.
pub const CA_FILE_NAME: &str = "emulator-ca.pem";

/// A freshly generated CA and the rustls server configuration that presents its leaf.
pub struct TlsIdentity {
    ca_pem: String,
    server_config: Arc<rustls::ServerConfig>,
}

impl TlsIdentity {
    /// Generates a CA and a leaf for `127.0.0.1`, `::1` and `localhost`. The validity starts a day
    /// in the past so that a client clock slightly behind ours still accepts it.
    pub fn generate() -> anyhow::Result<TlsIdentity> {
        let now = time::OffsetDateTime::now_utc();

        let ca_key = KeyPair::generate().context("generating the emulator CA key")?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())
            .context("building the emulator CA parameters")?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "baton-azure-delta emulator CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca_params.not_before = now - time::Duration::days(1);
        ca_params.not_after = now + time::Duration::days(365);
        let ca_cert = ca_params
            .self_signed(&ca_key)
            .context("self-signing the emulator CA")?;
        let issuer = Issuer::new(ca_params, ca_key);

        let leaf_key = KeyPair::generate().context("generating the emulator server key")?;
        let mut leaf_params = CertificateParams::new(vec![
            "127.0.0.1".to_string(),
            "::1".to_string(),
            "localhost".to_string(),
        ])
        .context("building the emulator server certificate parameters")?;
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, "127.0.0.1");
        leaf_params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        leaf_params.not_before = now - time::Duration::days(1);
        leaf_params.not_after = now + time::Duration::days(90);
        let leaf_cert = leaf_params
            .signed_by(&leaf_key, &issuer)
            .context("signing the emulator server certificate")?;

        let chain = vec![
            CertificateDer::from(leaf_cert.der().to_vec()),
            CertificateDer::from(ca_cert.der().to_vec()),
        ];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        // The provider is named explicitly so that the process-wide default never matters.
        let mut server_config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .context("choosing TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("loading the emulator server certificate")?;
        server_config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];

        Ok(TlsIdentity {
            ca_pem: ca_cert.pem(),
            server_config: Arc::new(server_config),
        })
    }

    /// The CA certificate as PEM: the one thing a client must trust.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        self.server_config.clone()
    }

    /// Writes the CA certificate to `<dir>/emulator-ca.pem`, creating `dir` if needed.
    pub fn write_ca(&self, dir: &Path) -> anyhow::Result<PathBuf> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the CA directory {}", dir.display()))?;
        let path = dir.join(CA_FILE_NAME);
        std::fs::write(&path, &self.ca_pem).with_context(|| {
            format!("writing the emulator CA certificate to {}", path.display())
        })?;
        Ok(path)
    }
}
