//! The `authgate` package's library half: process wiring shared by the
//! binary and the end-to-end tests: [`app`] assembles a gateway from a
//! configuration; [`demo`] runs the zero-configuration demonstration.

pub mod app;
pub mod demo;
