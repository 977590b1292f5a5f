//! Resizing a screen as tmux does (`screen_resize_cursor`, `screen_resize_y`
//! and `screen_reflow` in screen.c, `grid_reflow` in grid.c): the height
//! changes first (blank lines below the cursor are dropped, then lines go
//! to or come back from the history), then, on the normal screen, every
//! line of history and screen is rewrapped to the new width and the cursor
//! follows its character.
//!
//! It works on all lines at once (history then screen, as tmux's
//! `linedata`), which costs O(history) per resize; panes resize rarely.

use super::grid::{COLOUR_DEFAULT, Cell, Grid, Line};

/// The grid's lines as one array, with tmux's `hsize` and `hscrolled`.
struct All {
    lines: Vec<Line>,
    hsize: usize,
    hscrolled: usize,
    sx: usize,
}

/// `grid_expand_line` on a line for width `sx`.
fn expand(l: &mut Line, want: usize, sx: usize) {
    if want <= l.len() {
        return;
    }
    let size = super::grid::expand_size(sx, want);
    l.resize(size, Cell::cleared(COLOUR_DEFAULT));
}

/// `grid_set_cell` on a line.
fn set_cell(l: &mut Line, x: usize, c: Cell, sx: usize) {
    expand(l, x + 1, sx);
    if x + 1 > usize::from(l.used) {
        l.used = (x + 1) as u16;
    }
    l.set(x, &c);
}

fn width_of(c: &Cell) -> usize {
    usize::from(c.width)
}

impl All {
    /// `grid_reflow_join`.
    fn join(
        &mut self,
        target: &mut Vec<Line>,
        dead: &mut [bool],
        yy: usize,
        mut width: usize,
        already: bool,
    ) {
        let sx = self.sx;
        let to = if already {
            target.len() - 1
        } else {
            target.push(std::mem::take(&mut self.lines[yy]));
            dead[yy] = true;
            target.len() - 1
        };
        let mut at = usize::from(target[to].used);
        let mut lines = 0;
        let mut from: Option<usize> = None;
        let mut want = 0;
        let mut wrapped = true;
        loop {
            if yy + 1 + lines == self.lines.len() {
                break;
            }
            let line = yy + 1 + lines;
            if !self.lines[line].wrapped {
                wrapped = false;
            }
            if self.lines[line].used == 0 {
                if !wrapped {
                    break;
                }
                lines += 1;
                continue;
            }
            let gc = self.lines[line].get(0);
            if width + width_of(&gc) > sx {
                break;
            }
            width += width_of(&gc);
            set_cell(&mut target[to], at, gc, sx);
            at += 1;
            from = Some(line);
            let used = usize::from(self.lines[line].used);
            want = 1;
            while want < used {
                let gc = self.lines[line].get(want);
                if width + width_of(&gc) > sx {
                    break;
                }
                width += width_of(&gc);
                set_cell(&mut target[to], at, gc, sx);
                at += 1;
                want += 1;
            }
            lines += 1;
            if !wrapped || want != used || width == sx {
                break;
            }
        }
        let Some(from) = from else { return };
        if lines == 0 {
            return;
        }
        let left = usize::from(self.lines[from].used) - want;
        if left != 0 {
            // grid_move_cells(gd, 0, want, yy + lines, left, 8)
            let l = &mut self.lines[yy + lines];
            expand(l, want + left, sx);
            l.copy_within(want..want + left, 0);
            l.truncate(left);
            l.used = left as u16;
            lines -= 1;
        } else if !wrapped {
            target[to].wrapped = false;
        }
        for d in dead.iter_mut().skip(yy + 1).take(lines) {
            *d = true;
        }
        if self.hscrolled > to + lines {
            self.hscrolled -= lines;
        } else if self.hscrolled > to {
            self.hscrolled = to;
        }
    }

