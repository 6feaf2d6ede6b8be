import { useEffect, useRef, useState } from "preact/hooks";
import { api, thumb, type Doc } from "../api";
import { Problem, Show, colour, describe, useLoad, when } from "../ui";

export function SessionsList() {
  const loaded = useLoad(() => api<Doc[]>("POST", "/v1/sessions/meta/?size=500&sort_field=created_at&sort_order=desc", {}), []);
  return (
    <div>
      <h1>Sessions</h1>
      <Show loaded={loaded}>
        {(sessions) => (
          <ul data-testid="sessions">
            {sessions.map((s) => (
              <li key={s.id}>
                <a href={`/app/sessions?session_uid=${encodeURIComponent(s.id)}`}>{s.session_name}</a>{" "}
                <span class="muted">
                  {when(s.start_time)} – {when(s.end_time)} · {s.status}
                </span>
              </li>
            ))}
          </ul>
        )}
      </Show>
    </div>
  );
}

type FieldData = { time_index: number[]; timestamp: string[]; [field: string]: any[] };

async function loadSession(uid: string) {
  const doc = await api<Doc>("GET", `/v1/sessions/meta/${encodeURIComponent(uid)}`);
  const data = await api<FieldData>("POST", `/v1/session_manager/field_data/${encodeURIComponent(doc.id)}`, { session_fields: ["*"] });
  const images = await api<Doc[]>("POST", "/v1/images/meta/?size=2000&sort_field=timestamp&sort_order=asc", {
    filters: [{ field: "session_uid", values: [doc.id] }],
    source_selected_fields: ["id", "timestamp", "sensor"],
  });
  return { doc, data, images };
}

export function SessionPage({ uid }: { uid: string }) {
  const loaded = useLoad(() => loadSession(uid), [uid]);
  return <Show loaded={loaded}>{(d) => <SessionView {...d} />}</Show>;
}

function SessionView({ doc, data, images }: { doc: Doc; data: FieldData; images: Doc[] }) {
  const t = data.time_index;
  const n = t.length;
  const [cursor, setCursor] = useState(0);
  const [query, setQuery] = useState('{"ranges": [{"field": "speed", "min": 20}]}');
  const [matches, setMatches] = useState<[number, number][]>([]);
  const [searchError, setSearchError] = useState<string | null>(null);
  const fields = Object.keys(data).filter((f) => f !== "time_index" && f !== "timestamp");
  const now = t[cursor] ?? 0;
  const times = images.map((im) => Date.parse(im.timestamp) / 1000);
  const nearest = images
    .map((im, k) => ({ im, d: Math.abs(times[k] - now) }))
    .sort((a, b) => a.d - b.d)
    .slice(0, 4);
  async function runSearch(e: Event) {
    e.preventDefault();
    setSearchError(null);
    try {
      const q = JSON.parse(query);
      q.filters = [...(q.filters ?? []), { field: "session_uid", values: [doc.id] }];
      const found = await api<Record<string, { intervals: [any, any][] }>>("POST", "/v1/session_manager/search/", q);
      const toEpoch = (v: any) => (typeof v === "number" ? v : Date.parse(v) / 1000);
      setMatches((found[doc.id]?.intervals ?? []).map(([a, b]) => [toEpoch(a), toEpoch(b)]));
    } catch (err) {
      setSearchError(describe(err));
    }
  }
  const x = (time: number) => (n > 1 ? ((time - t[0]) / (t[n - 1] - t[0])) * 100 : 0);
  return (
    <div class="session">
      <h1>{doc.session_name}</h1>
      <p class="muted">
        {when(doc.start_time)} – {when(doc.end_time)} · resolution {doc.resolution} s · {n} buckets
      </p>
      <form class="query" onSubmit={runSearch}>
        <input name="scenario" value={query} onInput={(e) => setQuery(e.currentTarget.value)} />
        <button type="submit">Scenario search</button>
      </form>
      {searchError && <Problem text={searchError} />}
      <p data-testid="scenario-matches">{matches.length} matching intervals</p>
      <div class="tracks" data-testid="tracks">
        {fields.map((f) => (
          <div class="track" key={f} data-field={f}>
            <div class="name">{f}</div>
            <div class="lane">
              {matches.map(([a, b], k) => (
                <div class="match" key={k} style={{ left: `${x(a)}%`, width: `${Math.max(0.3, x(b + (doc.resolution ?? 1)) - x(a))}%` }} />
              ))}
              <Track values={data[f]} />
              <div class="cursor" style={{ left: `${x(now)}%` }} />
            </div>
          </div>
        ))}
        <div class="track">
          <div class="name">images</div>
          <div class="lane">
            {times.map((tm, k) => (
              <div class="tick" key={k} style={{ left: `${x(tm)}%` }} />
            ))}
            <div class="cursor" style={{ left: `${x(now)}%` }} />
          </div>
        </div>
      </div>
      <input type="range" class="timeline" min={0} max={Math.max(0, n - 1)} value={cursor} name="cursor" onInput={(e) => setCursor(Number(e.currentTarget.value))} />
      <p data-testid="cursor-time">{data.timestamp[cursor] ? new Date(data.timestamp[cursor]).toISOString() : ""}</p>
      <div class="columns">
        <section>
          <h2>Nearest images</h2>
          <div class="nearest" data-testid="nearest-images">
            {nearest.map(({ im }) => (
              <a key={im.id} href={`/app/images?image=${encodeURIComponent(im.id)}`} data-id={im.id}>
                <img src={thumb("images", im.id)} alt={im.id} />
              </a>
            ))}
          </div>
        </section>
        <section>
          <h2>GPS track</h2>
          {fields.filter((f) => isGeo(data[f].find((v) => v !== null))).map((f) => (
            <GeoTrack key={f} points={data[f]} cursor={cursor} />
          ))}
        </section>
      </div>
    </div>
  );
}

