//! Runtime overrides.
