import { readFileSync } from "node:fs";

// gatewarden's approval page (`/approvals`): three static files from
// web/approvals, served with headers that keep them to themselves. The page
// is a protocol client of gatewarden (web/approvals/app.js): it holds no
// cookie and the server keeps no page session, so every action is decided by
// the same admission and management decisions as any other client's.

export interface StaticResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
}

/** Only the page's own script, style and WebSocket; no inline code, no framing, no forms posted anywhere. */
export const APPROVAL_PAGE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "content-security-policy": APPROVAL_PAGE_CSP,
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
  "cache-control": "no-store",
};

const FILES: readonly (readonly [string, string, string])[] = [
  ["/approvals", "index.html", "text/html; charset=utf-8"],
  ["/approvals/", "index.html", "text/html; charset=utf-8"],
  ["/approvals/app.js", "app.js", "text/javascript; charset=utf-8"],
  ["/approvals/app.css", "app.css", "text/css; charset=utf-8"],
  ["/approvals/icon.svg", "icon.svg", "image/svg+xml"],
];

export type ApprovalPage = ReadonlyMap<string, { readonly body: Buffer; readonly type: string }>;

/** Read the page's files once, at start (a missing file is a broken install: say which). */
export function loadApprovalPage(dir: URL = new URL("../../../web/approvals/", import.meta.url)): ApprovalPage {
  const page = new Map<string, { body: Buffer; type: string }>();
  for (const [path, file, type] of FILES) {
    const at = new URL(file, dir);
    try {
      page.set(path, { body: readFileSync(at), type });
    } catch (e) {
      throw new Error(`approval page file ${at.pathname} cannot be read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
  }
  return page;
}

/** The response for `method` `url`, or undefined when the path is not the page's. */
export function approvalPageResponse(page: ApprovalPage, method: string | undefined, url: string | undefined): StaticResponse | undefined {
  const path = (url ?? "").split("?")[0] ?? "";
  if (path !== "/approvals" && !path.startsWith("/approvals/")) return undefined;
  const file = page.get(path);
  if (!file) return { status: 404, headers: { ...SECURITY_HEADERS, "content-type": "text/plain; charset=utf-8" }, body: Buffer.from("not found\n") };
  if (method !== "GET" && method !== "HEAD") {
    return { status: 405, headers: { ...SECURITY_HEADERS, allow: "GET, HEAD", "content-type": "text/plain; charset=utf-8" }, body: Buffer.from("method not allowed\n") };
  }
  return { status: 200, headers: { ...SECURITY_HEADERS, "content-type": file.type, "content-length": String(file.body.length) }, body: method === "HEAD" ? Buffer.alloc(0) : file.body };
}
