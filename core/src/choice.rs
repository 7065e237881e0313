//! Closed sets of named options — index kinds, quantizations, slot layouts — listed once, so
//! the CLI, the harness entry, the browser API and the tests parse and print them alike.

use core::fmt;

/// A value from a fixed list, known by a lower-case name.
pub trait Choice: Copy + Eq + Send + Sync + 'static {
    /// What the list is called in messages ("index kind").
    const WHAT: &'static str;
    /// Every value, in the order help texts show them.
    const ALL: &'static [Self];
    /// The name users type.
    fn name(self) -> &'static str;
    /// One line saying what the value means (help texts).
    fn about(self) -> &'static str;
    /// The value called `name`, if any.
    fn from_name(name: &str) -> Result<Self, UnknownChoice> {
        Self::ALL.iter().copied().find(|c| c.name() == name).ok_or(UnknownChoice {
            what: Self::WHAT,
            found: name.into(),
            expected: ExpectedNames(Self::ALL.iter().map(|c| c.name()).collect()),
        })
    }
}

/// A name that is not in a [`Choice`]'s list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {found:?}: expected one of {expected}")]
pub struct UnknownChoice {
    /// What the list is called.
    pub what: &'static str,
    /// The name given.
    pub found: alloc::string::String,
    /// The names it could have been.
    pub expected: ExpectedNames,
}

/// The names of a list, printed comma-separated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedNames(pub alloc::vec::Vec<&'static str>);

impl fmt::Display for ExpectedNames {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, n) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(n)?;
        }
        Ok(())
    }
}