const isGeo = (v: any) => Array.isArray(v) && v.length === 2 && typeof v[0] === "number" && typeof v[1] === "number";

/** One lane: a line for numbers, coloured bands for states (and state sets: comments). */
function Track({ values }: { values: any[] }) {
  const n = values.length;
  const sample = values.find((v) => v !== null && v !== undefined);
  if (typeof sample === "number") {
    const nums = values.filter((v) => typeof v === "number") as number[];
    const lo = Math.min(...nums);
    const hi = Math.max(...nums);
    const pts = values.map((v, i) => (typeof v === "number" ? `${(i / Math.max(1, n - 1)) * 1000},${40 - ((v - lo) / (hi - lo || 1)) * 36 - 2}` : null)).filter(Boolean);
    return (
      <svg viewBox="0 0 1000 40" preserveAspectRatio="none" class="plot">
        <polyline points={pts.join(" ")} fill="none" stroke="#4fa3ff" stroke-width={1.5} vector-effect="non-scaling-stroke" />
        <text x={4} y={10} class="axis">{hi.toFixed(1)}</text>
        <text x={4} y={38} class="axis">{lo.toFixed(1)}</text>
      </svg>
    );
  }
  if (isGeo(sample)) return <span class="muted">geo ({n} positions: see the map)</span>;
  const text = (v: any) => (Array.isArray(v) ? v.join(", ") : String(v)); // a state set is a list of states
  return (
    <svg viewBox={`0 0 ${n} 40`} preserveAspectRatio="none" class="plot">
      {values.map((v, i) => (v === null || v === undefined || (Array.isArray(v) && !v.length) ? null : <rect key={i} x={i} y={4} width={1} height={32} fill={colour(text(v))} data-state={text(v)}><title>{text(v)}</title></rect>))}
    </svg>
  );
}

/** The GPS track on a plain canvas (no map tiles: the app works offline), north up, equirectangular. */
function GeoTrack({ points, cursor }: { points: ([number, number] | null)[]; cursor: number }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    const el = canvas.current!;
    const ctx = el.getContext("2d")!;
    const fixes = points.filter(Boolean) as [number, number][];
    ctx.fillStyle = "#111";
    ctx.fillRect(0, 0, el.width, el.height);
    if (!fixes.length) return;
    const lats = fixes.map((p) => p[0]);
    const lons = fixes.map((p) => p[1]);
    const [la0, la1, lo0, lo1] = [Math.min(...lats), Math.max(...lats), Math.min(...lons), Math.max(...lons)];
    const k = Math.cos(((la0 + la1) / 2) * (Math.PI / 180)); // metres per degree of longitude shrink with latitude
    const span = Math.max(la1 - la0, (lo1 - lo0) * k, 1e-9);
    // one scale for both axes (a square stays square), the track centred in the canvas
    const scale = Math.min(el.width - 40, el.height - 40) / span;
    const ox = (el.width - (lo1 - lo0) * k * scale) / 2;
    const oy = (el.height + (la1 - la0) * scale) / 2;
    const px = (p: [number, number]) => [ox + (p[1] - lo0) * k * scale, oy - (p[0] - la0) * scale];
    ctx.strokeStyle = "#4fa3ff";
    ctx.lineWidth = 2;
    ctx.beginPath();
    fixes.forEach((p, i) => {
      const [a, b] = px(p);
      if (i) ctx.lineTo(a, b);
      else ctx.moveTo(a, b);
    });
    ctx.stroke();
    const here = points[cursor];
    if (here) {
      const [a, b] = px(here);
      ctx.fillStyle = "#ff5a36";
      ctx.beginPath();
      ctx.arc(a, b, 6, 0, 2 * Math.PI);
      ctx.fill();
    }
  }, [points, cursor]);
  return <canvas ref={canvas} width={480} height={360} data-testid="gps-track" data-fixes={points.filter(Boolean).length} />;
}
