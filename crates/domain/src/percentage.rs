//! A lane's share of contexts: one type for what people write (`12.5`), what is stored and
//! bucketed (basis points, 1250) and what is shown (`12.5 %`).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// 0 to 100 % with at most two decimals, held as basis points (0..=10000). Its JSON is the
/// number people write (`12.5`); a number outside that is refused with the sentence of
/// [`Percentage::parse`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Percentage(u32);

impl Percentage {
    /// The most basis points: 100 %.
    pub const MAX_BP: u32 = 10_000;
    pub const ZERO: Percentage = Percentage(0);
    pub const ALL: Percentage = Percentage(Self::MAX_BP);

    /// A percentage (0–100, at most two decimals): `12.34` is 1234 basis points.
    ///
    /// Float noise such as `30.000000000000004` (from `0.1 + 0.2`-style arithmetic in a client)
    /// is accepted as the two-decimal value within 1e-9 of it; anything further off is refused
    /// rather than silently rounded, so the stored weight is exactly what the user meant.
    pub fn parse(percentage: f64) -> Result<Self, String> {
        if !percentage.is_finite() || !(0.0..=100.0).contains(&percentage) {
            return Err(format!(
                "percentage {percentage} is out of range; use a number from 0 to 100"
            ));
        }
        let basis_points = (percentage * 100.0).round();
        if (percentage - basis_points / 100.0).abs() > 1e-9 {
            return Err(format!(
                "percentage {percentage} has more than two decimals; round it to e.g. {:.2}",
                basis_points / 100.0
            ));
        }
        // A whole number in 0..=10000 by the checks above, so the cast is exact.
        Ok(Self(basis_points as u32))
    }

    /// `None` above [`Self::MAX_BP`].
    pub const fn from_bp(bp: u32) -> Option<Self> {
        if bp <= Self::MAX_BP {
            Some(Self(bp))
        } else {
            None
        }
    }

    /// Basis points, 0..=10000: what a lane's bucket is compared with.
    pub const fn bp(self) -> u32 {
        self.0
    }

    /// The number people write: `12.5`.
    pub fn as_f64(self) -> f64 {
        f64::from(self.0) / 100.0
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }
}

/// `25 %`, `12.5 %`, `12.34 %`.
impl fmt::Display for Percentage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (whole, hundredths) = (self.0 / 100, self.0 % 100);
        match hundredths {
            0 => write!(f, "{whole} %"),
            h if h % 10 == 0 => write!(f, "{whole}.{} %", h / 10),
            h => write!(f, "{whole}.{h:02} %"),
        }
    }
}

impl Serialize for Percentage {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.as_f64())
    }
}

impl<'de> Deserialize<'de> for Percentage {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Percentage::parse(f64::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bp(percentage: f64) -> Result<u32, String> {
        Percentage::parse(percentage).map(Percentage::bp)
    }

    #[test]
    fn percentages_become_basis_points() {
        assert_eq!(bp(0.0), Ok(0));
        assert_eq!(bp(-0.0), Ok(0));
        assert_eq!(bp(12.34), Ok(1234));
        assert_eq!(bp(0.01), Ok(1));
        assert_eq!(bp(0.29), Ok(29));
        assert_eq!(bp(99.99), Ok(9999));
        assert_eq!(bp(100.0), Ok(10_000));
        assert_eq!(bp(0.1 + 0.2), Ok(30));
        assert_eq!(bp(30.000000000000004), Ok(3000));
        for bad in [-0.01, 100.01, f64::NAN, f64::INFINITY] {
            let message = bp(bad).unwrap_err();
            assert!(message.contains("from 0 to 100"), "{message}");
        }
        assert_eq!(
            bp(12.345).unwrap_err(),
            "percentage 12.345 has more than two decimals; round it to e.g. 12.35"
        );
        assert!(bp(30.0000001).is_err());
    }

    #[test]
    fn every_two_decimal_percentage_is_exact() {
        for basis_points in 0..=Percentage::MAX_BP {
            let percentage = format!("{}.{:02}", basis_points / 100, basis_points % 100);
            assert_eq!(bp(percentage.parse().unwrap()), Ok(basis_points));
        }
    }

    #[test]
    fn percentages_read_as_people_write_them() {
        let shown = |bp| Percentage::from_bp(bp).unwrap().to_string();
        assert_eq!(shown(2500), "25 %");
        assert_eq!(shown(1234), "12.34 %");
        assert_eq!(shown(1250), "12.5 %");
        assert_eq!(shown(1), "0.01 %");
        assert_eq!(shown(10_000), "100 %");
        assert_eq!(shown(0), "0 %");
        assert_eq!(Percentage::from_bp(10_001), None);
    }

    #[test]
    fn json_is_the_number_people_write() {
        let p = Percentage::parse(12.5).unwrap();
        assert_eq!(serde_json::to_string(&p).unwrap(), "12.5");
        assert_eq!(serde_json::to_string(&Percentage::ALL).unwrap(), "100.0");
        assert_eq!(serde_json::from_str::<Percentage>("12.5").unwrap(), p);
        assert_eq!(serde_json::from_str::<Percentage>("5").unwrap().bp(), 500);
        let e = serde_json::from_str::<Percentage>("100.5").unwrap_err();
        assert!(e.to_string().contains("out of range"), "{e}");
    }

    proptest! {
        #[test]
        fn json_round_trips(bp in 0..=Percentage::MAX_BP) {
            let p = Percentage::from_bp(bp).unwrap();
            let json = serde_json::to_string(&p).unwrap();
            prop_assert_eq!(serde_json::from_str::<Percentage>(&json).unwrap(), p);
            // The same JSON the f64 percentages of before were written as.
            prop_assert_eq!(json, serde_json::to_string(&(f64::from(bp) / 100.0)).unwrap());
        }
    }
}
