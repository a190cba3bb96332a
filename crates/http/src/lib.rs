//! authgate's HTTP edge (being written): cookies, `callbackUrl` validation, pages.

pub mod cookies;
pub mod error;
pub mod pages;
pub mod redirect;
