//! The full story (see full_story test).
