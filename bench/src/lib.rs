//! Pure parts of the load generator, unit-tested without sockets or clocks:
//! - `stats`: percentiles of latency samples and the median/min/max of repeated runs;
//! - `pace`: rate control (open-loop schedule, closed-loop window size, half-rate);
//! - `tag`: the per-message tag carried in `clientId` and found again in every delivered frame;
//! - `report`: the markdown tables and the SVG plot written from the results.

pub mod pace;
pub mod report;
pub mod stats;
pub mod tag;
