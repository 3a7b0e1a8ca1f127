//! Devices of the unified model.

use serde::{Deserialize, Serialize};

/// Stable device id derived from the plugin id and the device's external id.
pub fn device_id(plugin_id: &str, external_id: &str) -> String {
    format!("{plugin_id}:{external_id}")
}

/// Descriptive data of a device, as derived by a plugin's mapping.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceMetadata {
    /// Human-readable name.
    pub name: String,
    /// Device class (`sensor`, `light`, `power_meter`, `switch`, ...).
    pub device_class: String,
    /// Manufacturer, when known.
    pub manufacturer: Option<String>,
    /// Model, when known.
    pub model: Option<String>,
    /// Firmware version, when known.
    pub firmware: Option<String>,
    /// Capabilities the device has (catalog names), sorted.
    pub capabilities: Vec<String>,
    /// Normalized actions the device supports, sorted.
    pub actions: Vec<String>,
}

/// A device as the API serves it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Device {
    /// Stable id, see [`device_id`].
    pub id: String,
    /// Plugin that owns the device.
    pub plugin_id: String,
    /// The device's id within its plugin.
    pub external_id: String,
    /// Descriptive data.
    pub metadata: DeviceMetadata,
    /// Whether the device is reachable.
    pub online: bool,
}
