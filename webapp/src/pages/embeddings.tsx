import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { api, navigate, thumb, type Doc } from "../api";
import { Problem, Show, colour, useLoad } from "../ui";
import { SelectionBar } from "./sets";

type Space = { count: number; asset_types: string[]; indexed: number };
type MapData = { ids: string[]; xy: Float32Array; values: string[]; bounds: { minx: number; miny: number; span: number } };

const get = (doc: Doc, path: string): any => path.split(".").reduce((d, k) => (d == null ? d : d[k]), doc as any);

async function loadPoints(type: string, index: string, colourBy: string): Promise<MapData> {
  const field = `umap.${index}.coordinates`;
  const docs = await api<Doc[]>("POST", `/v1/${type}/meta/?scan=true`, {
    exists_filters: [{ field }],
    source_selected_fields: ["id", field, ...(colourBy ? [colourBy] : [])],
  });
  const xy = new Float32Array(docs.length * 2);
  let [minx, miny, maxx, maxy] = [Infinity, Infinity, -Infinity, -Infinity];
  const ids: string[] = [];
  const values: string[] = [];
  docs.forEach((d, i) => {
    const [x, y] = get(d, field);
    xy[2 * i] = x;
    xy[2 * i + 1] = y;
    minx = Math.min(minx, x);
    maxx = Math.max(maxx, x);
    miny = Math.min(miny, y);
    maxy = Math.max(maxy, y);
    ids.push(d.id);
    const v = colourBy ? get(d, colourBy) : "";
    values.push(Array.isArray(v) ? String(v[0] ?? "") : v == null ? "" : String(v));
  });
  return { ids, xy, values, bounds: { minx, miny, span: Math.max(maxx - minx, maxy - miny, 1e-9) } };
}

export function EmbeddingsPage() {
  const q = new URLSearchParams(location.search);
  const type = q.get("type") ?? "images";
  const spaces = useLoad(() => api<Record<string, Space>>("GET", `/v1/embeddings/spaces/?asset_type=${type}`), [type]);
  return (
    <Show loaded={spaces}>
      {(all) => {
        // a map named in the URL is shown even when its space holds no vectors any more (the points keep it)
        const index = q.get("index") ?? Object.keys(all)[0];
        if (!index) return <Problem text={`No embedding space has ${type} yet: add embeddings (add_embeddings or model_inference) first.`} />;
        const names = [...new Set([index, ...Object.keys(all)])];
        return <MapView type={type} index={index} names={names} colourBy={q.get("colour") ?? "sensor"} key={`${type}/${index}/${q.get("colour")}`} />;
      }}
    </Show>
  );
}

const VERTEX = `attribute vec2 p; attribute vec3 c; uniform vec2 centre; uniform vec2 scale; varying vec3 v;
void main() { gl_Position = vec4((p - centre) * scale, 0.0, 1.0); gl_PointSize = 4.0; v = c; }`;
// square opaque points: no discard and no blending, which cost most where WebGL is software-rendered
const FRAGMENT = `precision mediump float; varying vec3 v; void main() { gl_FragColor = vec4(v, 1.0); }`;

function rgb(css: string): [number, number, number] {
  const m = /hsl\((\d+) (\d+)% (\d+)%\)/.exec(css);
  if (!m) return [0.6, 0.6, 0.6];
  const [h, s, l] = [Number(m[1]) / 360, Number(m[2]) / 100, Number(m[3]) / 100];
  const f = (n: number) => {
    const k = (n + h * 12) % 12;
    return l - s * Math.min(l, 1 - l) * Math.max(-1, Math.min(k - 3, 9 - k, 1));
  };
  return [f(0), f(8), f(4)];
}

function MapView({ type, index, names, colourBy }: { type: string; index: string; names: string[]; colourBy: string }) {
  const loaded = useLoad(() => loadPoints(type, index, colourBy), [type, index, colourBy]);
  const stats = useLoad(() => api<Record<string, Doc>>("GET", `/v1/${type}/meta/searchable_field_statistics/`), [type]);
  const colourFields = ["sensor", "sets", "tags", ...Object.keys(stats.data ?? {}).filter((f) => f.startsWith("aux.") && stats.data![f].type === "tag")];
  const setUrl = (changes: Record<string, string>) => {
    const p = new URLSearchParams(location.search);
    for (const [k, v] of Object.entries(changes)) p.set(k, v);
    navigate(`/app/embeddings?${p}`, true);
  };
  return (
    <div class="mappage">
      <div class="maptools">
        <h1>Embedding map</h1>
        <select name="space" value={index} onChange={(e) => setUrl({ index: e.currentTarget.value })}>
          {names.map((n) => (
            <option key={n}>{n}</option>
          ))}
        </select>{" "}
        colour by{" "}
        <select name="colour" value={colourBy} onChange={(e) => setUrl({ colour: e.currentTarget.value })}>
          {[...new Set([colourBy, ...colourFields])].map((f) => (
            <option key={f}>{f}</option>
          ))}
        </select>
        <span class="muted"> · drag to pan, wheel to zoom, shift-drag to lasso</span>
      </div>
      <Show loaded={loaded}>{(data) => (data.ids.length ? <Scatter type={type} data={data} /> : <Problem text={`No ${type} have a map in "${index}" yet: run create_umap.`} />)}</Show>
    </div>
  );
}

