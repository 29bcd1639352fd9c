//! What the consumer does to an event between decoding and encoding: [`normalize`] every
//! spelling of every attribute into one event (and, in [`signals`], one metric point or span),
//! and apply the tenant's [`content`] policy. [`attribution`] says who and which team; [`kinds`]
//! is the catalogue of the event kinds with tables of their own.

pub mod attribution;
pub mod content;
pub mod kinds;
pub mod normalize;
pub mod signals;
