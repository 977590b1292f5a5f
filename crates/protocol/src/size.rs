//! Pane and window size limits shared by every party: a size is checked
//! before anything is allocated for it (protocol §6).

/// Largest accepted width or height (protocol §6).
pub const MAX_DIM: u16 = 1000;

/// A refused pane size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("pane size {cols}x{rows} out of range 1..={MAX_DIM}")]
pub struct SizeError {
    pub cols: u32,
    pub rows: u32,
}

/// Checks a size before anything is allocated for it.
pub fn check_size(cols: u32, rows: u32) -> Result<(u16, u16), SizeError> {
    let ok = |v: u32| (1..=u32::from(MAX_DIM)).contains(&v);
    if ok(cols) && ok(rows) {
        Ok((cols as u16, rows as u16))
    } else {
        Err(SizeError { cols, rows })
    }
}
