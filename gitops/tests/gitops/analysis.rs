//! Canary analysis.
