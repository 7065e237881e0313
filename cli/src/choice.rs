//! clap parsing for the library's option lists ([`neardb::Choice`]: index kinds,
//! quantizations, layouts). The lists live once in the library, which must not depend on clap;
//! this parser gives each of them what `#[derive(ValueEnum)]` would — the possible values with
//! their help in `--help`, and clap's own error listing them — without a second copy of a list.

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use neardb::Choice;

/// The value parser of a `--option` that takes one of `T`'s names.
pub fn choice<T: Choice>() -> impl TypedValueParser<Value = T> {
    let names = T::ALL.iter().map(|c| PossibleValue::new(c.name()).help(c.about()));
    // PossibleValuesParser has already refused any other name, so the lookup cannot miss; the
    // error arm keeps the parse total all the same.
    PossibleValuesParser::new(names).try_map(|name| T::from_name(&name))
}
