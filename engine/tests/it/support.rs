//! What several test servers share.

pub use engine::testing::read_request;
