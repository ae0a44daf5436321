// Portcullis dashboard: a client of the management API (/api/v1) only.
//
// The API token lives in the `token` variable below and nowhere else: not
// in localStorage, sessionStorage, a cookie or the URL. A reload or a new
// tab asks for it again, and a page of another site can never make the
// browser send it (the API takes bearer tokens only and answers no CORS
// preflight), so cross-site requests are unauthenticated.

const API = "/api/v1";
const DAY = 86400;
const SOON = 30 * DAY; // flag certificates that expire within 30 days

let token = null; // the bearer token, in memory only
let me = null; // GET /whoami of that token

const $ = (sel) => document.querySelector(sel);

// Builds an element: h("td", {class: "x"}, "text", child, ...). Text is
// always set as text, never parsed as HTML.
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// One API call with the token; 401 ends the session (expired, revoked or
// deleted token) and shows the sign-in form again.
async function api(method, path, body) {
  const init = { method, headers: { Authorization: `Bearer ${token}` } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(API + path, init);
  const text = await resp.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!resp.ok) {
    const code = data?.error?.code ?? "error";
    const msg = data?.error?.message ?? `${resp.status} ${resp.statusText}`;
    if (resp.status === 401) {
      signOut(`Your token was refused (${msg}). Sign in again.`);
    }
    throw new ApiError(resp.status, code, msg);
  }
  return data;
}

function fmtTime(unix) {
  return new Date(unix * 1000).toISOString().replace("T", " ").replace(/:\d\d\.\d+Z$/, " UTC");
}

function expiryFlag(notAfter) {
  const left = notAfter - Date.now() / 1000;
  if (left <= 0) return h("span", { class: "flag bad" }, "expired");
  if (left < DAY) return h("span", { class: "flag warn" }, `expires in ${Math.ceil(left / 3600)} h`);
  if (left < SOON) return h("span", { class: "flag warn" }, `expires in ${Math.ceil(left / DAY)} d`);
  return null;
}

function flash(msg, isError = false) {
  const f = $("#flash");
  f.textContent = msg;
  f.className = isError ? "error" : "";
}

// Runs an action, showing its error (other than 401, which signs out).
async function attempt(fn) {
  try {
    await fn();
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return;
    flash(`${e.code ? e.code + ": " : ""}${e.message}`, true);
  }
}

