//! Helpers the config page's lane panel, plan editor and plan timeline share: which config
//! they work on, and percentages as people read them. A leaf: it imports no page.

use crate::model::ConfigPath;
use leptos::prelude::*;

/// `10`, `12.5`, `0.01`: a percentage with at most two decimals and no trailing zeros.
pub fn format_pct(p: f64) -> String {
    let s = format!("{p:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Which config the panel works on.
#[derive(Clone, Copy)]
pub struct Keys {
    pub ns: Memo<String>,
    pub env: Memo<String>,
    pub key: Memo<String>,
}

impl Keys {
    pub fn path(&self) -> ConfigPath {
        ConfigPath::new(self.ns(), self.env(), self.key())
    }
    pub fn ns(&self) -> String {
        self.ns.get_untracked()
    }
    pub fn env(&self) -> String {
        self.env.get_untracked()
    }
    pub fn key(&self) -> String {
        self.key.get_untracked()
    }
}

/// `word` with its first letter upper case: `pending` → `Pending`.
pub fn capitalized(word: &str) -> String {
    let mut c = word.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}
