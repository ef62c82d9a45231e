//! The crate's one error type: a NATS variable that is missing or unusable.

/// A NATS variable is missing, contradicts another, or cannot be used.
///
/// Messages name the variable and never echo a password.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SettingsError {
    /// A variable that must be set is not (or is blank).
    #[error("{variable} is not set; {hint}")]
    Missing {
        variable: &'static str,
        hint: &'static str,
    },
    /// A variable is set to something unusable.
    #[error("{variable} is not valid: {reason}")]
    Invalid {
        variable: &'static str,
        reason: String,
    },
}

impl SettingsError {
    /// What is wrong, after the variable's name: `is not set; …` or
    /// `is not valid: …`, for crates whose errors put the two together.
    pub fn reason(&self) -> String {
        match self {
            SettingsError::Missing { hint, .. } => format!("is not set; {hint}"),
            SettingsError::Invalid { reason, .. } => format!("is not valid: {reason}"),
        }
    }

    /// The variable to fix.
    pub fn variable(&self) -> &'static str {
        match self {
            SettingsError::Missing { variable, .. } | SettingsError::Invalid { variable, .. } => {
                variable
            }
        }
    }
}