function download(name, bytes, type) {
  const url = URL.createObjectURL(new Blob([bytes], { type }));
  const a = h("a", { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

function b64bytes(b64) {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

// A modal confirmation; resolves true on "Confirm".
function confirmDialog(title, body) {
  const d = $("#confirm");
  $("#confirm-title").textContent = title;
  $("#confirm-body").replaceChildren(...[body].flat());
  return new Promise((resolve) => {
    const done = (v) => {
      $("#confirm-ok").onclick = null;
      $("#confirm-cancel").onclick = null;
      d.close();
      resolve(v);
    };
    $("#confirm-ok").onclick = () => done(true);
    $("#confirm-cancel").onclick = () => done(false);
    d.oncancel = () => done(false);
    d.showModal();
  });
}

// ---- sign-in ----

async function signIn(secret) {
  token = secret;
  let who;
  try {
    who = await api("GET", "/whoami");
  } catch (e) {
    token = null;
    $("#signin-error").textContent =
      e.status === 401 ? "Token refused: unknown, expired or revoked." : e.message;
    return;
  }
  if (who.account_id === null || who.account_id === undefined) {
    token = null;
    $("#signin-error").textContent =
      "This is an operator token; the dashboard works with an account token (create one with POST /api/v1/accounts/{id}/tokens).";
    return;
  }
  me = who;
  $("#signin-error").textContent = "";
  $("#signin").hidden = true;
  $("#app").hidden = false;
  $("#nav").hidden = false;
  $("#whoami").textContent = `Signed in with token “${who.name}” (${who.prefix}…) of account ${who.account_id}; scopes: ${who.scopes.join(", ")}.` +
    (who.scopes.includes("write") ? "" : " Read-only: changes will be refused.");
  if (!location.hash) location.hash = "#cas";
  else route();
}

function signOut(message = "") {
  token = null;
  me = null;
  $("#app").hidden = true;
  $("#nav").hidden = true;
  $("#page").replaceChildren();
  $("#signin").hidden = false;
  $("#signin-error").textContent = message;
  $("#token").value = "";
  $("#token").focus();
}

// ---- pages ----

const pages = {
  cas: casPage,
  hostnames: hostnamesPage,
  "managed-ca": managedPage,
  events: eventsPage,
  tokens: tokensPage,
};

async function route() {
  if (!token) return;
  const name = location.hash.slice(1) || "cas";
  const page = pages[name] ?? casPage;
  for (const a of document.querySelectorAll("nav a")) {
    if (a.getAttribute("href") === `#${name}`) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  flash("");
  await attempt(async () => {
    const content = await page();
    if (token) $("#page").replaceChildren(...[content].flat());
  });
}

async function casPage() {
  const [cas, hosts] = await Promise.all([api("GET", "/cas"), api("GET", "/hostnames")]);
  const usedBy = (id) => hosts.items.filter((x) => x.ca_ids.includes(id)).map((x) => x.name);
  const form = h(
    "form",
    { class: "inline", id: "ca-upload" },
    h("label", {}, "Name", h("input", { name: "name", required: true })),
    h("label", {}, "CA certificate(s), PEM", h("input", { name: "pem", type: "file", accept: ".pem,.crt,.cer", required: true })),
    h("label", {}, "CRL, PEM (optional)", h("input", { name: "crl", type: "file", accept: ".pem,.crl" })),
    h("button", { type: "submit", class: "primary" }, "Upload"),
  );
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    attempt(async () => {
      const body = { name: form.name.value, certificates: await form.pem.files[0].text() };
      if (form.crl.files[0]) body.crl = await form.crl.files[0].text();
      const ca = await api("POST", "/cas", body);
      await route();
      flash(`CA “${ca.name}” uploaded.`);
    });
  });
  const rows = cas.items.map((ca) =>
    h(
      "tr",
      { dataset: { ca: ca.name } },
      h("td", {}, ca.name),
      h("td", {}, ca.subject),
      h("td", {}, fmtTime(ca.not_after), expiryFlag(ca.not_after)),
      h("td", {}, usedBy(ca.id).join(", ") || h("span", { class: "muted" }, "none")),
      h("td", {}, ca.crl_pem ? "yes" : "no"),
      h(
        "td",
        {},
        h("button", {
          type: "button",
          class: "danger",
          onclick: () =>
            attempt(async () => {
              if (!(await confirmDialog("Delete CA", `Delete CA “${ca.name}”?`))) return;
              await api("DELETE", `/cas/${ca.id}`);
              await route();
              flash(`CA “${ca.name}” deleted.`);
            }),
        }, "Delete"),
      ),
    ),
  );
  return [
    h("section", {}, h("h2", {}, "Upload a CA"), form),
    h(
      "section",
      {},
      h("h2", {}, "CAs"),
      h(
        "table",
        { id: "ca-table" },
        h("thead", {}, h("tr", {}, ["Name", "Subject", "Expires", "Used by", "CRL", ""].map((t) => h("th", {}, t)))),
        h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: 6, class: "muted" }, "No CA yet."))),
      ),
    ),
  ];
}

// Share of the last hour's recorded requests that enforce would block.
async function lastHourShare(name) {
  const from = Math.floor(Date.now() / 1000) - 3600;
  const c = await api("GET", `/events/counts?hostname=${encodeURIComponent(name)}&from=${from}`);
  const t = { valid: 0, invalid: 0, none: 0 };
  for (const r of c.items) t[r.verdict] = (t[r.verdict] ?? 0) + r.count;
  const total = t.valid + t.invalid + t.none;
  return { ...t, total, blocked: t.invalid + t.none };
}

async function changeMode(host, mode) {
  const s = await lastHourShare(host.name);
  const pct = s.total ? ((100 * s.blocked) / s.total).toFixed(1) : "0.0";
  const body = [h("p", {}, `Switch ${host.name} from ${host.mode} to ${mode}?`)];
  if (s.total === 0) {
    body.push(h("p", { id: "share" }, "No request was recorded in the last hour (requests are recorded in report and enforce mode)."));
  } else {
    body.push(
      h(
        "p",
        { id: "share" },
        `Last hour: ${s.blocked} of ${s.total} requests (${pct}%) had no valid client certificate ` +
          `(${s.invalid} invalid, ${s.none} none) and ${mode === "enforce" ? "would be blocked" : "would be blocked under enforce"}.`,
      ),
    );
  }
  if (!(await confirmDialog(`Mode: ${mode}`, body))) return;
  await api("PATCH", `/hostnames/${encodeURIComponent(host.name)}`, { mode });
  await route();
  flash(`${host.name} is now in ${mode} mode.`);
}

