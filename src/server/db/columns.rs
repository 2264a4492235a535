//! Columns read as the words they hold: a value outside its set is a decode
//! error (a corrupt row fails loudly), never a silent default.

use crate::domain::format::ConfigFormat;
use crate::model::{LaneStatus, ReleaseKind, Role, Timestamp};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::sqlite::{SqliteArgumentValue, SqliteTypeInfo, SqliteValueRef};
use sqlx::{Decode, Encode, Sqlite, Type};

/// Implements text storage for a type with `as_str` and `FromStr`.
macro_rules! text_column {
    ($t:ty) => {
        impl Type<Sqlite> for $t {
            fn type_info() -> SqliteTypeInfo {
                <&str as Type<Sqlite>>::type_info()
            }
        }

        impl<'r> Decode<'r, Sqlite> for $t {
            fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
                let text = <&str as Decode<Sqlite>>::decode(value)?;
                text.parse::<$t>().map_err(|e| {
                    format!("corrupt row: {text:?} is not a {}: {e}", stringify!($t)).into()
                })
            }
        }

        impl<'q> Encode<'q, Sqlite> for $t {
            fn encode_by_ref(
                &self,
                buf: &mut Vec<SqliteArgumentValue<'q>>,
            ) -> Result<IsNull, BoxDynError> {
                <&str as Encode<Sqlite>>::encode(self.as_str(), buf)
            }
        }
    };
}

text_column!(ConfigFormat);
text_column!(Role);
text_column!(ReleaseKind);
text_column!(LaneStatus);

/// A lane's targets, stored as a JSON array of strings (written only that way by the lane
/// queries): anything else is a corrupt row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Targets(pub Vec<String>);

impl Type<Sqlite> for Targets {
    fn type_info() -> SqliteTypeInfo {
        <&str as Type<Sqlite>>::type_info()
    }
}

impl<'r> Decode<'r, Sqlite> for Targets {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        let text = <&str as Decode<Sqlite>>::decode(value)?;
        serde_json::from_str(text).map(Targets).map_err(|e| {
            format!("corrupt row: lane targets {text:?} are not a JSON list of strings: {e}").into()
        })
    }
}

/// An audit entry's details: a JSON value, or a corrupt row.
#[derive(Debug, Clone, PartialEq)]
pub struct Details(pub serde_json::Value);

impl Type<Sqlite> for Details {
    fn type_info() -> SqliteTypeInfo {
        <&str as Type<Sqlite>>::type_info()
    }
}

impl<'r> Decode<'r, Sqlite> for Details {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        let text = <&str as Decode<Sqlite>>::decode(value)?;
        serde_json::from_str(text)
            .map(Details)
            .map_err(|e| format!("corrupt row: audit details {text:?} are not JSON: {e}").into())
    }
}

/// Times are stored as RFC 3339 text with milliseconds (see [`Timestamp`]).
impl Type<Sqlite> for Timestamp {
    fn type_info() -> SqliteTypeInfo {
        <&str as Type<Sqlite>>::type_info()
    }
}

impl<'r> Decode<'r, Sqlite> for Timestamp {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        let text = <&str as Decode<Sqlite>>::decode(value)?;
        text.parse::<Timestamp>()
            .map_err(|e| format!("corrupt row: {e}").into())
    }
}

impl<'q> Encode<'q, Sqlite> for Timestamp {
    fn encode_by_ref(&self, buf: &mut Vec<SqliteArgumentValue<'q>>) -> Result<IsNull, BoxDynError> {
        <String as Encode<Sqlite>>::encode(self.to_string(), buf)
    }
}
