//! imgopt: build, measure and compare Docker images of Node.js services.
//!
//! The crate is a library core with a thin binary on top. The binary's
//! [`cli`] module turns the command line into plain option structs; the
//! [`app`] module runs a command from those structs. Everything that talks to
//! the Docker engine lives in [`engine`]; everything after it (measuring,
//! saving, rendering) is synchronous code over plain data, so it can be
//! tested without an engine.

pub mod app;
pub mod base;
pub mod baseline;
pub mod chart;
pub mod cli;
pub mod compare;
pub mod config;
pub mod context;
pub mod credentials;
pub mod dockerfile;
pub mod engine;
pub mod error;
pub mod fsutil;
pub mod markers;
pub mod measure;
pub mod progress;
pub mod render;
pub mod report;
pub mod results;
pub mod stats;
pub mod verify;
