//! Premises: the platform layer, the catalog of functions and the domain modules.
//!
//! `platform` knows nothing about rooms or locks; each domain module holds its
//! types, service functions and handlers, declares its functions next to the handlers and lists
//! them in its `MODULE`; `catalog` concatenates the modules.

pub mod api_doc;
pub mod appliances;
pub mod bank;
pub mod catalog;
pub mod health;
pub mod identity;
pub mod locks;
pub mod notifications;
pub mod platform;
pub mod security;

pub use platform::app::App;

/// Error type of the function binaries' `main`.
pub type Error = lambda_runtime::Error;
