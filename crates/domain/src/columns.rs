//! The domain's words and times as database columns (the `sqlx` feature, which only the server
//! turns on): stored as the text they are written as, read back through `FromStr`, so a value
//! outside its set is a decode error (a corrupt row fails loudly), never a silent default.

use crate::audit::AuditAction;
use crate::format::ConfigFormat;
use crate::model::{
    ChangeAction, ChangeStatus, DeliveryStatus, LaneStatus, Percentage, ReleaseKind, Role,
    Timestamp, TriggerAction,
};
use crate::notify::ChannelFormat;
use crate::plan::decide::{PlanAction, PlanState};
use crate::plan::guard::GuardStatus;
use crate::plan::GuardKind;
use sqlx::any::{AnyTypeInfo, AnyValueRef};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::{Any, Decode, Encode, Type};

type AnyArgumentBuffer<'q> = <Any as sqlx::Database>::ArgumentBuffer<'q>;

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
text_column!(PlanState);
text_column!(PlanAction);
text_column!(GuardStatus);
text_column!(GuardKind);
text_column!(ChangeStatus);
text_column!(ChangeAction);
text_column!(ChannelFormat);
text_column!(DeliveryStatus);
text_column!(TriggerAction);

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

/// Percentages are stored as their basis points, an integer 0..=10000.
impl Type<Any> for Percentage {
    fn type_info() -> AnyTypeInfo {
        <i64 as Type<Any>>::type_info()
    }

    fn compatible(ty: &AnyTypeInfo) -> bool {
        ty.kind().is_integer()
    }
}

impl<'r> Decode<'r, Any> for Percentage {
    fn decode(value: AnyValueRef<'r>) -> Result<Self, BoxDynError> {
        let bp = <i64 as Decode<Any>>::decode(value)?;
        u32::try_from(bp)
            .ok()
            .and_then(Percentage::from_bp)
            .ok_or_else(|| format!("corrupt row: {bp} basis points is not a percentage").into())
    }
}

impl<'q> Encode<'q, Any> for Percentage {
    fn encode_by_ref(&self, buf: &mut AnyArgumentBuffer<'q>) -> Result<IsNull, BoxDynError> {
        <i64 as Encode<Any>>::encode(i64::from(self.bp()), buf)
    }
}
