//! Enums of words: one table gives each value its stored, sent and shown spelling.

/// What every enum declared with [`words!`] offers, for code generic over such enums (reading
/// one from a request with a sentence that lists the words).
pub trait Words: Copy + 'static {
    /// Every value, in declaration order.
    const ALL: &'static [Self];

    fn as_str(self) -> &'static str;

    /// Every word, joined by `", "`: `abort, pause`.
    fn listed() -> String {
        Self::ALL
            .iter()
            .map(|w| w.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Declares an enum of words: serde, `as_str`, `Display`, `FromStr`, `ALL` and [`Words`]
/// from one table, so the stored, sent and shown spellings cannot drift apart.
macro_rules! words {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ::serde::Serialize, ::serde::Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant,)+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl $crate::words::Words for $name {
            const ALL: &'static [$name] = $name::ALL;

            fn as_str(self) -> &'static str {
                $name::as_str(self)
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::ALL.iter().copied().find(|w| w.as_str() == s).ok_or_else(|| {
                    format!(
                        "unknown {} {}; expected one of {}",
                        stringify!($name),
                        $crate::quote::quoted(s),
                        <$name as $crate::words::Words>::listed()
                    )
                })
            }
        }
    };
}
pub(crate) use words;

#[cfg(test)]
mod tests {
    use super::Words;

    words! {
        /// A test enum.
        pub enum Light {
            Red = "red",
            AmberBlink = "amber_blink",
        }
    }

    #[test]
    fn one_table_gives_every_spelling() {
        assert_eq!(Light::AmberBlink.as_str(), "amber_blink");
        assert_eq!(Light::AmberBlink.to_string(), "amber_blink");
        assert_eq!("red".parse::<Light>(), Ok(Light::Red));
        assert_eq!(
            serde_json::to_value(Light::AmberBlink).unwrap(),
            "amber_blink"
        );
        assert_eq!(
            serde_json::from_value::<Light>("red".into()).unwrap(),
            Light::Red
        );
        assert_eq!(Light::listed(), "red, amber_blink");
        let e = "green".parse::<Light>().unwrap_err();
        assert!(
            e.contains("unknown Light") && e.contains("red, amber_blink"),
            "{e}"
        );
    }
}
