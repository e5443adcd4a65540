//! Mounted-directory source (`--from-dir`): not yet implemented in this build.
