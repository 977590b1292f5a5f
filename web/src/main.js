//! Entry point: routes `/` to the session list and `/s/{id}` to a session.

import { mountList } from './list.js';
import { mountSession } from './session.js';

const root = document.getElementById('app');
const m = /^\/s\/([^/]+)\/?$/.exec(location.pathname);
if (m) {
  mountSession(root, decodeURIComponent(m[1]));
} else {
  mountList(root);
}
