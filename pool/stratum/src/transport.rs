//! The connection under the protocol (STRATUM.md, "Transport"): plain TCP
//! (`stratum+tcp://host:port`) or TLS over TCP (`stratum+ssl://host:port`),
//! with the same lines on either.
//!
//! TLS is rustls with the *ring* provider, TLS 1.2 and 1.3. A miner checks
//! the pool's certificate against the system's roots and any CA it is
//! given (`--pool-ca`: pools often use their own), for the host name in the
//! URL; a pool serves a certificate chain and key from PEM files. Nothing
//! here is an option to skip the check: a miner that trusts any certificate
//! hands its shares to whoever sits on the path.

use rustls::{
	pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer, ServerName},
	ClientConfig, RootCertStore, ServerConfig,
};
use std::{path::Path, sync::Arc};
use tokio::{
	io::{AsyncRead, AsyncWrite},
	net::TcpStream,
};
pub use tokio_rustls::{TlsAcceptor, TlsConnector};

/// A pool's address, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolUrl {
	/// `stratum+ssl://`.
	pub tls: bool,
	/// The host name or address (brackets kept off an IPv6 address).
	pub host: String,
	/// The port.
	pub port: u16,
}

impl PoolUrl {
	/// Parses `stratum+tcp://host:port` or `stratum+ssl://host:port`.
	pub fn parse(url: &str) -> Result<Self, String> {
		let (tls, rest) = if let Some(rest) = url.strip_prefix("stratum+tcp://") {
			(false, rest)
		} else if let Some(rest) = url.strip_prefix("stratum+ssl://") {
			(true, rest)
		} else {
			return Err(format!("{url:?} is not a stratum+tcp:// or stratum+ssl:// URL"));
		};
		let host_port = rest.trim_end_matches('/');
		match host_port.rsplit_once(':') {
			Some((host, port)) if !host.is_empty() && !host.contains('/') => {
				let port = port.parse().map_err(|_| format!("{url:?}: {port:?} is not a port"))?;
				let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
				Ok(Self { tls, host, port })
			}
			_ => Err(format!("{url:?}: expected stratum+tcp://host:port or stratum+ssl://host:port")),
		}
	}
}

impl std::fmt::Display for PoolUrl {
	fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
		let scheme = if self.tls { "stratum+ssl" } else { "stratum+tcp" };
		if self.host.contains(':') {
			write!(f, "{scheme}://[{}]:{}", self.host, self.port)
		} else {
			write!(f, "{scheme}://{}:{}", self.host, self.port)
		}
	}
}

/// A byte stream the protocol runs over: TCP, or TLS over it.
pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// What a miner trusts for `stratum+ssl://`: the system's roots, and the
/// certificates in `extra_ca` (a PEM file) if given.
pub fn client_tls(extra_ca: Option<&Path>) -> Result<TlsConnector, String> {
	let mut roots = RootCertStore::empty();
	let native = rustls_native_certs::load_native_certs();
	let (added, _) = roots.add_parsable_certificates(native.certs);
	if let Some(path) = extra_ca {
		let certs = read_certs(path)?;
		for cert in certs {
			roots.add(cert).map_err(|e| format!("{}: {e}", path.display()))?;
		}
	} else if added == 0 {
		return Err("no system root certificates found: give the pool's CA with --pool-ca".into());
	}
	let config = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
		.with_safe_default_protocol_versions()
		.map_err(|e| e.to_string())?
		.with_root_certificates(roots)
		.with_no_client_auth();
	Ok(TlsConnector::from(Arc::new(config)))
}

/// What a pool serves on its TLS port: the certificate chain in `cert`
/// and the private key in `key` (PEM files).
pub fn server_tls(cert: &Path, key: &Path) -> Result<TlsAcceptor, String> {
	let chain = read_certs(cert)?;
	let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: no private key: {e}", key.display()))?;
	let config = ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
		.with_safe_default_protocol_versions()
		.map_err(|e| e.to_string())?
		.with_no_client_auth()
		.with_single_cert(chain, key)
		.map_err(|e| format!("{}: {e}", cert.display()))?;
	Ok(TlsAcceptor::from(Arc::new(config)))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
	let certs = CertificateDer::pem_file_iter(path)
		.and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
		.map_err(|e| format!("{}: {e}", path.display()))?;
	if certs.is_empty() {
		return Err(format!("{}: no certificate in it", path.display()));
	}
	Ok(certs)
}

/// Connects to `url`: TCP, then the TLS handshake for `stratum+ssl://`
/// (`tls` is then needed), checking the certificate for the URL's host.
pub async fn connect(url: &PoolUrl, tls: Option<&TlsConnector>) -> std::io::Result<Box<dyn Stream>> {
	let tcp = TcpStream::connect((url.host.as_str(), url.port)).await?;
	tcp.set_nodelay(true)?;
	if !url.tls {
		return Ok(Box::new(tcp));
	}
	let connector = tls.ok_or_else(|| std::io::Error::other("stratum+ssl:// without a TLS configuration"))?;
	let name = ServerName::try_from(url.host.clone())
		.map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{}: {e}", url.host)))?;
	Ok(Box::new(connector.connect(name, tcp).await?))
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn urls_name_their_transport() {
		let url = |tls, host: &str, port| PoolUrl { tls, host: host.into(), port };
		assert_eq!(PoolUrl::parse("stratum+tcp://127.0.0.1:3333"), Ok(url(false, "127.0.0.1", 3333)));
		assert_eq!(PoolUrl::parse("stratum+ssl://pool.example:443/"), Ok(url(true, "pool.example", 443)));
		assert_eq!(PoolUrl::parse("stratum+tcp://[::1]:3333"), Ok(url(false, "::1", 3333)));
		assert_eq!(url(false, "::1", 3333).to_string(), "stratum+tcp://[::1]:3333");
		assert_eq!(url(true, "pool.example", 443).to_string(), "stratum+ssl://pool.example:443");
		for bad in ["tcp://pool.example:3333", "stratum+tcp://pool.example", "stratum+tcp://:3333", "stratum+ssl://a:b"]
		{
			assert!(PoolUrl::parse(bad).is_err(), "{bad}");
		}
	}
}