function Scatter({ type, data }: { type: string; data: MapData }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const overlay = useRef<HTMLCanvasElement>(null);
  // the view lives in a ref and is drawn once per animation frame: a drag does not re-render the page
  const viewRef = useRef({ cx: 0, cy: 0, zoom: 1 });
  const pending = useRef(0);
  const setView = (update: (v: { cx: number; cy: number; zoom: number }) => { cx: number; cy: number; zoom: number }) => {
    viewRef.current = update(viewRef.current);
    if (!pending.current) pending.current = requestAnimationFrame(() => ((pending.current = 0), draw()));
  };
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const gl = useRef<{ ctx: WebGLRenderingContext; prog: WebGLProgram } | null>(null);
  const legend = useMemo(() => {
    const counts = new Map<string, number>();
    data.values.forEach((v) => counts.set(v, (counts.get(v) ?? 0) + 1));
    return [...counts.entries()].sort((a, b) => b[1] - a[1]);
  }, [data]);
  // points in [-1, 1] (the map's bounding square), so the view is a centre and a zoom
  const unit = useMemo(() => {
    const out = new Float32Array(data.xy.length);
    const { minx, miny, span } = data.bounds;
    for (let i = 0; i < data.ids.length; i++) {
      out[2 * i] = ((data.xy[2 * i] - minx) / span) * 2 - 1;
      out[2 * i + 1] = ((data.xy[2 * i + 1] - miny) / span) * 2 - 1;
    }
    return out;
  }, [data]);
  const scale = (el: HTMLCanvasElement) => [(0.92 * viewRef.current.zoom * Math.min(el.width, el.height)) / el.width, (0.92 * viewRef.current.zoom * Math.min(el.width, el.height)) / el.height];
  useEffect(() => {
    const ctx = canvas.current!.getContext("webgl", { antialias: false })!;
    const shader = (kind: number, src: string) => {
      const s = ctx.createShader(kind)!;
      ctx.shaderSource(s, src);
      ctx.compileShader(s);
      return s;
    };
    const prog = ctx.createProgram()!;
    ctx.attachShader(prog, shader(ctx.VERTEX_SHADER, VERTEX));
    ctx.attachShader(prog, shader(ctx.FRAGMENT_SHADER, FRAGMENT));
    ctx.linkProgram(prog);
    ctx.useProgram(prog);
    const attribute = (name: string, values: Float32Array, size: number) => {
      ctx.bindBuffer(ctx.ARRAY_BUFFER, ctx.createBuffer());
      ctx.bufferData(ctx.ARRAY_BUFFER, values, ctx.STATIC_DRAW);
      const at = ctx.getAttribLocation(prog, name);
      ctx.enableVertexAttribArray(at);
      ctx.vertexAttribPointer(at, size, ctx.FLOAT, false, 0, 0);
    };
    attribute("p", unit, 2);
    const palette = new Map(legend.map(([v]) => [v, rgb(colour(v))]));
    const colours = new Float32Array(data.ids.length * 3);
    data.values.forEach((v, i) => colours.set(palette.get(v)!, 3 * i));
    attribute("c", colours, 3);
    gl.current = { ctx, prog };
    draw();
  }, [data]);
  function draw() {
    const g = gl.current;
    if (!g) return;
    const el = canvas.current!;
    const view = viewRef.current;
    el.dataset.view = JSON.stringify({ ...data.bounds, ...view }); // the transform, for tests and tools
    const { ctx, prog } = g;
    ctx.viewport(0, 0, el.width, el.height);
    ctx.clearColor(0.07, 0.08, 0.1, 1);
    ctx.clear(ctx.COLOR_BUFFER_BIT);
    ctx.uniform2f(ctx.getUniformLocation(prog, "centre"), view.cx, view.cy);
    const [sx, sy] = scale(el);
    ctx.uniform2f(ctx.getUniformLocation(prog, "scale"), sx, sy);
    ctx.drawArrays(ctx.POINTS, 0, data.ids.length);
  }

  // screen (CSS px inside the canvas) of map point i, for the lasso
  const toScreen = (i: number, el: HTMLCanvasElement, rect: DOMRect) => {
    const [sx, sy] = scale(el);
    const x = (unit[2 * i] - viewRef.current.cx) * sx;
    const y = (unit[2 * i + 1] - viewRef.current.cy) * sy;
    return [((x + 1) / 2) * rect.width, ((1 - y) / 2) * rect.height];
  };
  const drag = useRef<{ x: number; y: number; lasso: [number, number][] | null } | null>(null);
  const local = (e: MouseEvent): [number, number] => {
    const r = canvas.current!.getBoundingClientRect();
    return [e.clientX - r.left, e.clientY - r.top];
  };
  const drawLasso = (path: [number, number][] | null) => {
    const o = overlay.current!;
    const c2 = o.getContext("2d")!;
    c2.clearRect(0, 0, o.width, o.height);
    if (!path || path.length < 2) return;
    const r = o.getBoundingClientRect();
    c2.save();
    c2.scale(o.width / r.width, o.height / r.height);
    c2.strokeStyle = "#ffcc33";
    c2.lineWidth = 2;
    c2.beginPath();
    path.forEach(([x, y], k) => (k ? c2.lineTo(x, y) : c2.moveTo(x, y)));
    c2.closePath();
    c2.stroke();
    c2.restore();
  };
  function finishLasso(path: [number, number][]) {
    const el = canvas.current!;
    const rect = el.getBoundingClientRect();
    const inside = new Set<string>();
    for (let i = 0; i < data.ids.length; i++) {
      const [px, py] = toScreen(i, el, rect);
      let hit = false; // even-odd rule
      for (let a = 0, b = path.length - 1; a < path.length; b = a++) {
        const [xa, ya] = path[a];
        const [xb, yb] = path[b];
        if (ya > py !== yb > py && px < ((xb - xa) * (py - ya)) / (yb - ya) + xa) hit = !hit;
      }
      if (hit) inside.add(data.ids[i]);
    }
    setSelected(inside);
  }
  const picked = [...selected];
  return (
    <div class="mapbody">
      <div class="mapstage">
        <canvas
          ref={canvas}
          width={1000}
          height={700}
          class="map"
          data-testid="embedding-map"
          data-points={data.ids.length}
          onMouseLeave={(e) => drag.current && !drag.current.lasso && (e.currentTarget as any).dispatchEvent(new MouseEvent("mouseup", e))}
          onMouseDown={(e) => {
            drag.current = { x: e.clientX, y: e.clientY, lasso: e.shiftKey ? [local(e)] : null };
          }}
          onMouseMove={(e) => {
            const d = drag.current;
            if (!d) return;
            if (d.lasso) {
              d.lasso.push(local(e));
              drawLasso(d.lasso);
              return;
            }
            // while dragging, the drawn map just moves (a compositor transform, whatever the number of points);
            // it is drawn again from the new view when the drag ends
            canvas.current!.style.transform = `translate(${e.clientX - d.x}px, ${e.clientY - d.y}px)`;
          }}
          onMouseUp={(e) => {
            const d = drag.current;
            drag.current = null;
            if (d?.lasso && d.lasso.length > 2) finishLasso(d.lasso);
            drawLasso(null);
            if (d && !d.lasso) {
              const el = canvas.current!;
              const r = el.getBoundingClientRect();
              const [sx, sy] = scale(el);
              const dx = ((e.clientX - d.x) / r.width) * 2;
              const dy = ((e.clientY - d.y) / r.height) * 2;
              el.style.transform = "";
              setView((v) => ({ ...v, cx: v.cx - dx / sx, cy: v.cy + dy / sy }));
            }
          }}
          onWheel={(e) => {
            e.preventDefault();
            setView((v) => ({ ...v, zoom: Math.max(0.2, Math.min(200, v.zoom * Math.exp(-e.deltaY * 0.002))) }));
          }}
        />
        <canvas ref={overlay} width={1000} height={700} class="lasso" />
      </div>
      <aside>
        <p data-testid="map-count">
          {data.ids.length.toLocaleString()} {type} · {selected.size} selected
        </p>
        <ul class="legend" data-testid="legend">
          {legend.slice(0, 20).map(([v, n]) => (
            <li key={v} data-value={v}>
              <span class="swatch" style={{ background: colour(v) }} /> {v || "(none)"} <span class="muted">{n}</span>
            </li>
          ))}
        </ul>
        <SelectionBar type={type} selected={selected} clear={() => setSelected(new Set())} />
        <div class="nearest" data-testid="lasso-thumbnails">
          {picked.slice(0, 24).map((id) => (
            <a key={id} href={`/app/images?image=${encodeURIComponent(id)}`} data-id={id}>
              <img src={thumb(type, id, "tiny")} alt={id} />
            </a>
          ))}
        </div>
      </aside>
    </div>
  );
}
