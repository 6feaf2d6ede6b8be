import { useEffect, useMemo, useState } from "preact/hooks";
import { api, navigate, waitForJob, type Doc, type Search } from "../api";
import { Problem, Show, describe, useLoad, when } from "../ui";
import { Grid } from "./grid";

export const PAGE_PARAM: Record<string, string> = {
  images: "images?image=",
  objects: "objects?object=",
  videos: "videos?video=",
  lidars: "lidars?lidar=",
  sessions: "sessions?session_uid=",
};

export function SetsList() {
  const loaded = useLoad(() => api<Doc[]>("POST", "/v1/sets/meta/?size=500&sort_field=created_at&sort_order=desc", {}), []);
  return (
    <div>
      <h1>Sets</h1>
      <Show loaded={loaded}>
        {(sets) => (
          <table class="list" data-testid="sets">
            <thead>
              <tr>
                <th>name</th>
                <th>type</th>
                <th>status</th>
                <th>created</th>
              </tr>
            </thead>
            <tbody>
              {sets.map((s) => (
                <tr key={s.id}>
                  <td>
                    <a href={`/app/sets?set=${encodeURIComponent(s.id)}`}>{s.name}</a>
                  </td>
                  <td>{s.assets_type}</td>
                  <td>{s.locked ? "locked" : s.status}</td>
                  <td>{when(s.created_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Show>
    </div>
  );
}

// ---- filters in the URL: f=<field>=<value> (repeated), r=<field>=<min>..<max>, q=<search JSON>

type Filters = { facets: Record<string, string[]>; ranges: Record<string, [string, string]>; q: string };

function readFilters(params: URLSearchParams): Filters {
  const facets: Record<string, string[]> = {};
  for (const f of params.getAll("f")) {
    const at = f.indexOf("=");
    if (at > 0) (facets[f.slice(0, at)] ??= []).push(f.slice(at + 1));
  }
  const ranges: Record<string, [string, string]> = {};
  for (const r of params.getAll("r")) {
    const m = /^(.+?)=(.*)\.\.(.*)$/.exec(r);
    if (m) ranges[m[1]] = [m[2], m[3]];
  }
  return { facets, ranges, q: params.get("q") ?? "" };
}

function writeFilters(setId: string, f: Filters): void {
  const p = new URLSearchParams({ set: setId });
  for (const [field, values] of Object.entries(f.facets)) for (const v of values) p.append("f", `${field}=${v}`);
  for (const [field, [lo, hi]] of Object.entries(f.ranges)) if (lo || hi) p.append("r", `${field}=${lo}..${hi}`);
  if (f.q.trim()) p.set("q", f.q);
  navigate(`/app/sets?${p}`, true);
}

/** The search the grid shows: the set, the facets, the ranges, and the query box (docs/search.md). */
export function buildSearch(setId: string, f: Filters): Search {
  const typed: Search = f.q.trim() ? JSON.parse(f.q) : {};
  const filters = [{ field: "sets", values: [setId] }, ...Object.entries(f.facets).map(([field, values]) => ({ field, values }))];
  const ranges = Object.entries(f.ranges)
    .filter(([, [lo, hi]]) => lo || hi)
    .map(([field, [lo, hi]]) => ({ field, ...(lo ? { min: Number(lo) } : {}), ...(hi ? { max: Number(hi) } : {}) }));
  return {
    ...typed,
    filters: [...filters, ...(typed.filters ?? [])],
    ...(ranges.length || typed.ranges ? { ranges: [...ranges, ...(typed.ranges ?? [])] } : {}),
  };
}

const HIDDEN = /(^|\.)id$|^(annotations|sets|content_hash|user|owner|session_uid|media_type|format)$/;

/** Sensors and tags first, then aux fields, then the annotations' fields. */
const facetRank = (field: string) => (field === "sensor" ? 0 : field === "tags" ? 1 : field.startsWith("aux.") ? 2 : 3);

type Stat = { field: string; type: string; count: number; min?: any; max?: any; values?: { key: string; doc_count: number }[] };

export function SetPage({ setId }: { setId: string }) {
  // the set's document (name, type) is one read; its status would count the members first
  const doc = useLoad(() => api<Doc>("GET", `/v1/sets/meta/${encodeURIComponent(setId)}`), [setId]);
  return <Show loaded={doc}>{(set) => <SetBrowser set={set} key={set.id} />}</Show>;
}

function SetBrowser({ set }: { set: Doc }) {
  const type: string = set.assets_type;
  const filters = readFilters(new URLSearchParams(location.search));
  const key = location.search;
  const [queryText, setQueryText] = useState(filters.q);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  // the facets wait until the first thumbnails are in: on a large set their statistics take the server seconds,
  // and the grid comes first
  const [settled, setSettled] = useState(false);
  const stats = useLoad(
    () => (settled ? api<Record<string, Stat>>("GET", `/v1/${type}/meta/searchable_field_statistics/`) : Promise.resolve({} as Record<string, Stat>)),
    [type, settled],
  );
  let search: Search | null = null;
  let badQuery: string | null = null;
  try {
    search = buildSearch(set.id, filters);
  } catch (err) {
    badQuery = `The query is not JSON: ${(err as Error).message}`;
  }
  const facetFields = useMemo(
    () =>
      Object.values(stats.data ?? {})
        .filter((s) => s.type === "tag" && !HIDDEN.test(s.field))
        .sort((a, b) => facetRank(a.field) - facetRank(b.field) || a.field.localeCompare(b.field)),
    [stats.data],
  );
  const counts = useLoad(async () => {
    if (!search || !facetFields.length || !settled) return {} as Record<string, Record<string, number>>;
    const flat = facetFields.filter((s) => !s.field.startsWith("annotations_meta.")).map((s) => s.field);
    const nested = facetFields.filter((s) => s.field.startsWith("annotations_meta.")).map((s) => s.field);
    const r = await api<Doc>("POST", `/v1/${type}/meta/summary/`, { search, dimensions: flat, nested_dimensions: nested, max_size_for_agg: 30 });
    const out: Record<string, Record<string, number>> = {};
    for (const agg of r.aggregations ?? []) out[agg.dimension] = Object.fromEntries(agg.buckets.map((b: Doc) => [String(b.key), b.doc_count]));
    return out;
  }, [key, facetFields.length, settled]);

  const toggle = (field: string, value: string) => {
    const values = filters.facets[field] ?? [];
    const next = values.includes(value) ? values.filter((v) => v !== value) : [...values, value];
    const facets = { ...filters.facets, [field]: next };
    if (!next.length) delete facets[field];
    writeFilters(set.id, { ...filters, facets });
  };
  return (
    <div class="setpage">
      <aside class="facets" data-testid="facets">
        <h2>{set.name}</h2>
        <p class="muted">
          {type} set {set.locked ? "· locked" : ""}
        </p>
        {facetFields.map((s) => {
          // values the current results have (or that are ticked); all of them until the counts arrive
          const shown = (s.values ?? []).filter((v) => !counts.data || counts.data[s.field]?.[String(v.key)] || (filters.facets[s.field] ?? []).includes(String(v.key)));
          return shown.length === 0 ? null : (
          <details open key={s.field} data-facet={s.field}>
            <summary>{s.field}</summary>
            {shown.slice(0, 15).map((v) => (
              <label key={v.key} class="facet">
                <input
                  type="checkbox"
                  checked={(filters.facets[s.field] ?? []).includes(String(v.key))}
                  onChange={() => toggle(s.field, String(v.key))}
                  data-value={v.key}
                />
                {String(v.key)} <span class="muted">{counts.data?.[s.field]?.[String(v.key)] ?? 0}</span>
              </label>
            ))}
          </details>
          );
        })}
        {Object.values(stats.data ?? {})
          .filter((s) => s.type === "number" && !HIDDEN.test(s.field))
          .map((s) => (
            <RangeFacet key={s.field} stat={s} value={filters.ranges[s.field]} onChange={(v) => writeFilters(set.id, { ...filters, ranges: { ...filters.ranges, [s.field]: v } })} />
          ))}
      </aside>
      <section class="results">
        <form
          class="query"
          onSubmit={(e) => {
            e.preventDefault();
            writeFilters(set.id, { ...filters, q: queryText });
          }}
        >
          <input
            name="q"
            placeholder='search (docs/search.md), e.g. {"filters": [{"field": "aux.weather", "values": ["rain"]}]}'
            value={queryText}
            onInput={(e) => setQueryText(e.currentTarget.value)}
          />
          <button type="submit">Search</button>
        </form>
        {badQuery ? <Problem text={badQuery} /> : <Results type={type} search={search!} searchKey={key} selected={selected} setSelected={setSelected} onSettled={() => setSettled(true)} />}
        <SelectionBar type={type} selected={selected} clear={() => setSelected(new Set())} />
      </section>
    </div>
  );
}

function RangeFacet({ stat, value, onChange }: { stat: Stat; value?: [string, string]; onChange: (v: [string, string]) => void }) {
  const [lo, setLo] = useState(value?.[0] ?? "");
  const [hi, setHi] = useState(value?.[1] ?? "");
  return (
    <form
      class="range"
      data-range={stat.field}
      onSubmit={(e) => {
        e.preventDefault();
        onChange([lo, hi]);
      }}
    >
      <div>{stat.field}</div>
      <input size={6} name="min" placeholder={String(stat.min)} value={lo} onInput={(e) => setLo(e.currentTarget.value)} />
      –
      <input size={6} name="max" placeholder={String(stat.max)} value={hi} onInput={(e) => setHi(e.currentTarget.value)} />
      <button type="submit">apply</button>
    </form>
  );
}

/** Ids in pages: the first 200 at once (the grid shows them), then every id, streamed by the scan search. */
function Results(props: { type: string; search: Search; searchKey: string; selected: Set<string>; setSelected: (s: Set<string>) => void; onSettled: () => void }) {
  const { type, search, searchKey } = props;
  const [settled, setSettled] = useState(false);
  const [ids, setIds] = useState<string[] | null>(null);
  const [total, setTotal] = useState<number | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    setIds(null);
    setError(null);
    const first = api<string[]>("POST", `/v1/${type}/?size=200`, search);
    first.then((page) => live && setIds(page), (err) => live && setError(describe(err)));
    if (!settled) return; // the count and the other ids once the first thumbnails are in
    const count = api<{ count: number }>("POST", `/v1/${type}/count/`, search);
    count.then(async (c) => {
      if (!live) return;
      setTotal(c.count);
      if (c.count > 200) {
        const all = await api<string[]>("POST", `/v1/${type}/?scan=true`, search);
        if (live) setIds(all);
      }
    }, () => undefined);
    return () => {
      live = false;
    };
  }, [searchKey, settled]);
  if (error) return <Problem text={error} />;
  if (!ids) return <p class="muted">Searching…</p>;
  return (
    <div>
      <p data-testid="result-count">
        {(total ?? ids.length).toLocaleString()} {type}
        {props.selected.size ? ` · ${props.selected.size} selected` : ""}
      </p>
      <Grid type={type} ids={ids} onSettled={() => {
        setSettled(true);
        props.onSettled();
      }} selected={props.selected} onToggle={(id) => {
        const next = new Set(props.selected);
        if (next.has(id)) next.delete(id);
        else next.add(id);
        props.setSelected(next);
      }} />
    </div>
  );
}

export function SelectionBar({ type, selected, clear }: { type: string; selected: Set<string>; clear: () => void }) {
  const [name, setName] = useState("");
  const [target, setTarget] = useState("");
  const [message, setMessage] = useState<{ text: string; setId?: string; error?: boolean } | null>(null);
  const sets = useLoad(() => api<Doc[]>("POST", "/v1/sets/meta/?size=500", { filters: [{ field: "assets_type", values: [type] }] }), [type, message?.setId]);
  if (!selected.size && !message) return null;
  async function addTo(setId: string, label: string) {
    try {
      const { job_id } = await api<{ job_id: string }>("POST", `/v1/sets/${encodeURIComponent(setId)}/add_assets_list/`, { asset_list: [...selected] });
      const job = await waitForJob(job_id);
      if (job.status !== "finished") throw new Error(`the job that adds them ${job.status}: ${JSON.stringify(job.result)}`);
      setMessage({ text: `Added ${selected.size} ${type} to ${label}.`, setId });
      clear();
    } catch (err) {
      setMessage({ text: describe(err), error: true });
    }
  }
  return (
    <div class="selection" data-testid="selection-bar">
      {selected.size > 0 && (
        <>
          <span>{selected.size} selected</span>
          <input name="new-set" placeholder="new set name" value={name} onInput={(e) => setName(e.currentTarget.value)} />
          <button
            disabled={!name.trim()}
            onClick={async () => {
              try {
                const made = await api<{ id: string; created: boolean }>("POST", "/v1/sets/add/", { name: name.trim(), assets_type: type, raise_if_set_exists: true });
                await addTo(made.id, `the new set “${name.trim()}”`);
              } catch (err) {
                setMessage({ text: describe(err), error: true });
              }
            }}
          >
            New set
          </button>
          <select name="existing-set" value={target} onChange={(e) => setTarget(e.currentTarget.value)}>
            <option value="">existing set…</option>
            {(sets.data ?? []).map((s) => (
              <option value={s.id} key={s.id}>
                {s.name}
              </option>
            ))}
          </select>
          <button disabled={!target} onClick={() => addTo(target, (sets.data ?? []).find((s) => s.id === target)?.name ?? target)}>
            Add to set
          </button>
          <button onClick={clear}>Clear</button>
        </>
      )}
      {message && (
        <p class={message.error ? "error" : "ok"} data-testid="selection-message">
          {message.text} {message.setId && <a href={`/app/sets?set=${encodeURIComponent(message.setId)}`}>open it</a>}
        </p>
      )}
    </div>
  );
}
