// This file is generated from the Rust crate `protocol` by ts-rs
// (crates/protocol/tests/ts.rs); do not edit it by hand. Regenerate with
// `UPDATE_EXPECT=1 cargo test -p protocol --test ts`.

/** A message a browser sends to the relay (docs/protocol.md §5). */
export type BrowserToRelay =
  | { t: 'hello'; last_seq: number }
  | { t: 'input'; pane: string; data: string }
  | { t: 'resize'; cols: number; rows: number }
  | { t: 'view'; visible: boolean; fit: boolean }
  | { t: 'keys'; pane: string; keys: Array<string> }
  | ({ t: 'tmux' } & TmuxOp);

/** A tmux action from the page's controls (docs/protocol.md §5.1). */
export type TmuxOp =
  | { op: 'new_window' }
  | { op: 'split'; pane: string; direction: SplitDirection }
  | { op: 'kill_pane'; pane: string }
  | { op: 'rename_window'; window: string; name: string }
  | { op: 'zoom'; pane: string }
  | { op: 'select_pane'; pane: string }
  | { op: 'select_window'; window: string }
  | { op: 'resize_pane'; pane: string; dx: number; dy: number }
  | { op: 'copy_mode'; pane: string }
  | { op: 'send_prefix'; pane: string };

export type SplitDirection = 'right' | 'below';

/** A message the relay sends to a browser. */
export type RelayToBrowser =
  | { t: 'welcome'; session: SessionInfo; head_seq: number; runner_online: boolean; read_only?: boolean; features?: Array<string> }
  | { t: 'runner'; online: boolean }
  | { t: 'presence'; viewers: Array<Viewer>; attached_clients: number }
  | { t: 'error'; code: string; message: string };

/** Someone watching a session in a browser. */
export type Viewer = { name: string; read_only: boolean; tabs: number };

/** A terminal session as the page sees it (`GET /api/sessions`, `welcome`). */
export type SessionInfo = {
  id: string;
  idea: string;
  slot: string;
  tmux_session: string;
  attach: string;
  host: string;
  runner_online: boolean;
  head_seq: number;
  runner_id?: string;
  runner_name?: string;
  state?: SessionState;
  attached_clients?: number;
  viewers?: number;
  created_at?: number;
  last_activity_at?: number | null;
  closed_at?: number | null;
};

export type SessionState = 'starting' | 'live' | 'runner_offline' | 'closed';

/** The Topology record's JSON (docs/protocol.md §2). */
export type Topology = { session: string | null; name: string; active_window: string | null; windows: Array<WindowInfo> };

export type WindowInfo = {
  id: string;
  index: number | null;
  name: string;
  active: boolean;
  layout: string;
  visible_layout: string;
  flags: string;
  active_pane: string | null;
  panes: Array<PaneInfo>;
};

export type PaneInfo = { id: string; x: number; y: number; cols: number; rows: number; title: string };
