//! Label selectors: Kubernetes label-selector syntax plus ordered comparisons.
//!
//! ```text
//! selector    := "" | requirement ("," requirement)*
//! requirement := key ("=" | "==" | "!=") value
//!              | key ("in" | "notin") "(" value ("," value)* ")"
//!              | key | "!" key
//!              | key (">" | ">=" | "<" | "<=") value
//! key, value  := [A-Za-z0-9._/-]+      (whitespace around tokens is ignored)
//! ```
//!
//! A selector a user sends ([`Selector::parse_input`]) is also bounded: every lane's selector is
//! kept in memory and evaluated on every resolve, and repeated in the audit trail.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::Context;

/// The most bytes of selector text a user may send.
pub const MAX_SELECTOR_BYTES: usize = 4096;
/// The most requirements a selector a user sends may have.
pub const MAX_REQUIREMENTS: usize = 32;
/// The most values one `in` or `notin` list of a selector a user sends may have.
pub const MAX_LIST_VALUES: usize = 256;

/// Whether `c` may appear in a key or a value (of a selector or of a label).
pub fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-')
}

/// A parsed selector: every requirement must hold. The empty selector matches every context.
///
/// Serialized as its canonical text, so it travels as a plain string in JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Selector {
    requirements: Vec<Requirement>,
}

/// One condition on one context key, e.g. `region=beijing` or `version>=2.1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    key: String,
    operator: Operator,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Operator {
    Equals(String),
    NotEquals(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    DoesNotExist,
    Compare(Comparison, String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Comparison {
    Greater,
    GreaterOrEqual,
    Less,
    LessOrEqual,
}

/// Why a selector text was rejected, pointing at the offending character.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize, Deserialize)]
#[error("position {position}: {message}")]
pub struct SelectorError {
    /// 0-based character offset into the selector text (equal to its length at the end).
    pub position: usize,
    /// What the parser needed at `position`, e.g. `a value after "="`.
    pub expected: String,
    /// The whole sentence, e.g. `expected a value after "=", found "("`.
    pub message: String,
}

impl SelectorError {
    /// 0-based character offset of the problem, for underlining it in an editor.
    pub fn position(&self) -> usize {
        self.position
    }
}

impl Selector {
    /// Parses selector text; see the module documentation for the grammar. Without the limits
    /// of [`Selector::parse_input`]: for selectors already stored or served (accepted when they
    /// were sent, perhaps before the limits existed).
    pub fn parse(text: &str) -> Result<Selector, SelectorError> {
        Parser::new(text, false).selector()
    }

    /// Parses selector text a user sends: the grammar, within [`MAX_SELECTOR_BYTES`],
    /// [`MAX_REQUIREMENTS`] and [`MAX_LIST_VALUES`]; an error names the limit and the position
    /// where the text crosses it.
    pub fn parse_input(text: &str) -> Result<Selector, SelectorError> {
        if text.len() > MAX_SELECTOR_BYTES {
            // The first character that does not fit.
            let position = text
                .char_indices()
                .take_while(|(i, c)| i + c.len_utf8() <= MAX_SELECTOR_BYTES)
                .count();
            return Err(SelectorError {
                position,
                expected: format!("at most {MAX_SELECTOR_BYTES} bytes"),
                message: format!(
                    "a selector has at most {MAX_SELECTOR_BYTES} bytes, this one has {}; \
                     match on a label the instances share instead of listing them",
                    text.len()
                ),
            });
        }
        Parser::new(text, true).selector()
    }

    /// True when every requirement holds in `ctx`.
    pub fn matches(&self, ctx: &Context) -> bool {
        self.first_unmet(ctx).is_none()
    }

    /// The first requirement that does not hold in `ctx`, to explain a non-match.
    pub fn first_unmet(&self, ctx: &Context) -> Option<&Requirement> {
        self.requirements.iter().find(|r| !r.holds(ctx))
    }

    /// True for the empty selector, which matches everything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }
}

impl Requirement {
    /// The context key this requirement looks at.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Whether this requirement holds in `ctx`. `!=` and `notin` hold when the key is absent (as
    /// in Kubernetes); ordered comparisons never hold for an absent key.
    pub fn holds(&self, ctx: &Context) -> bool {
        let actual = ctx.get(&self.key).map(String::as_str);
        match &self.operator {
            Operator::Equals(value) => actual == Some(value),
            Operator::NotEquals(value) => actual != Some(value),
            Operator::In(values) => actual.is_some_and(|a| values.iter().any(|v| v == a)),
            Operator::NotIn(values) => actual.is_none_or(|a| values.iter().all(|v| v != a)),
            Operator::Exists => actual.is_some(),
            Operator::DoesNotExist => actual.is_none(),
            Operator::Compare(comparison, value) => actual
                .and_then(|a| compare(a, value))
                .is_some_and(|ordering| comparison.accepts(ordering)),
        }
    }
}

impl Comparison {
    fn accepts(self, ordering: Ordering) -> bool {
        match self {
            Comparison::Greater => ordering.is_gt(),
            Comparison::GreaterOrEqual => ordering.is_ge(),
            Comparison::Less => ordering.is_lt(),
            Comparison::LessOrEqual => ordering.is_le(),
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            Comparison::Greater => ">",
            Comparison::GreaterOrEqual => ">=",
            Comparison::Less => "<",
            Comparison::LessOrEqual => "<=",
        }
    }
}

/// Orders two values as versions when both are versions, else as numbers when both are numbers;
/// `None` when they are not comparable, which makes the requirement false.
fn compare(actual: &str, expected: &str) -> Option<Ordering> {
    if let (Some(a), Some(b)) = (Version::parse(actual), Version::parse(expected)) {
        return Some(a.cmp(&b));
    }
    parse_number(actual)?.partial_cmp(&parse_number(expected)?)
}

/// A decimal number such as `42`, `-3` or `0.25`. Deliberately narrower than Rust's float
/// syntax (no `inf`, `NaN` or exponents) so SDKs in other languages agree on what is a number.
fn parse_number(text: &str) -> Option<f64> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, "0"));
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if all_digits(whole) && all_digits(fraction) {
        text.parse().ok()
    } else {
        None
    }
}

