//! Columns read as the words they hold: a value outside its set is a decode
//! error (a corrupt row fails loudly), never a silent default.

use crate::domain::format::ConfigFormat;
use crate::model::{AuditAction, LaneStatus, ReleaseKind, Role, Timestamp};
use sqlx::any::{AnyTypeInfo, AnyValueRef};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;

type AnyArgumentBuffer<'q> = <Any as sqlx::Database>::ArgumentBuffer<'q>;
use sqlx::{Any, Decode, Encode, Type};

/// Implements text storage for a type with `as_str` and `FromStr`.
macro_rules! text_column {
    ($t:ty) => {
        impl Type<Any> for $t {
            fn type_info() -> AnyTypeInfo {
                <&str as Type<Any>>::type_info()
            }
        }

        impl<'r> Decode<'r, Any> for $t {
            fn decode(value: AnyValueRef<'r>) -> Result<Self, BoxDynError> {
                let text = <&str as Decode<Any>>::decode(value)?;
                text.parse::<$t>().map_err(|e| {
                    format!("corrupt row: {text:?} is not a {}: {e}", stringify!($t)).into()
                })
            }
        }

        impl<'q> Encode<'q, Any> for $t {
            fn encode_by_ref(
                &self,
                buf: &mut AnyArgumentBuffer<'q>,
            ) -> Result<IsNull, BoxDynError> {
                <&str as Encode<Any>>::encode(self.as_str(), buf)
            }
        }
    };
}

text_column!(ConfigFormat);
text_column!(Role);
text_column!(ReleaseKind);
text_column!(LaneStatus);
text_column!(AuditAction);

/// A lane's targets, stored as a JSON array of strings (written only that way by the lane
/// queries): anything else is a corrupt row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Targets(pub Vec<String>);

impl Type<Any> for Targets {
    fn type_info() -> AnyTypeInfo {
        <&str as Type<Any>>::type_info()
    }
}

impl<'r> Decode<'r, Any> for Targets {
    fn decode(value: AnyValueRef<'r>) -> Result<Self, BoxDynError> {
        let text = <&str as Decode<Any>>::decode(value)?;
        serde_json::from_str(text).map(Targets).map_err(|e| {
            format!("corrupt row: lane targets {text:?} are not a JSON list of strings: {e}").into()
        })
    }
}

/// An audit entry's details: a JSON value, or a corrupt row.
#[derive(Debug, Clone, PartialEq)]
pub struct Details(pub serde_json::Value);

impl Type<Any> for Details {
    fn type_info() -> AnyTypeInfo {
        <&str as Type<Any>>::type_info()
    }
}

impl<'r> Decode<'r, Any> for Details {
    fn decode(value: AnyValueRef<'r>) -> Result<Self, BoxDynError> {
        let text = <&str as Decode<Any>>::decode(value)?;
        serde_json::from_str(text)
            .map(Details)
            .map_err(|e| format!("corrupt row: audit details {text:?} are not JSON: {e}").into())
    }
}

/// Times are stored as RFC 3339 text with milliseconds (see [`Timestamp`]).
impl Type<Any> for Timestamp {
    fn type_info() -> AnyTypeInfo {
        <&str as Type<Any>>::type_info()
    }
}

impl<'r> Decode<'r, Any> for Timestamp {
    fn decode(value: AnyValueRef<'r>) -> Result<Self, BoxDynError> {
        let text = <&str as Decode<Any>>::decode(value)?;
        text.parse::<Timestamp>()
            .map_err(|e| format!("corrupt row: {e}").into())
    }
}

impl<'q> Encode<'q, Any> for Timestamp {
    fn encode_by_ref(&self, buf: &mut AnyArgumentBuffer<'q>) -> Result<IsNull, BoxDynError> {
        <String as Encode<Any>>::encode(self.to_string(), buf)
    }
}

/// A yes/no column, stored as the integer 0 or 1 on both engines (SQLite has no
/// boolean type; the PostgreSQL schema keeps the same integers so one query fits both).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flag(pub bool);

impl From<Flag> for bool {
    fn from(f: Flag) -> bool {
        f.0
    }
}

impl Type<Any> for Flag {
    fn type_info() -> AnyTypeInfo {
        <i64 as Type<Any>>::type_info()
    }
    fn compatible(ty: &AnyTypeInfo) -> bool {
        ty.kind().is_integer() || ty.kind() == sqlx::any::AnyTypeInfoKind::Bool
    }
}

impl<'r> Decode<'r, Any> for Flag {
    fn decode(value: AnyValueRef<'r>) -> Result<Self, BoxDynError> {
        // A PostgreSQL boolean, or an integer (either engine's 0/1).
        match <bool as Decode<Any>>::decode(value.clone()) {
            Ok(b) => Ok(Flag(b)),
            Err(_) => <i64 as Decode<Any>>::decode(value).map(|i| Flag(i != 0)),
        }
    }
}

impl<'q> Encode<'q, Any> for Flag {
    fn encode_by_ref(&self, buf: &mut AnyArgumentBuffer<'q>) -> Result<IsNull, BoxDynError> {
        <i64 as Encode<Any>>::encode(i64::from(self.0), buf)
    }
}

/// An optional float as a query argument, a double on both engines whether or not it is
/// NULL. sqlx 0.8.6's `Any` driver hands PostgreSQL a NULL `f64` as a `real` (float4); the
/// statement it prepared for that first call is then reused for the next, non-NULL value,
/// which PostgreSQL refuses ("incorrect binary data format"). A NULL `f32` goes as a double.
#[derive(Debug, Clone, Copy)]
pub struct Real(pub Option<f64>);

impl Type<Any> for Real {
    fn type_info() -> AnyTypeInfo {
        <f64 as Type<Any>>::type_info()
    }
}

impl<'q> Encode<'q, Any> for Real {
    fn encode_by_ref(&self, buf: &mut AnyArgumentBuffer<'q>) -> Result<IsNull, BoxDynError> {
        match self.0 {
            Some(v) => <f64 as Encode<Any>>::encode(v, buf),
            None => <Option<f32> as Encode<Any>>::encode(None, buf),
        }
    }
}