    /// `grid_reflow_split`.
    fn split(&mut self, target: &mut Vec<Line>, dead: &mut [bool], yy: usize, at: usize) {
        let sx = self.sx;
        let mut gl = std::mem::take(&mut self.lines[yy]);
        dead[yy] = true;
        let used = usize::from(gl.used);
        let was_wrapped = gl.wrapped;
        let mut lines = 2;
        let mut width = 0;
        for i in at..used {
            let w = width_of(&gl.get(i));
            if width + w > sx {
                lines += 1;
                width = 0;
            }
            width += w;
        }
        let first = target.len();
        target.resize_with(first + lines, Line::default);
        let mut line = first + 1;
        width = 0;
        let mut xx = 0;
        for i in at..used {
            let gc = gl.get(i);
            if width + width_of(&gc) > sx {
                target[line].wrapped = true;
                line += 1;
                width = 0;
                xx = 0;
            }
            width += width_of(&gc);
            set_cell(&mut target[line], xx, gc, sx);
            xx += 1;
        }
        if was_wrapped {
            target[line].wrapped = true;
        }
        gl.truncate(at);
        gl.used = at as u16;
        gl.wrapped = true;
        target[first] = gl;
        if yy <= self.hscrolled {
            self.hscrolled += lines - 1;
        }
        // tmux allocates the lines it counted; drop any it did not fill.
        target.truncate(line + 1);
        if width < sx && was_wrapped {
            self.join(target, dead, yy, width, true);
        }
    }

    /// `grid_reflow`: every line rewrapped to `sx`.
    fn reflow(&mut self, sy: usize) {
        let sx = self.sx;
        let n = self.lines.len();
        let mut dead = vec![false; n];
        let mut target: Vec<Line> = Vec::with_capacity(n);
        for yy in 0..n {
            if dead[yy] {
                continue;
            }
            let gl = &self.lines[yy];
            let (mut at, mut width) = (0, 0);
            for i in 0..usize::from(gl.used) {
                let w = width_of(&gl.get(i));
                if at == 0 && width + w > sx {
                    at = i;
                }
                width += w;
            }
            if width == sx {
                target.push(std::mem::take(&mut self.lines[yy]));
                dead[yy] = true;
            } else if width > sx {
                self.split(&mut target, &mut dead, yy, at);
            } else if self.lines[yy].wrapped {
                self.join(&mut target, &mut dead, yy, width, false);
            } else {
                target.push(std::mem::take(&mut self.lines[yy]));
                dead[yy] = true;
            }
        }
        if target.len() < sy {
            target.resize_with(sy, Line::default);
        }
        self.hsize = target.len() - sy;
        self.hscrolled = self.hscrolled.min(self.hsize);
        self.lines = target;
    }

    /// `grid_wrap_position`.
    fn wrap_position(&self, px: usize, py: usize) -> (Option<usize>, usize) {
        let (mut ax, mut ay) = (0, 0);
        for l in &self.lines[..py.min(self.lines.len())] {
            if l.wrapped {
                ax += usize::from(l.used);
            } else {
                ax = 0;
                ay += 1;
            }
        }
        let used = self.lines.get(py).map_or(0, |l| usize::from(l.used));
        if px >= used {
            (None, ay)
        } else {
            (Some(ax + px), ay)
        }
    }

    /// `grid_unwrap_position`.
    fn unwrap_position(&self, wx: Option<usize>, wy: usize) -> (usize, usize) {
        let last = self.lines.len() - 1;
        let mut yy = 0;
        let mut ay = 0;
        while yy < last {
            if ay == wy {
                break;
            }
            if !self.lines[yy].wrapped {
                ay += 1;
            }
            yy += 1;
        }
        let wrapped = |y: usize| y < last && self.lines[y].wrapped;
        let wx = match wx {
            None => {
                while wrapped(yy) {
                    yy += 1;
                }
                usize::from(self.lines[yy].used)
            }
            Some(mut wx) => {
                while wrapped(yy) {
                    let used = usize::from(self.lines[yy].used);
                    if wx < used {
                        break;
                    }
                    wx -= used;
                    yy += 1;
                }
                wx
            }
        };
        (wx, yy)
    }