/// `MAJOR[.MINOR[.PATCH]][-PRERELEASE]`; missing parts are 0, and a pre-release sorts before its
/// release with identifiers compared as in SemVer (numeric ones numerically and below
/// alphanumeric ones).
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Version {
    release: [u64; 3],
    // `None` sorts before `Some`, but a release must sort after its pre-releases: hence the flag.
    is_release: bool,
    pre: Vec<PreIdentifier>,
}

// Variant order matters: numeric identifiers sort below alphanumeric ones.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum PreIdentifier {
    Numeric(u64),
    Alphanumeric(String),
}

impl Version {
    fn parse(text: &str) -> Option<Version> {
        let (release_text, pre_text) = match text.split_once('-') {
            Some((release, pre)) => (release, Some(pre)),
            None => (text, None),
        };
        let mut release = [0u64; 3];
        let parts: Vec<&str> = release_text.split('.').collect();
        if parts.len() > release.len() {
            return None;
        }
        for (slot, part) in release.iter_mut().zip(&parts) {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            *slot = part.parse().ok()?;
        }
        let pre = match pre_text {
            None => Vec::new(),
            Some(pre) => pre
                .split('.')
                .map(|id| {
                    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    {
                        None
                    } else if id.bytes().all(|b| b.is_ascii_digit()) {
                        id.parse().ok().map(PreIdentifier::Numeric)
                    } else {
                        Some(PreIdentifier::Alphanumeric(id.to_owned()))
                    }
                })
                .collect::<Option<Vec<_>>>()?,
        };
        Some(Version {
            release,
            is_release: pre_text.is_none(),
            pre,
        })
    }
}

