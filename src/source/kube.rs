//! Kubernetes API source.
