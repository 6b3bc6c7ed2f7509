// Talking to the gateway: every call carries the credential of the session; nothing else is contacted.

const STORE = "sous.console.session";

export class ApiError extends Error {
  constructor(status, body) {
    const detail = body && typeof body.detail === "string" ? body.detail : `HTTP ${status}`;
    super(detail);
    this.status = status;
    this.code = (body && body.code) || "error";
    this.body = body || {};
    // 422: {errors: [{field, message, type}]} -> {"steps[0].agent_id": "message", ...}
    this.fields = {};
    for (const error of (body && Array.isArray(body.errors) ? body.errors : [])) {
      const field = String(error.field || "body");
      this.fields[field] = this.fields[field] ? `${this.fields[field]}; ${error.message}` : String(error.message);
    }
  }
}

export const session = {
  credential: "",
  kind: "",          // "jwt" | "key"
  workspace: "",
  identity: null,    // GET /api/session

  load() {
    try {
      const saved = JSON.parse(sessionStorage.getItem(STORE) || "null");
      if (saved && saved.credential) {
        this.credential = saved.credential;
        this.kind = saved.kind;
        this.workspace = saved.workspace || "";
        return true;
      }
    } catch (_error) {
      sessionStorage.removeItem(STORE);
    }
    return false;
  },

  save() {
    sessionStorage.setItem(
      STORE,
      JSON.stringify({ credential: this.credential, kind: this.kind, workspace: this.workspace }),
    );
  },

  clear() {
    this.credential = "";
    this.kind = "";
    this.workspace = "";
    this.identity = null;
    sessionStorage.removeItem(STORE);
  },

  has(scope) {
    return Boolean(this.identity && this.identity.scopes.includes(scope));
  },
};

export function credentialKind(text) {
  const value = text.trim();
  if (value.startsWith("sous_")) return "key";
  if (value.split(".").length === 3) return "jwt";
  return "";
}

function authHeaders() {
  const headers = {};
  if (session.kind === "jwt") headers.Authorization = `Bearer ${session.credential}`;
  else if (session.kind === "key") headers["X-API-Key"] = session.credential;
  if (session.workspace) headers["X-Workspace-ID"] = session.workspace;
  return headers;
}

function url(path, query) {
  const target = new URL(path, window.location.origin);
  for (const [key, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") target.searchParams.set(key, String(value));
  }
  return target.pathname + target.search;
}

export async function api(method, path, options = {}) {
  const headers = { ...authHeaders(), ...(options.headers || {}) };
  const init = { method, headers, signal: options.signal, credentials: "omit", cache: "no-store" };
  if (options.body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(options.body);
  }
  const response = await fetch(url(path, options.query), init);
  const text = await response.text();
  let body = null;
  if (text) {
    try {
      body = JSON.parse(text);
    } catch (_error) {
      body = { detail: text.slice(0, 300) };
    }
  }
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

export const get = (path, query, signal) => api("GET", path, { query, signal });
export const post = (path, body) => api("POST", path, { body: body === undefined ? {} : body });
export const put = (path, body, headers) => api("PUT", path, { body, headers });
export const del = (path) => api("DELETE", path);

// Server-Sent Events through fetch, so the credential travels in a header (EventSource cannot send one).
// Calls onEvent({id, event, data}) for each event; resolves when the stream ends or the signal aborts.
export async function streamEvents(path, onEvent, signal, lastEventId = "") {
  const response = await fetch(path, {
    headers: { ...authHeaders(), Accept: "text/event-stream", ...(lastEventId ? { "Last-Event-ID": lastEventId } : {}) },
    signal,
    credentials: "omit",
    cache: "no-store",
  });
  if (!response.ok || !response.body) {
    let body = null;
    try {
      body = await response.json();
    } catch (_error) {
      body = null;
    }
    throw new ApiError(response.status, body);
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value.replace(/\r\n?/g, "\n");
      let end = buffer.indexOf("\n\n");
      while (end >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const parsed = parseBlock(block);
        if (parsed) onEvent(parsed);
        end = buffer.indexOf("\n\n");
      }
    }
  } catch (error) {
    if (error.name !== "AbortError") throw error;
  } finally {
    reader.releaseLock();
  }
}

function parseBlock(block) {
  let id = "";
  let event = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "id") id = value;
    else if (field === "event") event = value;
    else if (field === "data") data.push(value);
  }
  if (!data.length) return null;
  let payload = data.join("\n");
  try {
    payload = JSON.parse(payload);
  } catch (_error) {
    // plain text data stays text
  }
  return { id, event, data: payload };
}