impl fmt::Display for Selector {
    /// Canonical text, e.g. `a=b,c!=d,e in (x,y),f,!g,h>=2.1`; it parses back to an equal selector.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, requirement) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{requirement}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = &self.key;
        match &self.operator {
            Operator::Equals(value) => write!(f, "{key}={value}"),
            Operator::NotEquals(value) => write!(f, "{key}!={value}"),
            Operator::In(values) => write!(f, "{key} in ({})", values.join(",")),
            Operator::NotIn(values) => write!(f, "{key} notin ({})", values.join(",")),
            Operator::Exists => write!(f, "{key}"),
            Operator::DoesNotExist => write!(f, "!{key}"),
            Operator::Compare(comparison, value) => {
                write!(f, "{key}{}{value}", comparison.symbol())
            }
        }
    }
}

impl FromStr for Selector {
    type Err = SelectorError;

    fn from_str(text: &str) -> Result<Selector, SelectorError> {
        Selector::parse(text)
    }
}

impl TryFrom<String> for Selector {
    type Error = SelectorError;

    fn try_from(text: String) -> Result<Selector, SelectorError> {
        Selector::parse(&text)
    }
}

impl From<Selector> for String {
    fn from(selector: Selector) -> String {
        selector.to_string()
    }
}

/// Recursive-descent parser over characters, so that error positions are character offsets.
struct Parser {
    chars: Vec<char>,
    pos: usize,
    /// Whether the limits on requirements and list values apply.
    bounded: bool,
}