async function hostnamesPage() {
  const [hosts, cas] = await Promise.all([api("GET", "/hostnames"), api("GET", "/cas")]);
  const caName = new Map(cas.items.map((c) => [c.id, c.name]));
  const form = h(
    "form",
    { class: "inline", id: "host-create" },
    h("label", {}, "Hostname", h("input", { name: "name", required: true, placeholder: "api.example.com" })),
    h("label", {}, "Origin", h("input", { name: "origin", required: true, placeholder: "http://10.0.0.5:8080" })),
    h("label", {}, "Server certificate (optional)", h("input", { name: "cert", type: "file" })),
    h("label", {}, "Its key", h("input", { name: "key", type: "file" })),
    h("label", {}, h("span", {}, "Trust the managed CA"), h("input", { name: "managed", type: "checkbox" })),
    h("button", { type: "submit", class: "primary" }, "Create"),
  );
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    attempt(async () => {
      const body = { name: form.name.value.trim(), origin: form.origin.value.trim() };
      if (form.cert.files[0]) body.certificate = await form.cert.files[0].text();
      if (form.key.files[0]) body.private_key = await form.key.files[0].text();
      if (form.managed.checked) body.trust_managed_ca = true;
      await api("POST", "/hostnames", body);
      await route();
      flash(`Hostname ${body.name} created (mode off).`);
    });
  });
  const rows = hosts.items.map((x) => {
    const sel = h("select", { "aria-label": `CA to associate with ${x.name}`, name: "ca" },
      cas.items.filter((c) => !x.ca_ids.includes(c.id)).map((c) => h("option", { value: c.id }, c.name)));
    const modeSel = h("select", { "aria-label": `Mode of ${x.name}`, name: "mode" },
      ["off", "report", "enforce"].map((m) => h("option", { value: m, selected: m === x.mode }, m)));
    return h(
      "tr",
      { dataset: { host: x.name } },
      h("td", {}, x.name),
      h("td", {}, x.origin),
      h("td", { class: `mode-${x.mode}` }, x.mode),
      h(
        "td",
        {},
        x.ca_ids.map((id) =>
          h("span", { class: "assoc" }, caName.get(id) ?? `#${id}`, " ",
            h("button", {
              type: "button",
              "aria-label": `Dissociate ${caName.get(id)}`,
              onclick: () => attempt(async () => {
                await api("DELETE", `/hostnames/${encodeURIComponent(x.name)}/cas/${id}`);
                await route();
              }),
            }, "×"), " "),
        ),
        x.trust_managed_ca ? h("span", { class: "assoc" }, "managed CA") : null,
        sel.options.length
          ? h("span", {}, sel, h("button", {
              type: "button",
              class: "associate",
              onclick: () => attempt(async () => {
                await api("PUT", `/hostnames/${encodeURIComponent(x.name)}/cas/${sel.value}`);
                await route();
                flash(`${x.name} now trusts ${caName.get(Number(sel.value))}.`);
              }),
            }, "Associate"))
          : null,
      ),
      h("td", {}, modeSel, h("button", {
        type: "button",
        class: "set-mode",
        onclick: () => attempt(() => changeMode(x, modeSel.value)),
      }, "Apply")),
    );
  });
  return [
    h("section", {}, h("h2", {}, "Add a hostname"), form,
      h("p", { class: "muted" }, "Without a server certificate, the managed CA issues one. New hostnames start in off mode.")),
    h(
      "section",
      {},
      h("h2", {}, "Hostnames"),
      h(
        "table",
        { id: "host-table" },
        h("thead", {}, h("tr", {}, ["Name", "Origin", "Mode", "Trusted CAs", "Change mode"].map((t) => h("th", {}, t)))),
        h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: 5, class: "muted" }, "No hostname yet."))),
      ),
    ),
  ];
}

