//! The `authgate` package's library half: process wiring shared by the
//! binary and the end-to-end tests. See [`app`].

pub mod app;