    /// `grid_clear_lines` (with the wrap of the line above).
    fn clear_lines(&mut self, py: usize, ny: usize) {
        for l in &mut self.lines[py..py + ny] {
            *l = Line::default();
        }
        if py > 0 {
            self.lines[py - 1].wrapped = false;
        }
    }

    /// `screen_resize_y`; `cy` is absolute (history included).
    fn resize_y(&mut self, oldy: usize, sy: usize, history: bool, view_cy: usize, cy: &mut usize) {
        if sy < oldy {
            let mut needed = oldy - sy;
            let available = (oldy - 1).saturating_sub(view_cy).min(needed);
            if available > 0 {
                // grid_view_delete_lines of the bottom lines: cleared,
                // then dropped with the array below.
                self.clear_lines(self.hsize + oldy - available, available);
            }
            needed -= available;
            if history {
                self.hscrolled += needed;
                self.hsize += needed;
            } else if needed > 0 && view_cy > 0 {
                let n = view_cy.min(needed);
                // grid_view_delete_lines(gd, 0, n, 8)
                let top = self.hsize;
                self.lines.drain(top..top + n);
                if top > 0 {
                    self.lines[top - 1].wrapped = false;
                }
                let end = self.lines.len();
                if end > 0 {
                    self.lines[end - 1].wrapped = false;
                }
                self.lines.resize_with(end + n, Line::default);
                *cy -= n;
            }
        }
        self.lines.resize_with(self.hsize + sy, Line::default);
        if sy > oldy {
            let mut needed = sy - oldy;
            let mut available = self.hscrolled;
            if history && available > 0 {
                available = available.min(needed);
                self.hscrolled -= available;
                self.hsize -= available;
            } else {
                available = 0;
            }
            needed -= available;
            // The screen now starts `available` lines higher; what lay
            // below it is gone.
            self.lines.truncate(self.hsize + sy);
            let n = self.lines.len();
            for l in &mut self.lines[n - needed..] {
                *l = Line::default();
            }
        }
    }
}

/// Resizes `grid` to `sx x sy` with the cursor at `(cx, cy)` (view
/// coordinates), reflowing when `reflow` (the normal screen). Returns the
/// new cursor.
pub fn resize(
    grid: &mut Grid,
    sx: usize,
    sy: usize,
    reflow: bool,
    cx: usize,
    cy: usize,
) -> (usize, usize) {
    let oldy = grid.sy;
    let hsize = grid.history.len();
    let mut lines: Vec<Line> = Vec::with_capacity(hsize + oldy);
    for i in 0..hsize {
        if let Some(l) = grid.history.line(i) {
            lines.push(Line::from_cells(l.iter(), l.used, l.wrapped));
        }
    }
    lines.extend(grid.lines.drain(..));
    let mut all = All {
        lines,
        hsize,
        hscrolled: grid.hscrolled.min(hsize),
        sx,
    };
    let reflow = reflow && sx != grid.sx;
    let mut acx = cx;
    let mut acy = hsize + cy;
    if sy != oldy {
        all.resize_y(oldy, sy, grid.history_on, cy, &mut acy);
    }
    if reflow {
        let (wx, wy) = all.wrap_position(acx, acy);
        all.reflow(sy);
        let (x, y) = all.unwrap_position(wx, wy);
        acx = x;
        acy = y;
    }
    let (ncx, ncy) = if acy >= all.hsize {
        (acx, acy - all.hsize)
    } else {
        (0, 0)
    };
    // Back into history ring and screen.
    let screen = all.lines.split_off(all.hsize);
    grid.history.clear();
    for l in &all.lines {
        grid.history.push_line(l);
    }
    grid.lines = screen.into();
    grid.sx = sx;
    grid.sy = sy;
    grid.hscrolled = all.hscrolled;
    (ncx, ncy)
}