async function managedPage() {
  const [ca, certs] = await Promise.all([api("GET", "/managed-ca"), api("GET", "/managed-ca/certificates")]);
  const form = h(
    "form",
    { class: "inline", id: "issue" },
    h("label", {}, "Common name", h("input", { name: "cn", required: true })),
    h("label", {}, "Valid for (hours)", h("input", { name: "hours", type: "number", min: 1, max: 43800, value: 8760 })),
    h("button", { type: "submit", class: "primary" }, "Issue with a new key"),
  );
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    attempt(async () => {
      const c = await api("POST", "/managed-ca/certificates", {
        common_name: form.cn.value.trim(),
        validity_hours: Number(form.hours.value),
      });
      await route();
      // The key exists outside the store only in this answer: offer it now.
      $("#page").prepend(
        h(
          "section",
          { id: "issued", class: "card" },
          h("h2", {}, `Issued ${c.subject} (serial ${c.serial})`),
          h("p", {}, "The private key is shown once: download it now. PKCS#12 password: ",
            h("code", { id: "p12-password" }, c.pkcs12_password)),
          h("button", { type: "button", id: "dl-cert", onclick: () => download(`${c.serial}.pem`, c.pem, "application/x-pem-file") }, "Certificate (PEM)"), " ",
          h("button", { type: "button", id: "dl-key", onclick: () => download(`${c.serial}-key.pem`, c.private_key, "application/x-pem-file") }, "Private key (PEM)"), " ",
          h("button", { type: "button", id: "dl-p12", onclick: () => download(`${c.serial}.p12`, b64bytes(c.pkcs12), "application/x-pkcs12") }, "PKCS#12"),
        ),
      );
      flash(`Certificate ${c.serial} issued.`);
    });
  });
  // Or from a CSR (the key never leaves its owner).
  const csrForm = h(
    "form",
    { class: "inline", id: "issue-csr" },
    h("label", {}, "CSR, PEM", h("input", { name: "csr", type: "file", accept: ".csr,.pem", required: true })),
    h("label", {}, "Valid for (hours)", h("input", { name: "hours", type: "number", min: 1, max: 43800, value: 8760 })),
    h("button", { type: "submit", class: "primary" }, "Issue from the CSR"),
  );
  csrForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    attempt(async () => {
      const c = await api("POST", "/managed-ca/certificates", {
        csr: await csrForm.csr.files[0].text(),
        validity_hours: Number(csrForm.hours.value),
      });
      await route();
      $("#page").prepend(
        h("section", { id: "issued", class: "card" },
          h("h2", {}, `Issued ${c.subject} (serial ${c.serial})`),
          h("button", { type: "button", id: "dl-cert", onclick: () => download(`${c.serial}.pem`, c.pem, "application/x-pem-file") }, "Certificate (PEM)")),
      );
      flash(`Certificate ${c.serial} issued from the CSR.`);
    });
  });
  const rows = certs.items.map((c) =>
    h(
      "tr",
      { dataset: { serial: c.serial } },
      h("td", {}, h("code", {}, c.serial)),
      h("td", {}, c.subject),
      h("td", {}, fmtTime(c.not_after), c.revoked_at ? null : expiryFlag(c.not_after)),
      h("td", { class: "status" }, c.revoked_at ? `revoked ${fmtTime(c.revoked_at)}` : "valid"),
      h("td", {},
        h("button", { type: "button", onclick: () => download(`${c.serial}.pem`, c.pem, "application/x-pem-file") }, "PEM"), " ",
        c.revoked_at ? null : h("button", {
          type: "button",
          class: "danger revoke",
          onclick: () => attempt(async () => {
            if (!(await confirmDialog("Revoke", `Revoke ${c.subject} (serial ${c.serial})? Gateways refuse it within seconds.`))) return;
            await api("POST", `/managed-ca/certificates/${c.serial}/revoke`);
            await route();
            flash(`Certificate ${c.serial} revoked.`);
          }),
        }, "Revoke")),
    ),
  );
  return [
    h("section", {}, h("h2", {}, "Managed CA"),
      h("p", {}, "Your account's own CA. Hostnames that trust it accept the client certificates issued here. ",
        h("button", { type: "button", onclick: () => download("managed-ca.pem", ca.certificate, "application/x-pem-file") }, "Download CA certificate")),
      form, h("p", { class: "muted" }, "or"), csrForm),
    h("section", {}, h("h2", {}, "Issued client certificates"),
      h("table", { id: "cert-table" },
        h("thead", {}, h("tr", {}, ["Serial", "Subject", "Expires", "Status", ""].map((t) => h("th", {}, t)))),
        h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: 5, class: "muted" }, "None issued yet."))))),
  ];
}

