//! The on-disk format, read back: what tools and tests use to look at a target dir or a
//! last-good copy the way configsnap itself does (every link checked, every file hashed).

pub use crate::snapshot::tree::{node_name, parse_node_name};
pub use crate::writer::{Error, read_current, visible_link_target};
