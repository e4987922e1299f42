//! One source of truth for the names of enums: the label written beside
//! each variant is what `as_str`, `Display`, serde and the command line use.

/// Defines a fieldless enum whose variants each carry one label, and
/// derives from that label `as_str`, `ALL`, `Display`, `Serialize` and
/// clap's `ValueEnum` (the variant's doc comment is its `--help` text).
///
/// ```ignore
/// labelled! {
///     /// How bad a finding is.
///     pub enum Severity {
///         /// Below the medium band.
///         Low = "low",
///     }
/// }
/// ```
macro_rules! labelled {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $(
                $(#[doc = $doc:literal])*
                $variant:ident = $label:literal,
            )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $name {
            $(
                $(#[doc = $doc])*
                $variant,
            )+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The variant's name in every output format.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $label,)+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl ::clap::ValueEnum for $name {
            fn value_variants<'a>() -> &'a [Self] {
                Self::ALL
            }

            fn to_possible_value(&self) -> Option<::clap::builder::PossibleValue> {
                let help: &str = match self {
                    $($name::$variant => concat!($($doc),*),)+
                };
                Some(::clap::builder::PossibleValue::new(self.as_str()).help(help.trim().trim_end_matches('.').to_owned()))
            }
        }
    };
}

pub(crate) use labelled;