// ---- tokens ----

async function tokensPage() {
  const base = `/accounts/${me.account_id}/tokens`;
  const list = await api("GET", base);
  const form = h(
    "form",
    { class: "inline", id: "token-create" },
    h("label", {}, "Name", h("input", { name: "name", required: true })),
    h("label", {}, h("span", {}, "read"), h("input", { name: "read", type: "checkbox", checked: true })),
    h("label", {}, h("span", {}, "write"), h("input", { name: "write", type: "checkbox" })),
    h("label", {}, "Expires in (hours, empty: never)", h("input", { name: "hours", type: "number", min: 1 })),
    h("button", { type: "submit", class: "primary" }, "Create token"),
  );
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    attempt(async () => {
      const scopes = ["read", "write"].filter((sc) => form[sc].checked);
      const body = { name: form.name.value.trim(), scopes };
      if (form.hours.value) body.expires_at = Math.floor(Date.now() / 1000) + 3600 * Number(form.hours.value);
      const t = await api("POST", base, body);
      await route();
      $("#page").prepend(
        h("section", { id: "new-token", class: "card" },
          h("h2", {}, `Token “${t.name}” created`),
          h("p", {}, "Copy it now: it is shown once and only its hash is kept."),
          h("code", { class: "block", id: "token-secret" }, t.token)),
      );
    });
  });
  const rows = list.items.map((t) =>
    h(
      "tr",
      { dataset: { token: t.name } },
      h("td", {}, t.name),
      h("td", {}, h("code", {}, `${t.prefix}…`)),
      h("td", {}, t.scopes.join(", ")),
      h("td", {}, fmtTime(t.created_at)),
      h("td", {}, t.expires_at ? [fmtTime(t.expires_at), expiryFlag(t.expires_at)] : "never"),
      h("td", {}, t.id === me.token_id ? h("span", { class: "muted" }, "this session") : h("button", {
        type: "button",
        class: "danger delete-token",
        onclick: () => attempt(async () => {
          if (!(await confirmDialog("Delete token", `Delete token “${t.name}” (${t.prefix}…)? Whatever uses it is refused from now on.`))) return;
          await api("DELETE", `${base}/${t.id}`);
          await route();
          flash(`Token “${t.name}” deleted.`);
        }),
      }, "Delete")),
    ),
  );
  return [
    h("section", {}, h("h2", {}, "New API token"), form,
      h("p", { class: "muted" }, "A token can only grant the scopes of the token you signed in with.")),
    h("section", {}, h("h2", {}, "API tokens of this account"),
      h("table", { id: "token-table" },
        h("thead", {}, h("tr", {}, ["Name", "Prefix", "Scopes", "Created", "Expires", ""].map((t) => h("th", {}, t)))),
        h("tbody", {}, rows))),
  ];
}

// ---- events ----

let evHost = "";
let evRange = 3600;

const SVG = "http://www.w3.org/2000/svg";
function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(c);
  return el;
}

// Buckets of `step` seconds from `from` to `to`: verdict counts from the
// per-minute counts API (exact), and, from the events list, the invalid
// ones split by reason and the forwarded/blocked actions.
function bucketize(counts, events, from, to, step) {
  const buckets = new Map();
  const empty = () => ({ valid: 0, invalid: 0, none: 0, reasons: {}, forwarded: 0, blocked: 0 });
  const at = (t) => {
    const k = t - (t % step);
    if (!buckets.has(k)) buckets.set(k, empty());
    return buckets.get(k);
  };
  for (let t = from - (from % step); t < to; t += step) at(t);
  for (const r of counts) at(r.minute)[r.verdict] += r.count;
  for (const e of events) {
    const b = at(e.at);
    if (e.verdict === "invalid") {
      const r = e.reason || "unknown";
      b.reasons[r] = (b.reasons[r] ?? 0) + 1;
    }
    if (e.action === "blocked") b.blocked += 1;
    else b.forwarded += 1;
  }
  return [...buckets.entries()].sort((x, y) => x[0] - y[0]);
}

