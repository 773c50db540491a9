//! Pure rules with no knowledge of HTTP or SQL, so each can be tested on its own.

pub mod backup_code;
pub mod device;
pub mod lockout;
pub mod net;
pub mod network;
pub mod notice;
pub mod qr;
pub mod second_factor;
pub mod totp;
pub mod validate;
pub mod webauthn;
pub mod webhook;
