//! The integration suite: one binary, one file per feature, every test against a real
//! server over HTTP.

mod accounts;
mod admin_api;
mod admin_credentials;
mod at_rest;
mod authenticators;
mod burst;
mod cancellation;
mod compat;
mod config;
mod devices;
mod errors;
mod events;
mod growth;
mod helpers;
mod hostile;
mod ip_throttle;
mod keys;
mod lockout;
mod multi_instance;
mod openapi;
mod operations;
mod outage;
mod passkeys;
mod process;
mod readme_compat;
mod rotation;
mod sensitive;
mod smoke;
mod tokens;
mod transport;
mod two_factor;
mod web;
mod webhooks;