impl Parser {
    fn new(text: &str, bounded: bool) -> Parser {
        Parser {
            chars: text.chars().collect(),
            pos: 0,
            bounded,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn eat(&mut self, c: char) -> bool {
        let found = self.peek() == Some(c);
        if found {
            self.pos += 1;
        }
        found
    }

    fn skip_whitespace(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn error_at(&self, position: usize, expected: &str) -> SelectorError {
        let found = match self.chars.get(position) {
            Some(c) => format!(", found \"{c}\""),
            None => String::new(),
        };
        SelectorError {
            position,
            expected: expected.to_owned(),
            message: format!("expected {expected}{found}"),
        }
    }

    fn error(&self, expected: &str) -> SelectorError {
        self.error_at(self.pos, expected)
    }

    /// A limit crossed at the current position.
    fn over_limit(&self, expected: String, message: String) -> SelectorError {
        SelectorError {
            position: self.pos,
            expected,
            message,
        }
    }

    fn selector(mut self) -> Result<Selector, SelectorError> {
        let mut requirements = Vec::new();
        self.skip_whitespace();
        if self.peek().is_none() {
            return Ok(Selector { requirements });
        }
        loop {
            if self.bounded && requirements.len() == MAX_REQUIREMENTS {
                return Err(self.over_limit(
                    format!("at most {MAX_REQUIREMENTS} requirements"),
                    format!(
                        "a selector has at most {MAX_REQUIREMENTS} requirements; requirement {} \
                         starts here",
                        MAX_REQUIREMENTS + 1
                    ),
                ));
            }
            requirements.push(self.requirement()?);
            self.skip_whitespace();
            if self.peek().is_none() {
                return Ok(Selector { requirements });
            }
            if !self.eat(',') {
                return Err(self.error("\",\" or the end of the selector"));
            }
            self.skip_whitespace();
        }
    }

    /// A run of key/value characters; `expected` names it in the error when there is none.
    fn token(&mut self, expected: &str) -> Result<String, SelectorError> {
        let start = self.pos;
        while self.peek().is_some_and(is_token_char) {
            self.pos += 1;
        }
        if self.pos == start {
            return Err(self.error(expected));
        }
        Ok(self.chars[start..self.pos].iter().collect())
    }

    fn value_after(&mut self, operator: &str) -> Result<String, SelectorError> {
        self.skip_whitespace();
        self.token(&format!("a value after \"{operator}\""))
    }

    fn requirement(&mut self) -> Result<Requirement, SelectorError> {
        if self.eat('!') {
            self.skip_whitespace();
            let key = self.token("a key after \"!\"")?;
            return Ok(Requirement {
                key,
                operator: Operator::DoesNotExist,
            });
        }
        let key = self.token("a key")?;
        self.skip_whitespace();
        let operator = match self.peek() {
            None | Some(',') => Operator::Exists,
            Some('=') => {
                self.pos += 1;
                let symbol = if self.eat('=') { "==" } else { "=" };
                Operator::Equals(self.value_after(symbol)?)
            }
            Some('!') if self.chars.get(self.pos + 1) == Some(&'=') => {
                self.pos += 2;
                Operator::NotEquals(self.value_after("!=")?)
            }
            Some(first @ ('>' | '<')) => {
                self.pos += 1;
                let or_equal = self.eat('=');
                let comparison = match (first, or_equal) {
                    ('>', false) => Comparison::Greater,
                    ('>', true) => Comparison::GreaterOrEqual,
                    ('<', false) => Comparison::Less,
                    _ => Comparison::LessOrEqual,
                };
                Operator::Compare(comparison, self.value_after(comparison.symbol())?)
            }
            Some(c) if is_token_char(c) => {
                let start = self.pos;
                match self.token("an operator")?.as_str() {
                    "in" => Operator::In(self.value_list("in")?),
                    "notin" => Operator::NotIn(self.value_list("notin")?),
                    _ => return Err(self.error_at(start, OPERATOR_EXPECTED)),
                }
            }
            Some(_) => return Err(self.error(OPERATOR_EXPECTED)),
        };
        Ok(Requirement { key, operator })
    }

    /// `"(" value ("," value)* ")"` after `in` or `notin`.
    fn value_list(&mut self, operator: &str) -> Result<Vec<String>, SelectorError> {
        self.skip_whitespace();
        if !self.eat('(') {
            return Err(self.error(&format!("\"(\" after \"{operator}\"")));
        }
        let mut values = Vec::new();
        loop {
            self.skip_whitespace();
            if self.bounded && values.len() == MAX_LIST_VALUES {
                return Err(self.over_limit(
                    format!("at most {MAX_LIST_VALUES} values in a list"),
                    format!(
                        "a value list has at most {MAX_LIST_VALUES} values; value {} starts here \
                         (match on a label the instances share instead of listing them)",
                        MAX_LIST_VALUES + 1
                    ),
                ));
            }
            values.push(self.token(if values.is_empty() {
                "a value after \"(\""
            } else {
                "a value after \",\""
            })?);
            self.skip_whitespace();
            if self.eat(')') {
                return Ok(values);
            }
            if !self.eat(',') {
                return Err(self.error("\",\" or \")\" to close the list"));
            }
        }
    }
}

const OPERATOR_EXPECTED: &str =
    "an operator (=, ==, !=, in, notin, >, >=, <, <=), \",\" or the end of the selector";

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ctx(pairs: &[(&str, &str)]) -> Context {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn matches(selector: &str, pairs: &[(&str, &str)]) -> bool {
        Selector::parse(selector).unwrap().matches(&ctx(pairs))
    }

    fn error(selector: &str) -> SelectorError {
        Selector::parse(selector).unwrap_err()
    }

    #[test]
    fn canonical_text_round_trips() {
        let text = "a=b,c!=d,e in (x,y),f,!g,h>=2.1";
        let selector = Selector::parse(text).unwrap();
        assert_eq!(selector.to_string(), text);
        assert_eq!(Selector::parse(&selector.to_string()).unwrap(), selector);
    }

    #[test]
    fn whitespace_around_tokens_is_ignored() {
        let loose = Selector::parse("  a == b ,c!= d, e in ( x , y ) ,f , ! g,h >= 2.1 ").unwrap();
        assert_eq!(loose.to_string(), "a=b,c!=d,e in (x,y),f,!g,h>=2.1");
        assert_eq!(
            Selector::parse("e notin(x)").unwrap().to_string(),
            "e notin (x)"
        );
    }

    #[test]
    fn empty_selector_matches_everything() {
        for text in ["", "   "] {
            let selector = Selector::parse(text).unwrap();
            assert!(selector.is_empty());
            assert_eq!(selector.to_string(), "");
            assert!(selector.matches(&Context::new()));
            assert!(selector.matches(&ctx(&[("region", "beijing")])));
        }
    }

    #[test]
    fn equality_and_sets() {
        let beijing = [("region", "beijing"), ("env", "prod")];
        assert!(matches("region=beijing", &beijing));
        assert!(matches("region==beijing,env=prod", &beijing));
        assert!(!matches("region=shanghai", &beijing));
        assert!(!matches("zone=a", &beijing));
        assert!(matches("region!=shanghai", &beijing));
        assert!(!matches("region!=beijing", &beijing));
        assert!(matches("region in (shanghai,beijing)", &beijing));
        assert!(!matches("region in (shanghai)", &beijing));
        assert!(!matches("zone in (a)", &beijing));
        assert!(matches("region notin (shanghai)", &beijing));
        assert!(!matches("region notin (beijing)", &beijing));
    }

    #[test]
    fn not_equals_and_notin_hold_for_absent_keys() {
        assert!(matches("zone!=a", &[]));
        assert!(matches("zone notin (a,b)", &[]));
    }

    #[test]
    fn existence() {
        assert!(matches("canary", &[("canary", "")]));
        assert!(!matches("canary", &[]));
        assert!(matches("!canary", &[]));
        assert!(!matches("!canary", &[("canary", "1")]));
    }

    #[test]
    fn ordered_comparisons_use_versions() {
        fn v(actual: &str) -> [(&str, &str); 1] {
            [("version", actual)]
        }
        assert!(matches("version>=2.1", &v("2.1")));
        assert!(matches("version>=2.1", &v("2.1.0")));
        assert!(matches("version>=2.1", &v("2.10")));
        assert!(!matches("version>=2.1", &v("2.0.9")));
        assert!(matches("version>2", &v("2.0.1")));
        assert!(!matches("version>2", &v("2.0.0")));
        assert!(matches("version<2.1.3", &v("2.1.3-rc.1")));
        assert!(matches("version<=2.1.3-rc.1", &v("2.1.3-rc.1")));
        assert!(matches("version<2.1.3-rc.2", &v("2.1.3-rc.1")));
        assert!(matches("version<2.1.3-rc.10", &v("2.1.3-rc.9")));
        assert!(matches("version<2.1.3-beta", &v("2.1.3-alpha.1")));
        // SemVer: fewer identifiers sort first, numeric below alphanumeric.
        assert!(matches("version<2.1.3-alpha.1", &v("2.1.3-alpha")));
        assert!(matches("version<2.1.3-alpha.x", &v("2.1.3-alpha.1")));
    }

    #[test]
    fn ordered_comparisons_fall_back_to_numbers() {
        assert!(matches("temp>-5", &[("temp", "-3")]));
        assert!(!matches("temp>-5", &[("temp", "-7.5")]));
        assert!(matches("ratio<1", &[("ratio", "-0.5")]));
    }

    #[test]
    fn ordered_comparisons_are_false_when_not_comparable() {
        assert!(!matches("version>1", &[]));
        assert!(!matches("version>1", &[("version", "latest")]));
        assert!(!matches("version<1", &[("version", "latest")]));
        assert!(!matches("tier>gold", &[("tier", "silver")]));
        assert!(!matches("version>=1", &[("version", "1.2.3.4")]));
        assert!(!matches("x<5", &[("x", "inf")]));
        assert!(!matches("x>5", &[("x", "NaN")]));
    }

    #[test]
    fn first_unmet_names_the_failing_requirement() {
        let selector = Selector::parse("env=prod,region=beijing").unwrap();
        let ctx = ctx(&[("env", "prod"), ("region", "shanghai")]);
        let unmet = selector.first_unmet(&ctx).unwrap();
        assert_eq!(unmet.to_string(), "region=beijing");
        assert_eq!(unmet.key(), "region");
    }

    #[test]
    fn errors_name_position_and_expectation() {
        let e = error("region=");
        assert_eq!(e.position(), 7);
        assert_eq!(e.expected, "a value after \"=\"");
        assert_eq!(e.to_string(), "position 7: expected a value after \"=\"");

        let e = error("region=(a)");
        assert_eq!(
            e.to_string(),
            "position 7: expected a value after \"=\", found \"(\""
        );
        assert_eq!(error("region==").position(), 8);
        assert_eq!(error("a!=").expected, "a value after \"!=\"");
        assert_eq!(error("a>= ").position(), 4);
        assert_eq!(error("a>= ").expected, "a value after \">=\"");
    }

    #[test]
    fn error_positions_for_missing_keys() {
        for (text, position, expected) in [
            ("=b", 0, "a key"),
            (",a", 0, "a key"),
            ("a,,b", 2, "a key"),
            ("a,", 2, "a key"),
            ("a, ", 3, "a key"),
            ("!", 1, "a key after \"!\""),
            ("! =x", 2, "a key after \"!\""),
            ("é=1", 0, "a key"),
        ] {
            let e = error(text);
            assert_eq!(
                (e.position(), e.expected.as_str()),
                (position, expected),
                "{text}"
            );
        }
    }

    #[test]
    fn error_positions_for_operators() {
        for (text, position) in [("a b", 2), ("region ni (x)", 7), ("a=>b", 2), ("a ~ b", 2)] {
            let e = error(text);
            assert_eq!(e.position(), position, "{text}");
        }
        assert_eq!(error("a b").expected, OPERATOR_EXPECTED);
        assert_eq!(error("a=>b").expected, "a value after \"=\"");
        assert_eq!(error("a=b c").position(), 4);
        assert_eq!(error("a=b c").expected, "\",\" or the end of the selector");
        assert_eq!(error("a=b=c").position(), 3);
        assert_eq!(error("a!b").position(), 1);
    }

    #[test]
    fn error_positions_for_value_lists() {
        for (text, position, expected) in [
            ("env in x", 7, "\"(\" after \"in\""),
            ("env notin", 9, "\"(\" after \"notin\""),
            ("env in ()", 8, "a value after \"(\""),
            ("env in (a,)", 10, "a value after \",\""),
            ("env in (a", 9, "\",\" or \")\" to close the list"),
            ("env in (a b)", 10, "\",\" or \")\" to close the list"),
        ] {
            let e = error(text);
            assert_eq!(
                (e.position(), e.expected.as_str()),
                (position, expected),
                "{text}"
            );
        }
    }

    #[test]
    fn positions_count_characters_not_bytes() {
        assert_eq!(error("a=b,ü=1").position(), 4);
    }

    #[test]
    fn input_is_bounded_in_bytes_requirements_and_list_values() {
        let list = |n: usize| {
            let values: Vec<String> = (0..n).map(|i| format!("v{i}")).collect();
            format!("k in ({})", values.join(","))
        };
        let full = Selector::parse_input(&list(MAX_LIST_VALUES)).unwrap();
        assert_eq!(full.to_string(), list(MAX_LIST_VALUES));
        let e = Selector::parse_input(&list(MAX_LIST_VALUES + 1)).unwrap_err();
        let at = list(MAX_LIST_VALUES).len() - 1; // where the 257th value starts, after ","
        assert_eq!(
            (e.position(), e.expected.as_str()),
            (at + 1, "at most 256 values in a list")
        );
        assert!(e.message.contains("value 257 starts here"), "{e}");
        assert!(Selector::parse_input(&format!("x notin (a), {}", list(300))).is_err());

        let requirements = |n: usize| (0..n).map(|i| format!("k{i}")).collect::<Vec<_>>();
        let most = requirements(MAX_REQUIREMENTS).join(",");
        assert!(Selector::parse_input(&most).is_ok());
        let e = Selector::parse_input(&format!("{most}, k32")).unwrap_err();
        assert_eq!(e.position(), most.len() + 2);
        assert_eq!(e.expected, "at most 32 requirements");
        assert_eq!(
            e.to_string(),
            format!(
                "position {}: a selector has at most 32 requirements; requirement 33 starts here",
                most.len() + 2
            )
        );

        let longest = format!("k={}", "v".repeat(MAX_SELECTOR_BYTES - 2));
        assert!(Selector::parse_input(&longest).is_ok());
        let e = Selector::parse_input(&format!("{longest}v")).unwrap_err();
        assert_eq!(
            (e.position(), e.expected.as_str()),
            (4096, "at most 4096 bytes")
        );
        assert!(e.message.contains("this one has 4097"), "{e}");
        // Positions count characters: "é" is two bytes.
        let e = Selector::parse_input(&format!("é{longest}")).unwrap_err();
        assert_eq!(e.position(), 4095);
        // The text is not read past the limit, whatever it holds.
        let huge = list(150_000);
        assert_eq!(
            Selector::parse_input(&huge).unwrap_err().expected,
            "at most 4096 bytes"
        );
    }

    #[test]
    fn stored_selectors_parse_without_the_limits() {
        let values: Vec<String> = (0..1000).map(|i| format!("v{i}")).collect();
        let text = format!("k in ({})", values.join(","));
        assert_eq!(Selector::parse(&text).unwrap().to_string(), text);
    }

    #[test]
    fn serializes_as_canonical_text() {
        let selector = Selector::parse("region = beijing , version>=2").unwrap();
        let json = serde_json::to_string(&selector).unwrap();
        assert_eq!(json, "\"region=beijing,version>=2\"");
        assert_eq!(serde_json::from_str::<Selector>(&json).unwrap(), selector);
        let bad = serde_json::from_str::<Selector>("\"region=\"").unwrap_err();
        assert!(bad.to_string().contains("position 7"), "{bad}");
    }

    fn token() -> impl Strategy<Value = String> {
        "[A-Za-z0-9._/-]{1,8}"
    }

    fn requirement() -> impl Strategy<Value = Requirement> {
        let values = || prop::collection::vec(token(), 1..4);
        let comparison = prop_oneof![
            Just(Comparison::Greater),
            Just(Comparison::GreaterOrEqual),
            Just(Comparison::Less),
            Just(Comparison::LessOrEqual),
        ];
        let operator = prop_oneof![
            token().prop_map(Operator::Equals),
            token().prop_map(Operator::NotEquals),
            values().prop_map(Operator::In),
            values().prop_map(Operator::NotIn),
            Just(Operator::Exists),
            Just(Operator::DoesNotExist),
            (comparison, token()).prop_map(|(c, v)| Operator::Compare(c, v)),
        ];
        (token(), operator).prop_map(|(key, operator)| Requirement { key, operator })
    }

    fn selector() -> impl Strategy<Value = Selector> {
        prop::collection::vec(requirement(), 0..6)
            .prop_map(|requirements| Selector { requirements })
    }

    proptest! {
        #[test]
        fn display_parse_round_trips(selector in selector()) {
            let text = selector.to_string();
            prop_assert_eq!(Selector::parse(&text)?, selector);
        }

        #[test]
        fn parse_never_panics(text in "[ a-z0-9=!<>(),.-]{0,24}") {
            if let Ok(selector) = Selector::parse(&text) {
                prop_assert_eq!(Selector::parse(&selector.to_string())?, selector);
            } else if let Err(e) = Selector::parse(&text) {
                prop_assert!(e.position() <= text.chars().count());
            }
        }

        /// The stable-toolchain counterpart of the cargo-fuzz target `fuzz/fuzz_targets/selector.rs`:
        /// any text either parses to a selector whose canonical text parses back to it, or is
        /// refused with a position inside the text.
        #[test]
        fn any_text_parses_canonically_or_names_a_position(text in "\\PC{0,40}") {
            match Selector::parse(&text) {
                Ok(selector) => prop_assert_eq!(Selector::parse(&selector.to_string())?, selector),
                Err(e) => prop_assert!(e.position() <= text.chars().count()),
            }
        }

        /// Within the limits, input parses exactly as a stored selector does.
        #[test]
        fn input_within_the_limits_parses_like_any_text(selector in selector()) {
            let text = selector.to_string();
            prop_assert_eq!(Selector::parse_input(&text)?, selector);
        }

        #[test]
        fn negations_hold_for_absent_keys(key in token(), values in prop::collection::vec(token(), 1..4)) {
            let not_equals = Selector::parse(&format!("{key}!={}", values[0]))?;
            let not_in = Selector::parse(&format!("{key} notin ({})", values.join(",")))?;
            prop_assert!(not_equals.matches(&Context::new()));
            prop_assert!(not_in.matches(&Context::new()));
        }
    }
}
