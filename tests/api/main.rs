//! The integration suite: one binary, one file per feature, every test against a real
//! server over HTTP.

mod helpers;
mod multi_instance;
mod outage;
mod smoke;
