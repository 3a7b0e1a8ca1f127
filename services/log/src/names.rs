//! Naming rules for topics and consumer groups, shared by every backend so a name valid for one
//! is valid for all. Names become directory names in the embedded backend, hence the strictness.

use crate::LogError;

/// Longest accepted topic or group name.
pub const MAX_NAME_LEN: usize = 200;

fn check(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("must not be empty");
    }
    if name.len() > MAX_NAME_LEN {
        return Err("longer than 200 characters");
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
        return Err("only ASCII letters, digits, '.', '_' and '-' are allowed");
    }
    if name == "." || name == ".." {
        return Err("'.' and '..' are not names");
    }
    Ok(())
}

/// Checks a topic name: 1 to 200 ASCII letters, digits, `.`, `_` or `-`, not `.` or `..`, and
/// not starting with `__` (reserved for the log's own data, as in Kafka).
pub fn validate_topic_name(name: &str) -> Result<(), LogError> {
    let reason = match check(name) {
        Err(reason) => reason,
        Ok(()) if name.starts_with("__") => "names starting with '__' are reserved",
        Ok(()) => return Ok(()),
    };
    Err(LogError::InvalidTopicName { name: name.to_owned(), reason })
}

/// Checks a consumer group name (same character rules as topics).
pub fn validate_group_name(name: &str) -> Result<(), LogError> {
    check(name).map_err(|reason| LogError::InvalidGroupName { name: name.to_owned(), reason })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names() {
        for ok in ["device-events", "raw.acme_1", "A", &"x".repeat(200), ".hidden", "a..b"] {
            validate_topic_name(ok).unwrap();
        }
        for bad in ["", ".", "..", "a/b", "a b", "é", "__groups", "__x", &"x".repeat(201), "a\0"] {
            assert!(matches!(validate_topic_name(bad), Err(LogError::InvalidTopicName { .. })), "{bad:?} accepted");
        }
    }

    #[test]
    fn group_names() {
        validate_group_name("projector").unwrap();
        validate_group_name("__ok-for-groups").unwrap();
        assert!(matches!(validate_group_name("../x"), Err(LogError::InvalidGroupName { .. })));
    }
}
