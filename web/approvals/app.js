// gatewarden's approval page: a protocol client of gatewarden itself. It signs
// in over the same WebSocket every client uses, with a credential the operator
// types (kept in memory only: no cookie, nothing in the URL or in storage), so
// the gateway decides what it may do exactly as for any session, and there is
// no ambient credential a cross-site request could ride on. Everything a
// client supplied is rendered with textContent, never as markup.

const OPERATOR_SCOPES = ["operator.read", "operator.write", "operator.approvals", "operator.pairing", "operator.admin"];

const $ = (id) => document.getElementById(id);
let ws;
let seq = 0;
let poll;
/** Pairing requests arrive as events; token changes have none, so the list is also read again now and then. */
const POLL_MS = 5000;
const waiting = new Map();

function setStatus(text, isError = false) {
  const s = $("status");
  s.textContent = text;
  s.className = isError ? "error" : "";
}

function request(method, params) {
  const id = `p${++seq}`;
  return new Promise((resolve) => {
    waiting.set(id, resolve);
    ws.send(JSON.stringify({ type: "req", id, method, params }));
  });
}

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function ago(ms) {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  return s < 60 ? `${s} s ago` : s < 3600 ? `${Math.round(s / 60)} min ago` : `${Math.round(s / 3600)} h ago`;
}

function facts(pairs) {
  const dl = el("dl");
  for (const [k, v] of pairs) {
    if (v === undefined || v === "") continue;
    dl.append(el("dt", k), el("dd", v));
  }
  return dl;
}

function button(label, cls, onClick) {
  const b = el("button", label, cls);
  b.type = "button";
  b.addEventListener("click", onClick);
  return b;
}

async function act(method, params, done) {
  const r = await request(method, params);
  if (r.ok) setStatus(done);
  else setStatus(`${method}: ${r.error?.message ?? "refused"}`, true);
  await refresh();
}

/** Replace the list `id` (and its count) with one card per item. */
function renderList(id, list, card) {
  $(id).replaceChildren(...list.map(card));
  $(`${id}-count`).textContent = `(${list.length})`;
}

function pendingCard(p) {
  const li = el("li");
  li.dataset.requestId = p.requestId;
  li.append(
    el("div", p.verificationCode, "code"),
    facts([
      ["client", `${p.displayName ?? "(unnamed)"}: ${p.clientId ?? "-"}/${p.clientMode ?? "-"}`],
      ["platform", p.platform],
      ["from", p.remoteIp],
      ["role", (p.roles ?? [p.role]).join(", ")],
      ["reason", p.reason],
      ["device", p.deviceId],
      ["asked", ago(p.ts)],
    ]),
  );
  // Every requested scope, checked: unchecking one approves the request without it.
  const scopes = el("fieldset", undefined, "scopes");
  scopes.append(el("legend", (p.scopes ?? []).length > 0 ? "Scopes to grant" : "Scopes: none requested"));
  for (const scope of p.scopes ?? []) {
    const label = el("label");
    const box = el("input");
    box.type = "checkbox";
    box.value = scope;
    box.checked = true;
    label.append(box, el("span", scope));
    scopes.append(label);
  }
  li.append(scopes);
  const actions = el("div", undefined, "actions");
  actions.append(
    button("Approve", "approve", () => {
      const chosen = [...li.querySelectorAll("input[type=checkbox]:checked")].map((c) => c.value);
      const narrowed = chosen.length < (p.scopes ?? []).length;
      const params = narrowed ? { requestId: p.requestId, scopes: chosen } : { requestId: p.requestId };
      void act("device.pair.approve", params, `Approved ${p.verificationCode}${narrowed ? ` with ${chosen.join(", ") || "no scopes"}` : ""}.`);
    }),
    button("Reject", "danger", () => act("device.pair.reject", { requestId: p.requestId }, "Rejected.")),
  );
  li.append(actions);
  return li;
}