// Stacked bars, one per bucket. `series` is [[name, class, value(bucket)]],
// drawn bottom up. Every bar carries its counts in data-* attributes and a
// <title> tooltip.
function chart(buckets, series, label, from, to, attrs = () => ({})) {
  const total = (b) => series.reduce((n, [, , v]) => n + v(b), 0);
  const max = Math.max(1, ...buckets.map(([, b]) => total(b)));
  const W = 1000, H = 200, pad = 24;
  const bw = (W - pad) / Math.max(1, buckets.length);
  const svg = s("svg", { viewBox: `0 0 ${W} ${H + 20}`, role: "img", "aria-label": label, preserveAspectRatio: "none" });
  svg.append(s("text", { x: 0, y: 12, "font-size": 11, fill: "#5b6577" }, String(max)));
  buckets.forEach(([k, b], i) => {
    const g = s("g", { class: "bar", "data-minute": k, ...attrs(b) });
    let y = H;
    const parts = [];
    for (const [name, cls, v] of series) {
      const n = v(b);
      g.setAttribute(`data-s-${name.replace(/[^a-z0-9-]/gi, "_")}`, n);
      if (n > 0) {
        parts.push(`${n} ${name}`);
        const hgt = (n / max) * (H - 16);
        y -= hgt;
        g.append(s("rect", { class: cls, x: pad + i * bw + 0.5, y, width: Math.max(bw - 1, 0.5), height: hgt }));
      }
    }
    g.append(s("title", {}, `${fmtTime(k)}: ${parts.join(", ") || "nothing"}`));
    svg.append(g);
  });
  svg.append(s("line", { x1: pad, y1: H, x2: W, y2: H, stroke: "#d6dbe4" }));
  svg.append(s("text", { x: pad, y: H + 16, "font-size": 11, fill: "#5b6577" }, fmtTime(from)));
  svg.append(s("text", { x: W, y: H + 16, "font-size": 11, fill: "#5b6577", "text-anchor": "end" }, fmtTime(to)));
  return svg;
}

function topTable(id, title, rows) {
  return h("div", {}, h("h3", {}, title),
    h("table", { id }, h("tbody", {},
      rows.length ? rows.map(([k, n]) => h("tr", {}, h("td", {}, h("code", {}, k)), h("td", {}, n)))
        : h("tr", {}, h("td", { class: "muted" }, "none")))));
}

function top(items, key) {
  const m = new Map();
  for (const e of items) {
    const k = key(e);
    if (k) m.set(k, (m.get(k) ?? 0) + 1);
  }
  return [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, 10);
}

