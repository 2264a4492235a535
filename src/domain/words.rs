//! One way to write an enum of words (lane statuses, release kinds, audit actions): [`words`].
//! A leaf of `domain`, so the domain and the shapes above it can both use it.

/// Declares an enum of words: serde, `as_str`, `Display`, `FromStr` and `ALL`
/// from one table, so the stored, sent and shown spellings cannot drift apart.
macro_rules! words {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::ALL.iter().copied().find(|w| w.as_str() == s).ok_or_else(|| {
                    let all: Vec<&str> = Self::ALL.iter().map(|w| w.as_str()).collect();
                    format!(
                        "unknown {} {}; expected one of {}",
                        stringify!($name),
                        crate::error::quoted(s),
                        all.join(", ")
                    )
                })
            }
        }
    };
}

pub(crate) use words;
