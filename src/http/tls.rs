//! Native TLS (rustls with the `ring` provider): the public listener speaks HTTPS when
//! `tls_cert_file` and `tls_key_file` are set.
//!
//! The certificate can be replaced without a restart: [`TlsReloader::reload`] (called on
//! SIGHUP by the binary) reads both files again and, if they make a valid pair, new
//! connections get the new certificate; connections already open keep theirs. A bad pair
//! is refused and the current one stays in use, so a half-written renewal cannot take the
//! server down.
//!
//! The handshake runs inside the connection's own task, on its first read or write, never
//! in the accept loop: a client that opens a connection and stalls its handshake holds up
//! nobody else. The connection deadlines of [`super::conn`] sit below TLS, so a stalled
//! handshake is closed like any slow or idle connection.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};

use anyhow::Context as _;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::conn::{DeadlineIo, DeadlineListener};

/// The certificate and key files, and the server configuration last loaded from them.
#[derive(Clone)]
pub struct TlsReloader {
    cert_file: PathBuf,
    key_file: PathBuf,
    current: Arc<RwLock<Arc<ServerConfig>>>,
}

impl TlsReloader {
    /// Loads the PEM certificate chain (leaf first) and private key (PKCS#8, PKCS#1 or
    /// SEC1); fails, naming the file, if either is unreadable or they do not match.
    pub fn load(cert_file: &Path, key_file: &Path) -> anyhow::Result<Self> {
        let config = server_config(cert_file, key_file)?;
        Ok(Self {
            cert_file: cert_file.to_owned(),
            key_file: key_file.to_owned(),
            current: Arc::new(RwLock::new(Arc::new(config))),
        })
    }

    /// Reads the files again. On success new connections use the new certificate; on
    /// failure the current one stays and the error says why.
    pub fn reload(&self) -> anyhow::Result<()> {
        let config = server_config(&self.cert_file, &self.key_file)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(config);
        Ok(())
    }

    fn acceptor(&self) -> TlsAcceptor {
        let config = self
            .current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        TlsAcceptor::from(config)
    }
}

fn server_config(cert_file: &Path, key_file: &Path) -> anyhow::Result<ServerConfig> {
    let chain = CertificateDer::pem_file_iter(cert_file)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("reading tls_cert_file {}", cert_file.display()))?;
    anyhow::ensure!(
        !chain.is_empty(),
        "tls_cert_file {} holds no PEM certificate",
        cert_file.display()
    );
    let key = PrivateKeyDer::from_pem_file(key_file)
        .with_context(|| format!("reading tls_key_file {}", key_file.display()))?;
    // One provider, named explicitly: nothing depends on which provider features other
    // crates happen to enable.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("tls_cert_file and tls_key_file do not make a usable pair")?;
    // The server speaks HTTP/1.1 only.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Reloads `tls` on every SIGHUP, logging the outcome; runs until the process ends.
pub async fn reload_on_sighup(tls: TlsReloader) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(hangups) => hangups,
        Err(err) => {
            tracing::warn!(error = %err, "cannot listen for SIGHUP; TLS reload is off");
            return;
        }
    };
    while hangups.recv().await.is_some() {
        match tls.reload() {
            Ok(()) => tracing::info!("SIGHUP: TLS certificate reloaded"),
            Err(err) => {
                tracing::warn!(error = %format!("{err:#}"), "SIGHUP: TLS reload failed; keeping the current certificate");
            }
        }
    }
}

/// The public listener: connections with deadlines, in TLS when configured.
pub struct PublicListener {
    inner: DeadlineListener,
    tls: Option<TlsReloader>,
}

impl PublicListener {
    pub fn new(inner: DeadlineListener, tls: Option<TlsReloader>) -> Self {
        Self { inner, tls }
    }
}

impl axum::serve::Listener for PublicListener {
    type Io = PublicIo;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (io, addr) = axum::serve::Listener::accept(&mut self.inner).await;
        let state = match &self.tls {
            // Only the handshake is set up here; it runs on the connection's first poll.
            Some(tls) => State::Handshaking(Box::new(tls.acceptor().accept(io))),
            None => State::Plain(io),
        };
        (PublicIo { state }, addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// One accepted connection: plain, or TLS (handshaking, then encrypted).
pub struct PublicIo {
    state: State,
}

enum State {
    Plain(DeadlineIo),
    Handshaking(Box<tokio_rustls::Accept<DeadlineIo>>),
    Tls(Box<TlsStream<DeadlineIo>>),
    Failed,
}

impl PublicIo {
    /// Drives the handshake, if one is under way, until it completes or fails.
    fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let State::Handshaking(accept) = &mut self.state {
            match Pin::new(accept.as_mut()).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(stream)) => self.state = State::Tls(Box::new(stream)),
                Poll::Ready(Err(err)) => {
                    tracing::debug!(error = %err, "TLS handshake failed");
                    self.state = State::Failed;
                    return Poll::Ready(Err(err));
                }
            }
        }
        match self.state {
            State::Failed => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "TLS handshake failed",
            ))),
            _ => Poll::Ready(Ok(())),
        }
    }
}

/// What both established kinds of connection (plain, TLS) are, so reads and writes are
/// forwarded in one place.
trait Stream: AsyncRead + AsyncWrite + Unpin {}

impl<T: AsyncRead + AsyncWrite + Unpin> Stream for T {}

impl PublicIo {
    /// The established connection, once the handshake (if any) has completed.
    fn poll_established(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Pin<&mut dyn Stream>>> {
        std::task::ready!(self.poll_handshake(cx))?;
        Poll::Ready(match &mut self.state {
            State::Plain(io) => Ok(Pin::new(io as &mut dyn Stream)),
            State::Tls(io) => Ok(Pin::new(io.as_mut() as &mut dyn Stream)),
            State::Handshaking(_) | State::Failed => Err(not_established()),
        })
    }
}

/// Never seen: `poll_handshake` leaves a connection plain, encrypted or failed (and reports
/// the failure itself); an error, not a panic, should that ever change.
fn not_established() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "TLS session not established")
}

impl AsyncRead for PublicIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        std::task::ready!(self.poll_established(cx))?.poll_read(cx, buf)
    }
}

impl AsyncWrite for PublicIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        std::task::ready!(self.poll_established(cx))?.poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        std::task::ready!(self.poll_established(cx))?.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        match &self.state {
            State::Plain(io) => io.is_write_vectored(),
            State::Tls(io) => io.is_write_vectored(),
            State::Handshaking(_) | State::Failed => false,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.poll_established(cx))?.poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.state {
            State::Plain(io) => Pin::new(io).poll_shutdown(cx),
            State::Tls(io) => Pin::new(io.as_mut()).poll_shutdown(cx),
            // Nothing was established: nothing to close politely.
            State::Handshaking(_) | State::Failed => Poll::Ready(Ok(())),
        }
    }
}
