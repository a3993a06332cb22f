//! Whom this device trusts for `wss://`: the system's roots, plus a private
//! CA the user gave with `--ca-file` (kept in `meta` as PEM, so later syncs
//! need no flag).

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use crate::{Error, Result};

/// The certificates in a PEM text; an error names the field and the rule.
pub fn check_ca_pem(pem: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| {
            Error::invalid(
                "ca_file",
                "format",
                format!("not a PEM certificate file: {e}"),
            )
        })?;
    if certs.is_empty() {
        return Err(Error::invalid(
            "ca_file",
            "format",
            "no PEM certificate (-----BEGIN CERTIFICATE-----) in the file",
        ));
    }
    Ok(certs)
}

/// A client config trusting the system's roots and `ca_pem`'s certificates.
pub(crate) fn client_config(ca_pem: Option<&str>) -> Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    // Unreadable system certificates are skipped: a private CA may be all
    // this device needs.
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = roots.add(cert);
    }
    if let Some(pem) = ca_pem {
        for cert in check_ca_pem(pem)? {
            roots.add(cert).map_err(|e| {
                Error::invalid(
                    "ca_file",
                    "certificate",
                    format!("cannot trust this certificate: {e}"),
                )
            })?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Unavailable(format!("TLS setup failed: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_must_hold_a_pem_certificate() {
        for bad in [
            "",
            "hello",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        ] {
            let e = check_ca_pem(bad).unwrap_err().to_string();
            assert!(e.contains("ca_file"), "{e}");
        }
        let ca = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
        assert_eq!(check_ca_pem(&ca.cert.pem()).unwrap().len(), 1);
        assert!(client_config(Some(&ca.cert.pem())).is_ok());
    }
}
