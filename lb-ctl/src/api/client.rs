//! Control API client (CLI side).
