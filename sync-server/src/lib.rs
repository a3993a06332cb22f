//! The Flowkeep sync server: devices of a workspace sync Automerge documents
//! through it over WebSockets (the automerge-repo protocol, via samod).
//!
//! Isolation is by construction: every workspace has its own samod `Repo`
//! whose storage keys live under `ws/<workspace-id>/`, and a connection is
//! handed to its workspace's repo only after its token was checked. A
//! document of another workspace does not exist for it.
//!
//! On PostgreSQL several server processes share the data; each workspace is
//! served by one of them at a time and the others proxy to it (`cluster.rs`,
//! `proxy.rs`).

pub mod admission;
pub mod asks;
pub mod cluster;
pub mod db;
pub mod devices;
pub mod http;
pub mod listener;
pub mod liveness;
pub mod memory;
pub mod metrics;
pub mod open_files;
pub mod proxy;
pub mod quota;
pub mod runtime;
pub mod storage;
pub mod tls;
pub mod token;
pub mod uploads;
pub mod workspaces;

pub use db::{Db, Error};
pub use http::{router, serve, serve_tls, AppState, Limits};
pub use workspaces::{Serve, Workspaces};
