//! The `authgate` package's library half: process wiring shared by the
//! binary and the end-to-end tests: [`app`] assembles a gateway from a
//! configuration, with [`settings`] converting the configuration into each
//! part's settings; [`demo`] runs the zero-configuration demonstration;
//! [`sessions`] is `authgate sessions` (list and revoke sessions);
//! [`import`] is `authgate import authjs` (an Auth.js database brought over).

pub mod app;
pub mod demo;
pub mod import;
pub mod sessions;
pub mod settings;