function pairedCard(d) {
  const li = el("li");
  li.dataset.deviceId = d.deviceId;
  const tokens = (d.tokens ?? []).map((t) => `${t.role} [${t.scopes.join(", ") || "no scopes"}]${t.revokedAtMs ? " (revoked)" : ""}`);
  li.append(
    facts([
      ["device", d.displayName ?? "(unnamed)"],
      ["platform", d.platform],
      ["roles", (d.roles ?? []).join(", ")],
      ["scopes", (d.scopes ?? []).join(", ") || "(none)"],
      ["tokens", tokens.join("; ") || "(none)"],
      ["id", d.deviceId],
    ]),
  );
  const actions = el("div", undefined, "actions");
  for (const t of d.tokens ?? []) {
    if (t.revokedAtMs) continue;
    actions.append(
      button(`Rotate ${t.role} token`, "", () => act("device.token.rotate", { deviceId: d.deviceId, role: t.role }, "Rotated: the device's sessions were closed.")),
      button(`Revoke ${t.role} token`, "danger", () => {
        if (confirm(`Revoke the ${t.role} token of ${d.displayName ?? d.deviceId}?`)) void act("device.token.revoke", { deviceId: d.deviceId, role: t.role }, "Revoked.");
      }),
    );
  }
  actions.append(
    button("Remove device", "danger", () => {
      if (confirm(`Remove ${d.displayName ?? d.deviceId} and all its tokens?`)) void act("device.pair.remove", { deviceId: d.deviceId }, "Removed.");
    }),
  );
  li.append(actions);
  return li;
}

async function refresh() {
  const r = await request("device.pair.list", {});
  if (!r.ok) return setStatus(`device.pair.list: ${r.error?.message ?? "refused"}`, true);
  renderList("pending", r.payload.pending ?? [], pendingCard);
  renderList("paired", r.payload.paired ?? [], pairedCard);
}

function signOut(text, isError) {
  clearInterval(poll);
  waiting.clear();
  ws?.close();
  ws = undefined;
  $("app").hidden = true;
  $("signin").hidden = false;
  setStatus(text, isError);
}

function signIn(credential) {
  setStatus("Signing in…");
  const socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}`);
  ws = socket;
  socket.addEventListener("message", (m) => {
    let f;
    try {
      f = JSON.parse(m.data);
    } catch {
      return;
    }
    if (f.type === "event" && f.event === "connect.challenge") {
      const params = {
        minProtocol: 3,
        maxProtocol: 4,
        client: { id: "webchat-ui", version: "gatewarden-approvals", platform: "web", mode: "ui", displayName: "gatewarden approvals" },
        role: "operator",
        scopes: OPERATOR_SCOPES,
        auth: { token: credential },
      };
      socket.send(JSON.stringify({ type: "req", id: "connect", method: "connect", params }));
    } else if (f.type === "res" && f.id === "connect") {
      if (!f.ok) return signOut(`Not signed in: ${f.error?.message ?? "refused"}`, true);
      const scopes = f.payload?.auth?.scopes ?? [];
      if (!scopes.includes("operator.pairing") && !scopes.includes("operator.admin")) return signOut("Not signed in: this credential does not hold operator.pairing.", true);
      $("signin").hidden = true;
      $("app").hidden = false;
      setStatus(`Signed in with ${scopes.join(", ")}.`);
      void refresh();
      poll = setInterval(() => void refresh(), POLL_MS);
    } else if (f.type === "res") {
      const done = waiting.get(f.id);
      waiting.delete(f.id);
      done?.(f);
    } else if (f.type === "event" && (f.event === "device.pair.requested" || f.event === "device.pair.resolved")) {
      void refresh();
    }
  });
  socket.addEventListener("close", (e) => {
    if (ws === socket) signOut(`Signed out (${e.code}${e.reason ? `: ${e.reason}` : ""}).`, e.code !== 1000);
  });
}

$("signin").addEventListener("submit", (e) => {
  e.preventDefault();
  const input = $("credential");
  const credential = input.value;
  input.value = "";
  signIn(credential);
});
$("signout").addEventListener("click", () => signOut("Signed out."));
$("refresh").addEventListener("click", () => void refresh());
