// The documented API (/openapi.json, types generated into api-types.ts by `npm run gen-types`), with the
// personal token of the signed-in user. Errors keep the server's message, which names what went wrong.
import type { components } from "./api-types";

export type JobDocument = components["schemas"]["JobDocument"];
export type Doc = Record<string, any>;
export type Search = Record<string, any>;

const TOKEN_KEY = "scenebase.token";

export function token(): string | null {
  return localStorage.getItem(TOKEN_KEY);
}
export function setToken(value: string | null): void {
  if (value) localStorage.setItem(TOKEN_KEY, value);
  else localStorage.removeItem(TOKEN_KEY);
}

export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
  ) {
    super(message);
  }
}

export async function api<T = any>(method: string, path: string, body?: unknown, init?: RequestInit): Promise<T> {
  const headers: Record<string, string> = { Authorization: `Bearer ${token() ?? ""}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), ...init });
  if (!resp.ok) {
    let code = "error";
    let message = `${method} ${path}: HTTP ${resp.status}`;
    try {
      const err = (await resp.json()).error;
      code = err.code;
      message = err.message;
    } catch {
      /* not the API's error shape: keep the status line */
    }
    if (resp.status === 401) {
      setToken(null);
      navigate("/app/signin");
    }
    throw new ApiError(resp.status, code, message);
  }
  return (await resp.json()) as T;
}

/** A URL an <img>/<video> can load: those cannot send headers, so the token rides in the query. */
export function mediaUrl(path: string): string {
  const sep = path.includes("?") ? "&" : "?";
  return `${path}${sep}token=${encodeURIComponent(token() ?? "")}`;
}

export const thumb = (type: string, id: string, tag = "small") =>
  mediaUrl(`/v1/${type}/${encodeURIComponent(id)}/thumbnail/${tag}`);
export const file = (type: string, id: string) => mediaUrl(`/v1/${type}/${encodeURIComponent(id)}/file`);

export async function waitForJob(jobId: string, timeoutMs = 60000): Promise<JobDocument> {
  const start = Date.now();
  for (;;) {
    const job = await api<JobDocument>("GET", `/v1/jobs/${jobId}`);
    if (["finished", "failed", "aborted", "cancelled"].includes(String(job.status))) return job;
    if (Date.now() - start > timeoutMs) throw new Error(`job ${jobId} still ${job.status} after ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

// ---- navigation: the app routes in the browser (every /app/<page> answers index.html)

type Listener = () => void;
const listeners = new Set<Listener>();
export function onNavigate(fn: Listener): () => void {
  listeners.add(fn);
  return () => listeners.delete(fn);
}
export function navigate(url: string, replace = false): void {
  if (replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  listeners.forEach((fn) => fn());
}
window.addEventListener("popstate", () => listeners.forEach((fn) => fn()));

export function link(e: MouseEvent): void {
  const a = (e.target as HTMLElement).closest("a");
  if (!a || a.target || e.ctrlKey || e.metaKey || e.shiftKey || !a.pathname.startsWith("/app")) return;
  e.preventDefault();
  navigate(a.pathname + a.search);
}
