//! The pane emulator: tmux's own model of a pane, in Rust.
//!
//! It follows tmux's source file by file: [`input`] is input.c (the parser
//! and its state tables), [`screen`] is screen-write.c and screen.c (what
//! each control does to the screen), [`grid`] is grid.c and grid-view.c
//! (cells, lines and history), [`capture`] is `grid_string_cells` (what
//! `capture-pane` prints), [`width`] is utf8.c's `utf8_width`. Where tmux
//! releases differ, a [`Profile`] picks the behaviour. Pure: no I/O, no
//! clock (tmux 3.7 also ends an unfinished DCS after 5 s; the model cannot
//! and does not).
//!
//! [`resize`] is screen.c's resize and grid.c's reflow.
//!
//! Not modelled: OSC 8 hyperlinks (tmux 3.4+ prints them in
//! `capture-pane -e`), sixel images,
//! the options that change parsing (`alternate-screen off`,
//! `codepoint-widths`, `variation-selector-always-wide off`,
//! `scroll-on-clear off`).

pub mod capture;
pub mod grid;
pub mod input;
pub mod profile;
pub mod resize;
pub mod screen;
pub mod width;
mod width_table;

pub use grid::{Cell, Grid, Line, LineRef, Texts};
pub use input::Emulator;
pub use profile::Profile;
pub use screen::{CursorStyle, Screen};
