//! Integration tests of the transcript core: fidelity against tmux's own
//! captures, seeding from a real tmux, and the resume invariant.

mod cases;
mod differential;
mod fidelity;
mod fixtures;
mod live;
mod properties;
mod resume;
mod seed;
