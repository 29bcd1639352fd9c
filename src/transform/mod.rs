//! What the consumer does to an event between decoding and encoding: [`normalize`] every
//! spelling of every attribute into one event (and, in [`signals`], one metric point or span),
//! and apply the tenant's [`content`] policy.

pub mod content;
pub mod normalize;
pub mod signals;
