//! The cluster's certificate authority, the API server's serving certificate, the admin
//! bearer token and the admin kubeconfig, all kept in the data directory.
//!
//! Generated once and reused: a restart must not invalidate kubeconfigs users already hold.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Errors setting up the cluster's credentials.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("failed to access {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to generate a certificate")]
    Generate(#[from] rcgen::Error),
    #[error("failed to read PEM from {path}: {detail}")]
    Pem { path: PathBuf, detail: String },
    #[error("failed to build the TLS configuration")]
    Tls(#[from] rustls::Error),
}

/// Credentials of one cluster, loaded or created under `dir/pki`.
pub struct Pki {
    pub ca_pem: String,
    pub admin_token: String,
    cert_path: PathBuf,
    key_path: PathBuf,
    ca_key_path: PathBuf,
}

impl Pki {
    /// Loads the credentials in `data_dir/pki`, creating what is missing. `hosts` are extra
    /// names and addresses the serving certificate must be valid for.
    pub fn load_or_create(data_dir: &Path, hosts: &[String]) -> Result<Pki, PkiError> {
        let dir = data_dir.join("pki");
        fs::create_dir_all(&dir).map_err(|source| PkiError::Io {
            path: dir.clone(),
            source,
        })?;
        let ca_path = dir.join("ca.crt");
        let ca_key_path = dir.join("ca.key");
        let cert_path = dir.join("apiserver.crt");
        let key_path = dir.join("apiserver.key");
        let token_path = dir.join("admin.token");

        if !(ca_path.exists() && cert_path.exists() && key_path.exists()) {
            let (ca_pem, ca_key_pem, cert_pem, key_pem) = generate(hosts)?;
            write_private(&ca_key_path, &ca_key_pem)?;
            write_private(&key_path, &key_pem)?;
            write_file(&cert_path, &cert_pem)?;
            write_file(&ca_path, &ca_pem)?;
        }
        if !token_path.exists() {
            let token = format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            );
            write_private(&token_path, &token)?;
        }
        let ca_pem = read(&ca_path)?;
        let admin_token = read(&token_path)?.trim().to_string();
        Ok(Pki {
            ca_pem,
            admin_token,
            cert_path,
            key_path,
            ca_key_path,
        })
    }

    /// A rustls server configuration offering HTTP/2 and HTTP/1.1.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, PkiError> {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&self.cert_path)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| PkiError::Pem {
                path: self.cert_path.clone(),
                detail: e.to_string(),
            })?;
        let key = PrivateKeyDer::from_pem_file(&self.key_path).map_err(|e| PkiError::Pem {
            path: self.key_path.clone(),
            detail: e.to_string(),
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(certs, key)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// An admin kubeconfig for `server` (e.g. `https://127.0.0.1:6443`).
    pub fn kubeconfig(&self, server: &str) -> String {
        let ca = base64::engine::general_purpose::STANDARD.encode(self.ca_pem.as_bytes());
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: gantry\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\nusers:\n- name: admin\n  user:\n    token: {token}\ncontexts:\n- name: gantry\n  context:\n    cluster: gantry\n    user: admin\n    namespace: default\ncurrent-context: gantry\n",
            token = self.admin_token
        )
    }
}

impl Pki {
    /// A serving certificate and key (PEM) for `names` (DNS names or IP addresses), signed by
    /// the cluster CA: what a node agent on this machine serves logs and exec with.
    pub fn issue_serving_cert(&self, names: &[String]) -> Result<(String, String), PkiError> {
        let ca_key_pem = read(&self.ca_key_path)?;
        let ca_key = KeyPair::from_pem(&ca_key_pem)?;
        let issuer = ca_params()?.self_signed(&ca_key)?;
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(names.to_vec())?;
        params
            .distinguished_name
            .push(DnType::CommonName, "gantry-agent");
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.not_after = rcgen::date_time_ymd(2035, 1, 1);
        let cert = params.signed_by(&key, &issuer, &ca_key)?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

/// The CA's identity; re-signing these parameters with the stored CA key yields an issuer
/// that verifies against the original `ca.crt` (same subject, same key).
fn ca_params() -> Result<CertificateParams, PkiError> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "gantry-ca");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca_params.not_after = rcgen::date_time_ymd(2036, 1, 1);
    Ok(ca_params)
}

fn generate(hosts: &[String]) -> Result<(String, String, String, String), PkiError> {
    let ca_key = KeyPair::generate()?;
    let ca_params = ca_params()?;
    let ca = ca_params.self_signed(&ca_key)?;

    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
        "kubernetes".to_string(),
        "kubernetes.default".to_string(),
        "kubernetes.default.svc".to_string(),
        "kubernetes.default.svc.cluster.local".to_string(),
    ];
    if let Ok(host) = fs::read_to_string("/etc/hostname") {
        let host = host.trim();
        if !host.is_empty() {
            names.push(host.to_string());
        }
    }
    names.extend(hosts.iter().cloned());
    names.dedup();
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(names)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "gantry-apiserver");
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.not_after = rcgen::date_time_ymd(2035, 1, 1);
    let cert = params.signed_by(&key, &ca, &ca_key)?;
    Ok((
        ca.pem(),
        ca_key.serialize_pem(),
        cert.pem(),
        key.serialize_pem(),
    ))
}

fn read(path: &Path) -> Result<String, PkiError> {
    fs::read_to_string(path).map_err(|source| PkiError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn write_file(path: &Path, contents: &str) -> Result<(), PkiError> {
    fs::write(path, contents).map_err(|source| PkiError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn write_private(path: &Path, contents: &str) -> Result<(), PkiError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| PkiError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    f.write_all(contents.as_bytes())
        .map_err(|source| PkiError::Io {
            path: path.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_serving_certs_verify_against_the_cluster_ca() {
        use rustls::client::danger::ServerCertVerifier as _;
        let dir = tempfile::tempdir().expect("temp dir");
        let pki = Pki::load_or_create(dir.path(), &[]).expect("pki");
        let (cert_pem, _key) = pki
            .issue_serving_cert(&["10.1.2.3".to_string(), "node-a".to_string()])
            .expect("issue");
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(pki.ca_pem.as_bytes()) {
            roots.add(c.expect("ca pem")).expect("ca cert");
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier =
            rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .expect("verifier");
        let cert = CertificateDer::from_pem_slice(cert_pem.as_bytes()).expect("cert pem");
        let name = rustls::pki_types::ServerName::try_from("10.1.2.3").expect("ip name");
        let now = rustls::pki_types::UnixTime::now();
        verifier
            .verify_server_cert(&cert, &[], &name, &[], now)
            .expect("the CA vouches for the agent");
        // Reopening the same directory keeps the CA: kubeconfigs stay valid.
        let again = Pki::load_or_create(dir.path(), &[]).expect("reload");
        assert_eq!(again.ca_pem, pki.ca_pem);
        assert_eq!(again.admin_token, pki.admin_token);
    }
}