async function eventsPage() {
  const hosts = await api("GET", "/hostnames");
  if (!evHost && hosts.items.length) evHost = hosts.items[0].name;
  const to = Math.floor(Date.now() / 1000) + 1;
  const from = to - evRange;
  const q = `hostname=${encodeURIComponent(evHost)}&from=${from}&to=${to}`;
  const [counts, events] = evHost
    ? await Promise.all([api("GET", `/events/counts?${q}`), api("GET", `/events?${q}&limit=1000`)])
    : [{ items: [] }, { items: [] }];
  const totals = { valid: 0, invalid: 0, none: 0 };
  for (const r of counts.items) totals[r.verdict] += r.count;
  const complete = events.items.length < 1000;
  const buckets = bucketize(counts.items, complete ? events.items : [], from, to, evRange === 3600 ? 60 : 600);
  const reasons = top(events.items, (e) => e.verdict === "invalid" && (e.reason || "unknown")).map(([r]) => r).sort();
  // Invalid split by reason (shades of red), the rest of the count (when
  // the events list is cut at 1,000) as "invalid (other)".
  const verdictSeries = [
    ["valid", "valid", (b) => b.valid],
    ...reasons.map((r, i) => [`invalid:${r}`, `invalid r${i % 4}`, (b) => b.reasons[r] ?? 0]),
    ["invalid:other", "invalid other", (b) => b.invalid - Object.values(b.reasons).reduce((x, y) => x + y, 0)],
    ["none", "none", (b) => b.none],
  ];
  const actionSeries = [
    ["forwarded", "valid", (b) => b.forwarded],
    ["blocked", "invalid", (b) => b.blocked],
  ];
  const actions = Object.fromEntries(top(events.items, (e) => e.action));
  const hostSel = h("select", { id: "ev-host", "aria-label": "Hostname" },
    hosts.items.map((x) => h("option", { value: x.name, selected: x.name === evHost }, x.name)));
  hostSel.addEventListener("change", () => { evHost = hostSel.value; route(); });
  const rangeSel = h("select", { id: "ev-range", "aria-label": "Time range" },
    h("option", { value: 3600, selected: evRange === 3600 }, "last hour (per minute)"),
    h("option", { value: DAY, selected: evRange === DAY }, "last day (per 10 minutes)"));
  rangeSel.addEventListener("change", () => { evRange = Number(rangeSel.value); route(); });
  return [
    h("section", {},
      h("h2", {}, "Requests by client-certificate verdict"),
      h("form", { class: "inline" }, hostSel, rangeSel, h("button", { type: "button", onclick: route }, "Refresh")),
      h("div", { class: "legend", id: "totals" },
        h("span", {}, h("i", { class: "sw-valid" }), "valid ", h("b", { "data-total": "valid" }, totals.valid)),
        h("span", {}, "invalid ", h("b", { "data-total": "invalid" }, totals.invalid), ": "),
        reasons.map((r, i) => h("span", { class: "reason" }, h("i", { class: `sw-r${i % 4}` }), r)),
        complete ? null : h("span", {}, h("i", { class: "sw-other" }), "other"),
        h("span", {}, h("i", { class: "sw-none" }), "none ", h("b", { "data-total": "none" }, totals.none))),
      h("div", { class: "chart", id: "chart" }, chart(buckets, verdictSeries, "Requests per minute by verdict", from, to,
        (b) => ({ "data-valid": b.valid, "data-invalid": b.invalid, "data-none": b.none }))),
      h("h3", {}, "Forwarded and blocked"),
      h("div", { class: "legend", id: "actions" },
        h("span", {}, h("i", { class: "sw-valid" }), "forwarded ", h("b", { "data-total": "forwarded" }, actions.forwarded ?? 0)),
        h("span", {}, h("i", { class: "sw-invalid" }), "blocked ", h("b", { "data-total": "blocked" }, actions.blocked ?? 0))),
      h("div", { class: "chart", id: "action-chart" }, chart(buckets, actionSeries, "Requests per minute forwarded or blocked", from, to)),
      complete ? null : h("p", { class: "muted" }, "More than 1,000 events in this range: reasons, actions and the tables below cover the latest 1,000 only.")),
    h("section", { class: "grid" },
      topTable("top-reasons", "Most frequent invalid reasons", top(events.items, (e) => e.verdict === "invalid" && (e.reason || "unknown"))),
      topTable("top-certs", "Most frequent invalid client certificates (SKI)", top(events.items, (e) => e.verdict === "invalid" && e.ski))),
    h("section", {}, h("h2", {}, "Latest events"),
      h("table", { id: "event-table" },
        h("thead", {}, h("tr", {}, ["Time", "Verdict", "Reason", "Action", "Client IP", "SKI"].map((t) => h("th", {}, t)))),
        h("tbody", {}, events.items.slice(0, 50).map((e) =>
          h("tr", {}, h("td", {}, fmtTime(e.at)), h("td", {}, e.verdict), h("td", {}, e.reason ?? ""),
            h("td", {}, e.action), h("td", {}, e.client_ip ?? ""), h("td", {}, h("code", {}, (e.ski ?? "").slice(0, 16)))))))),
  ];
}

// ---- wiring ----

$("#signin-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const secret = $("#token").value.trim();
  $("#token").value = "";
  signIn(secret);
});
$("#signout").addEventListener("click", () => signOut(""));
window.addEventListener("hashchange", route);
// Clicking the section already shown reloads it.
for (const a of document.querySelectorAll("nav a")) {
  a.addEventListener("click", () => {
    if (a.getAttribute("href") === location.hash) route();
  });
}
