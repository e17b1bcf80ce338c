//! Ids parsed at the edge: a newtype per kind of id, with its shape and a
//! length bound, so a handler never hands the store a 3,000-character key
//! (DynamoDB rejects keys over 2,048 bytes with a 500-worthy error).
//!
//! ```ignore
//! bounded_id!(
//!     /// A user's id (a UUID today; any short token id is accepted).
//!     pub UserId, max = 64
//! );
//! let id: UserId = path_id(&req, "id")?;          // a bad one is 404
//! #[derive(Deserialize)] struct Body { user: UserId } // a bad one is 400 naming `user`
//! ```

use crate::platform::http::{ApiError, Request, path_param};

/// The longest id any route accepts; longer path parameters are 404 before a handler sees them.
pub const MAX_ID_LEN: usize = 128;

/// Why a string is not an id of some kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{kind} must not be empty")]
    Empty { kind: &'static str },
    #[error("{kind} must be at most {max} characters")]
    TooLong { kind: &'static str, max: usize },
    #[error("{kind} may contain only letters, digits, '-' and '_'")]
    BadCharacter { kind: &'static str },
}

/// Checks the common id shape: 1..=`max` ASCII letters, digits, `-` or `_`.
pub fn check(kind: &'static str, max: usize, value: &str) -> Result<(), IdError> {
    if value.is_empty() {
        return Err(IdError::Empty { kind });
    }
    if value.len() > max {
        return Err(IdError::TooLong { kind, max });
    }
    if !value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err(IdError::BadCharacter { kind });
    }
    Ok(())
}

/// A kind of id: its name (for messages) and how it parses.
pub trait BoundedId: Sized {
    const KIND: &'static str;
    fn parse(value: &str) -> Result<Self, IdError>;
}

/// A path parameter parsed as an id of kind `T`: 404 when it is missing or not of that shape
/// (no item can have such an id, so "not found" is the truth).
pub fn path_id<T: BoundedId>(req: &Request, name: &str) -> Result<T, ApiError> {
    let raw = path_param(req, name)?;
    T::parse(raw).map_err(|_| ApiError::not_found("not_found", "Not found."))
}

/// A body or query field parsed as an id of kind `T`: 400 naming the field.
pub fn field_id<T: BoundedId>(field: &str, value: &str) -> Result<T, ApiError> {
    T::parse(value).map_err(|e| ApiError::invalid_field(field, "invalid", e.to_string()))
}

/// Declares an id newtype: private field, `parse`, `as_str`, `Display`, serde (deserializing
/// checks the shape, so a bad id in a JSON body is a 400 naming its field).
#[macro_export]
macro_rules! bounded_id {
    ($(#[$meta:meta])* $vis:vis $name:ident, max = $max:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, ::serde::Serialize, ::serde::Deserialize)]
        #[serde(try_from = "String", into = "String")]
        $vis struct $name(String);

        impl $name {
            pub const MAX_LEN: usize = $max;
            pub fn parse(value: &str) -> Result<Self, $crate::platform::id::IdError> {
                $crate::platform::id::check(stringify!($name), $max, value)?;
                Ok($name(value.to_string()))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl $crate::platform::id::BoundedId for $name {
            const KIND: &'static str = stringify!($name);
            fn parse(value: &str) -> Result<Self, $crate::platform::id::IdError> {
                $name::parse(value)
            }
        }

        impl TryFrom<String> for $name {
            type Error = $crate::platform::id::IdError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                $crate::platform::id::check(stringify!($name), $max, &value)?;
                Ok($name(value))
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

/// Bounds a free-text field: at most `max` characters, else 400 naming the field.
pub fn bounded_text(field: &str, value: &str, max: usize) -> Result<(), ApiError> {
    if value.chars().count() > max {
        return Err(ApiError::invalid_field(field, "too_long", format!("{field} must be at most {max} characters.")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    bounded_id!(pub TestId, max = 8);

    #[test]
    fn an_id_has_a_shape_and_a_bound() {
        assert_eq!(TestId::parse("ab-c_9").unwrap().as_str(), "ab-c_9");
        assert_eq!(TestId::parse(""), Err(IdError::Empty { kind: "TestId" }));
        assert_eq!(TestId::parse("123456789"), Err(IdError::TooLong { kind: "TestId", max: 8 }));
        assert_eq!(TestId::parse("a/b"), Err(IdError::BadCharacter { kind: "TestId" }));
        assert!(TestId::parse("é").is_err());
    }

    #[test]
    fn a_bad_id_in_json_fails_to_deserialize() {
        assert!(serde_json::from_str::<TestId>("\"ok\"").is_ok());
        let err = serde_json::from_str::<TestId>("\"waytoolongid\"").unwrap_err().to_string();
        assert!(err.contains("at most 8"), "{err}");
    }
}
