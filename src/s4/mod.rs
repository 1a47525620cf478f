//! The S4 wire format: S4F2 data frames and S4P1 padding (`frame`), the
//! `.s4index` sidecar (`index`), and whole objects with their metadata and
//! the gateway's GET decision (`object`). FORMAT.md §8–§9.

pub mod frame;
pub mod index;
pub mod object;
