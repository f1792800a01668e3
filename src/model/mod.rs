//! The baton domain: the `c1.connector.v2` messages, the records they form, and the pure
//! projection from stored source objects to those records.

pub mod connector;
pub mod projection;
pub mod proto;
pub mod record;

pub use record::{Record, RecordChange, Table};
