//! The unified device model, shared by every role.
//!
//! Pure data and logic, no I/O: the capability catalog, the device and event types every topic
//! carries, the plugin package format (manifest, mapping, actions) and the declarative mapping from
//! a plugin's raw observations into unified capability states. Everything else in Tessera depends on
//! this crate; it depends on nothing of ours.

pub mod actions;
pub mod catalog;
pub mod contract_parse;
pub mod device;
pub mod error;
pub mod event;
pub mod expr;
pub mod manifest;
pub mod mapping;
pub mod mapping_check;
pub mod package;
pub mod surface;
pub mod ui;
pub mod ui_render;
pub mod ui_rules;
pub mod ui_toml;
pub mod units;
pub mod value;

pub use catalog::{Capability, CapabilityKind, Catalog, ValueType};
pub use device::{Device, DeviceMetadata, device_id};
pub use error::{ModelError, Violation};
pub use event::{ActionOutcome, DeviceEvent, EventBody, StateEntry};
pub use value::StateValue;
