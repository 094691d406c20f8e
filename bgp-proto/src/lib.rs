//! The BGP-4 wire codec used by tern: messages, capabilities, path
//! attributes and NLRI, with the error classes of RFC 7606.
//!
//! This crate is pure. It takes bytes and a [`Context`] describing what the
//! session negotiated, and returns values or the NOTIFICATION a session must
//! send; it never touches sockets, clocks or global state, and never panics
//! on any input. Decoding allocates in proportion to the message only.
//!
//! ```
//! use bgp_proto::{Context, Message};
//! let keepalive = [0xff; 16].iter().copied().chain([0, 19, 4]).collect::<Vec<u8>>();
//! assert_eq!(Message::decode(&keepalive, &Context::ebgp()), Ok(Message::Keepalive));
//! ```

#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod aspath;
pub mod attribute;
pub mod builder;
pub mod capability;
pub mod community;
mod family;
pub mod message;
pub mod mp;
pub mod nlri;
pub mod notification;
pub mod open;
pub mod route_refresh;
pub mod update;
mod wire;

pub use aspath::{AsPath, AsSegment, SegmentKind};
pub use attribute::{Aggregator, AttributeError, Attributes, ErrorAction, Origin, RawAttribute};
pub use builder::{BuildError, UpdateBuilder};
pub use capability::Capability;
pub use community::{Community, ExtCommunity, LargeCommunity};
pub use family::{AddPathFamilies, Afi, Context, Family, Safi};
pub use message::{EncodeError, Message, MessageError, MessageType, frame_len};
pub use mp::{MpReach, MpUnreach, NextHop};
pub use nlri::Nlri;
pub use notification::Notification;
pub use open::Open;
pub use route_refresh::{RefreshSubtype, RouteRefresh};
pub use update::Update;
