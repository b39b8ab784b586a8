//! Matrix products behind a provider trait.
