//! Mounted-directory source.
