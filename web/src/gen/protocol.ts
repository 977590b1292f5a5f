// Generated from the Rust crate `protocol` by ts-rs (crates/protocol/tests/ts.rs);
// do not edit. Regenerate with
// `UPDATE_EXPECT=1 cargo test -p protocol --features ts --test ts`.

export type BrowserToRelay = { "t": "hello", last_seq: number, 
/**
 * The numbering epoch `last_seq` belongs to (the last `welcome`'s
 * or `epoch`'s); another epoch's records are served from scratch.
 */
epoch?: string, } | { "t": "input", pane: string, data: string, } | { "t": "resize", cols: number, rows: number, } | { "t": "view", visible: boolean, fit: boolean, } | { "t": "keys", pane: string, keys: Array<string>, } | { "t": "tmux" } & TmuxOp;

export type TmuxOp = { "op": "new_window" } | { "op": "split", pane: string, direction: SplitDirection, } | { "op": "kill_pane", pane: string, } | { "op": "rename_window", window: string, name: string, } | { "op": "zoom", pane: string, } | { "op": "select_pane", pane: string, } | { "op": "select_window", window: string, } | { "op": "resize_pane", pane: string, dx: number, dy: number, } | { "op": "copy_mode", pane: string, } | { "op": "send_prefix", pane: string, };

export type SplitDirection = "right" | "below";

export type RelayToBrowser = { "t": "welcome", session: SessionInfo, head_seq: number, runner_online: boolean, 
/**
 * A share link's viewer: the relay refuses everything but `hello`
 * and `view`.
 */
read_only?: boolean, 
/**
 * What the session's runner takes beyond `input` and `resize`:
 * `keys` (key presses through tmux's key tables), `tmux` (the
 * page's tmux actions).
 */
features?: Array<string>, 
/**
 * The session's numbering epoch, for the next `hello`.
 */
epoch?: string, 
/**
 * The browser's records are not the relay's (another epoch, or
 * ahead of the store): reset the screens; the frames that follow
 * start from scratch.
 */
reset?: boolean, } | { "t": "epoch", epoch: string, reset?: boolean, } | { "t": "runner", online: boolean, } | { "t": "presence", viewers: Array<Viewer>, attached_clients: number, } | { "t": "error", code: string, message: string, };

export type Viewer = { 
/**
 * The account name, or a share link's label.
 */
name: string, 
/**
 * Watching through a read-only share link.
 */
read_only: boolean, 
/**
 * How many tabs of this viewer are open.
 */
tabs: number, };

export type SessionInfo = { 
/**
 * The relay's id of the terminal session (used in URLs).
 */
id: string, idea: string, slot: string, 
/**
 * The tmux session name.
 */
tmux_session: string, 
/**
 * The exact command to attach in a terminal.
 */
attach: string, 
/**
 * The runner's host name.
 */
host: string, 
/**
 * Whether a runner is connected for this session now.
 */
runner_online: boolean, 
/**
 * The last sequence number stored (0 if none).
 */
head_seq: number, };

export type Topology = { session: string | null, name: string, active_window: string | null, windows: Array<WindowInfo>, };

export type WindowInfo = { id: string, index: number | null, name: string, active: boolean, layout: string, visible_layout: string, flags: string, active_pane: string | null, panes: Array<PaneInfo>, };

export type PaneInfo = { id: string, x: number, y: number, cols: number, rows: number, title: string, };
