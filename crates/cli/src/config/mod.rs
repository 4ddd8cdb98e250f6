//! The `vigil` command's configuration machinery, generic over the configuration type.
//!
//! Vigil reads one TOML file. This module turns it into a typed value and, when it cannot, says
//! precisely what is wrong: [`load()`] reports each problem with the file, line and column (or the
//! environment variable) it comes from, a hint, and the offending line. Every key can also be set
//! from the environment (`VIGIL_RUNTIME__EVENT_BUFFER_SIZE=8192`, see [`overrides_from`]), and
//! [`render_default`] writes the complete default configuration, commented from the types' doc
//! comments, in a form that [`load()`] reads back to the same defaults.
//!
//! None of this knows Vigil's concrete `Config`: it works for any type that implements serde's
//! traits, [`schemars::JsonSchema`] and [`Default`], written the way the tests' fixture is:
//!
//! - `#[serde(deny_unknown_fields, default)]` on every struct, so typos are errors and every key
//!   is optional;
//! - a doc comment on every field (schemars turns it into the rendered comment);
//! - durations through [`duration::humantime`], with `#[schemars(with = "String")]`;
//! - named instances as `BTreeMap<String, SomeConfig>` (rendered as `[section.name]` tables);
//! - optionally `#[schemars(example = &"...")]` on keys without a default, which the rendered
//!   file shows commented out.
//!
//! This is phase one of the house rule "raw serde data, then validated objects": values that
//! deserialize but make no sense together are for the validation built on top of it.

pub mod duration;
mod env;
#[cfg(test)]
mod fixture;
mod load;
mod redact;
mod render;

pub use env::{Override, apply_overrides, overrides_from};
pub use load::{ConfigError, ConfigErrors, ConfigSource, Origin, load};
pub use redact::redact;
pub use render::render_default;
