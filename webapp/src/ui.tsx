import { useEffect, useState } from "preact/hooks";
import { ApiError } from "./api";

export function Problem({ text }: { text: string }) {
  return (
    <p class="error" role="alert" data-testid="problem">
      {text}
    </p>
  );
}

export type Loaded<T> = { data?: T; error?: string; loading: boolean };

/** Load once per change of `deps`; an unknown id shows the server's message, not a blank page. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): Loaded<T> & { reload: () => void } {
  const [state, setState] = useState<Loaded<T>>({ loading: true });
  const [n, setN] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (data) => live && setState({ data, loading: false }),
      (err) => live && setState({ error: describe(err), loading: false }),
    );
    return () => {
      live = false;
    };
  }, [...deps, n]);
  return { ...state, reload: () => setN((x) => x + 1) };
}

export function describe(err: unknown): string {
  if (err instanceof ApiError) return err.status === 404 ? `Not found: ${err.message}` : err.message;
  return String((err as Error)?.message ?? err);
}

export function Show<T>({ loaded, children }: { loaded: Loaded<T>; children: (data: T) => any }) {
  if (loaded.error) return <Problem text={loaded.error} />;
  if (loaded.data === undefined) return <p class="muted">Loading…</p>;
  return children(loaded.data);
}

export function Meta({ doc }: { doc: Record<string, any> }) {
  return (
    <table class="meta" data-testid="metadata">
      <tbody>
        {Object.entries(doc)
          .filter(([k]) => !["thumbnails", "object_access", "annotations"].includes(k))
          .map(([k, v]) => (
            <tr key={k}>
              <th>{k}</th>
              <td>{typeof v === "object" && v !== null ? <code>{JSON.stringify(v)}</code> : String(v)}</td>
            </tr>
          ))}
      </tbody>
    </table>
  );
}

export function when(iso?: string | null): string {
  return iso ? new Date(iso).toLocaleString() : "";
}

/** A stable colour per name (labels, providers, entities). */
export function colour(name: string): string {
  let h = 0;
  for (const c of name) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return `hsl(${h % 360} 80% 55%)`;
}
