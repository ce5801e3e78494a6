//! The scenario JSON Schema: every built-in scenario validates against it, and
//! files the server refuses are refused by it too.
