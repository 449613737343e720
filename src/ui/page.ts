/**
 * The web console's page (served at /ui/ by src/server/http_ui.ts): the layout and its style.
 * Everything it runs is the console's own modules under /ui/ (app.js), nothing from elsewhere.
 */
export const CONSOLE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>qkv console</title>
<style>
  :root { --fg: #1d2330; --muted: #667085; --line: #d9dde5; --bg: #f6f7f9; --ok: #12805c; --bad: #c0322b; --accent: #2f5fd0; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.4 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
  header { display: flex; align-items: center; gap: 24px; padding: 10px 18px; background: #fff; border-bottom: 1px solid var(--line); }
  header h1 { font-size: 16px; margin: 0; }
  nav button { border: 0; background: none; padding: 6px 10px; font: inherit; cursor: pointer; border-radius: 4px; }
  nav button[aria-selected="true"] { background: var(--accent); color: #fff; }
  #summary { margin-left: auto; color: var(--muted); }
  main { padding: 16px 18px; }
  section[hidden] { display: none !important; }
  table { border-collapse: collapse; background: #fff; width: 100%; }
  th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
  th { font-weight: 600; color: var(--muted); font-size: 12px; text-transform: uppercase; }
  td.num { font-variant-numeric: tabular-nums; white-space: nowrap; }
  td[data-spark] { white-space: nowrap; }
  td[data-spark] svg { vertical-align: middle; background: #f3f4f7; }
  .up { color: var(--ok); font-weight: 600; }
  .down { color: var(--bad); font-weight: 600; }
  .muted { color: var(--muted); }
  .note { color: #8a5a00; background: #fff6e0; padding: 4px 8px; border-radius: 4px; display: inline-block; margin: 4px 0; }
  .error { color: var(--bad); }
  #keys { display: grid; grid-template-columns: minmax(260px, 1fr) 2fr; gap: 16px; }
  .panel { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 10px; overflow: auto; max-height: calc(100vh - 110px); }
  ul.tree { list-style: none; margin: 0; padding-left: 16px; }
  .panel > ul.tree { padding-left: 0; }
  ul.tree button { border: 0; background: none; font: 13px ui-monospace, monospace; cursor: pointer; padding: 1px 4px; text-align: left; }
  ul.tree button:hover { background: #eef2fb; }
  ul.tree button.selected { background: var(--accent); color: #fff; }
  .count { color: var(--muted); font-size: 12px; margin-left: 4px; }
  pre { font: 12px/1.35 ui-monospace, monospace; background: #f3f4f7; padding: 8px; margin: 6px 0; white-space: pre-wrap; word-break: break-all; max-height: 60vh; overflow: auto; }
  dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 6px 0; }
  dt { color: var(--muted); }
  dd { margin: 0; font-family: ui-monospace, monospace; word-break: break-all; }
  .controls { display: flex; gap: 8px; align-items: center; margin-bottom: 10px; }
  .controls input[type=text] { font: 13px ui-monospace, monospace; padding: 4px 6px; width: 320px; }
  #watch-events td { font-family: ui-monospace, monospace; font-size: 12px; }
  #login form { display: grid; grid-template-columns: max-content 240px; gap: 8px 12px; background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 16px; width: max-content; }
  #user { color: var(--muted); }
  .confirm { background: #fff6e0; border: 1px solid #e8c670; border-radius: 6px; padding: 8px; margin: 8px 0; }
  .confirm button.danger, button.danger { color: #fff; background: var(--bad); border: 0; border-radius: 4px; padding: 4px 10px; }
  .write textarea { width: 100%; min-height: 80px; font: 12px ui-monospace, monospace; }
  .write input[type=text] { font: 13px ui-monospace, monospace; padding: 4px 6px; width: 100%; }
</style>
<script type="module" src="/ui/app.js"></script>
</head>
<body>
<header>
  <h1>qkv console</h1>
  <nav>
    <button data-tab="cluster" aria-selected="true">Cluster</button>
    <button data-tab="keys">Keys</button>
    <button data-tab="watch">Watch</button>
    <button data-tab="leases">Leases</button>
  </nav>
  <div id="summary" data-testid="summary">connecting…</div>
  <span id="user" data-testid="user"></span>
</header>
<main>
  <section id="login" data-testid="login" hidden>
    <h3>Log in</h3>
    <p class="muted">Auth is enabled on this cluster: the console reads and writes as this user, and shows only what the user may read.</p>
    <form id="login-form">
      <label for="login-name">User</label><input id="login-name" autocomplete="username" required>
      <label for="login-password">Password</label><input id="login-password" type="password" autocomplete="current-password">
      <span></span><button type="submit">Log in</button>
    </form>
    <p id="login-error" class="error" data-testid="login-error"></p>
  </section>
  <section id="cluster" data-testid="cluster" hidden>
    <table>
      <thead><tr><th>Name</th><th>ID</th><th>State</th><th>Role</th><th>Client URLs</th><th>Peer URLs</th><th>Term</th><th>Commit</th><th>Applied</th><th>Lag</th><th>Revision</th><th>DB size</th><th>WAL fsync</th><th>Apply</th></tr></thead>
      <tbody id="members"></tbody>
    </table>
    <p class="muted">Each member's own <code>/v1/status</code>, polled every second; a member that does not answer within 1.5 s is shown down. Lag: the leader's commit index minus the member's applied index. WAL fsync and apply: the mean latency per 2 s interval (from each member's <code>/metrics</code>), the last 60 intervals.</p>
    <h3>Leader changes seen by this page</h3>
    <ul id="leader-changes" data-testid="leader-changes"></ul>
  </section>
  <section id="keys" hidden>
    <div class="panel" id="tree" data-testid="tree"></div>
    <div class="panel" id="key-detail" data-testid="key-detail"><p class="muted">Select a key.</p></div>
  </section>
  <section id="watch" hidden>
    <div class="controls">
      <input type="text" id="watch-key" placeholder="key or prefix" aria-label="key or prefix">
      <label><input type="checkbox" id="watch-prefix" checked> prefix</label>
      <button id="watch-start">Watch</button>
      <button id="watch-pause" disabled>Pause</button>
      <button id="watch-clear">Clear</button>
      <span id="watch-state" data-testid="watch-state" class="muted">not watching</span>
    </div>
    <table><thead><tr><th>Revision</th><th>Event</th><th>Key</th><th>Value</th></tr></thead><tbody id="watch-events"></tbody></table>
  </section>
  <section id="leases" hidden>
    <table><thead><tr><th>Lease</th><th>TTL (s)</th><th>Granted TTL (s)</th><th>Keys</th></tr></thead><tbody id="lease-rows"></tbody></table>
    <p class="muted" id="lease-note"></p>
  </section>
</main>
</body>
</html>
`;
