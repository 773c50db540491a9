//! User emails over SMTP with `lettre` (rustls): plain text and HTML alternatives.

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::domain::notice::Notice;

#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    /// A mailer for `smtp_url` (`smtp://`, `smtps://`, with `?tls=required` for STARTTLS).
    pub fn new(url: &str, from: &str, timeout: Duration) -> anyhow::Result<Self> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| anyhow::anyhow!("smtp_url: {e}"))?
            .timeout(Some(timeout))
            .build();
        let from = from
            .parse()
            .map_err(|e| anyhow::anyhow!("smtp_from: {e}"))?;
        Ok(Self { transport, from })
    }

    /// Sends `notice` to `to`. A refusal that no retry can change (an address that does
    /// not parse, a 5xx answer from the server) is [`MailError::permanent`].
    pub async fn send(&self, to: &str, notice: &Notice) -> Result<(), MailError> {
        let to: Mailbox = to.parse().map_err(|e| MailError {
            reason: format!("bad address: {e}"),
            permanent: true,
        })?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(notice.subject.clone())
            .multipart(MultiPart::alternative_plain_html(
                notice.text.clone(),
                notice.html.clone(),
            ))
            .map_err(|e| MailError {
                reason: format!("building the message: {e}"),
                permanent: true,
            })?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| MailError {
                reason: format!("smtp: {e}"),
                permanent: e.is_permanent(),
            })
    }
}

/// Why an email was not sent, and whether sending it again could succeed.
#[derive(Debug)]
pub struct MailError {
    pub reason: String,
    /// The server refused it for good (a 5xx reply), or it cannot be written at all.
    pub permanent: bool,
}
