//! Talking to other systems: webhook requests over HTTP(S) and user emails over SMTP.
//! What to send and when is the outbox's (`service::outbox`); these only carry it.

pub mod mail;
pub mod webhook;
