import { useMemo, useState } from "preact/hooks";
import { api, file, mediaUrl, thumb, type Doc } from "../api";
import { Meta, Problem, Show, colour, useLoad } from "../ui";

type Shape = { key: string; provider: string; group: string; type: string; label: string; confidence: number | null; entity: Doc; annotationId: string };

async function loadImage(type: string, id: string) {
  const doc = await api<Doc>("GET", `/v1/${type}/meta/${encodeURIComponent(id)}`);
  const annotations =
    type === "images" ? await api<Doc[]>("POST", "/v1/annotations/meta/?size=1000", { filters: [{ field: "asset_id", values: [doc.id] }] }) : [];
  return { doc, annotations };
}

function shapesOf(annotations: Doc[]): Shape[] {
  const out: Shape[] = [];
  for (const a of annotations)
    (a.annotation_entities ?? []).forEach((e: Doc, k: number) =>
      out.push({
        key: `${a.id}/${k}`,
        provider: a.provider,
        group: a.annotation_group ?? "",
        type: e.annotation_type ?? a.annotation_type,
        label: String(e.label ?? ""),
        confidence: typeof e.confidence === "number" ? e.confidence : null,
        entity: e,
        annotationId: a.id,
      }),
    );
  return out;
}

const DIMENSIONS = ["provider", "group", "type", "label"] as const;

export function ImagePage({ type, id }: { type: string; id: string | null }) {
  if (!id) return <Problem text={`No ${type === "images" ? "image" : "object"} id in the URL (?${type === "images" ? "image" : "object"}=<id>).`} />;
  const loaded = useLoad(() => loadImage(type, id), [type, id]);
  return <Show loaded={loaded}>{({ doc, annotations }) => <ImageView type={type} doc={doc} annotations={annotations} />}</Show>;
}

function ImageView({ type, doc, annotations }: { type: string; doc: Doc; annotations: Doc[] }) {
  const shapes = useMemo(() => shapesOf(annotations), [annotations]);
  const [hidden, setHidden] = useState<Set<string>>(new Set()); // "provider:p1", "label:car", ...
  const [threshold, setThreshold] = useState(0);
  const values = (dim: (typeof DIMENSIONS)[number]) => [...new Set(shapes.map((s) => s[dim]))].sort();
  const visible = shapes.filter((s) => DIMENSIONS.every((d) => !hidden.has(`${d}:${s[d]}`)) && (s.confidence === null || s.confidence >= threshold));
  const toggle = (k: string) => {
    const next = new Set(hidden);
    if (next.has(k)) next.delete(k);
    else next.add(k);
    setHidden(next);
  };
  const w = doc.width ?? 1;
  const h = doc.height ?? 1;
  return (
    <div class="imagepage">
      <div class="stage">
        <h1>{doc.id}</h1>
        {type === "objects" && doc.asset_id && (
          <p>
            {doc.label} from <a href={`/app/images?image=${encodeURIComponent(doc.asset_id)}`} data-testid="parent-image">{doc.asset_id}</a>
          </p>
        )}
        <div class="frame" style={{ aspectRatio: `${w} / ${h}` }}>
          {/* an object is a crop of its image: no file of its own, its full-size crop is a rendition */}
          <img src={type === "objects" ? thumb(type, doc.id, "full_size_png") : file(type, doc.id)} alt={doc.id} data-testid="full-image" />
          <svg viewBox={`0 0 ${w} ${h}`} data-testid="overlays" preserveAspectRatio="none">
            <defs>
              {[...new Set(visible.map((s) => s.label))].map((label) => (
                <filter id={`tint-${slug(label)}`} key={label}>
                  <feColorMatrix in="SourceGraphic" type="luminanceToAlpha" result="alpha" />
                  <feFlood flood-color={colour(label)} />
                  <feComposite in2="alpha" operator="in" />
                </filter>
              ))}
            </defs>
            {visible.map((s) => (
              <ShapeView key={s.key} s={s} r={Math.max(w, h) / 200} />
            ))}
          </svg>
        </div>
        <Similar type={type} doc={doc} />
      </div>
      <aside>
        {shapes.length > 0 && (
          <div class="toggles" data-testid="overlay-toggles">
            {DIMENSIONS.map((d) => (
              <fieldset key={d}>
                <legend>{d}</legend>
                {values(d).map((v) => (
                  <label key={v}>
                    <input type="checkbox" checked={!hidden.has(`${d}:${v}`)} onChange={() => toggle(`${d}:${v}`)} data-toggle={`${d}:${v}`} />
                    <span style={{ color: d === "label" ? colour(v) : undefined }}>{v || "(none)"}</span>
                  </label>
                ))}
              </fieldset>
            ))}
            <label>
              confidence ≥ {threshold.toFixed(2)}
              <input type="range" min={0} max={1} step={0.01} value={threshold} name="confidence" onInput={(e) => setThreshold(Number(e.currentTarget.value))} />
            </label>
            <p class="muted">
              {visible.length} of {shapes.length} shapes shown
            </p>
          </div>
        )}
        <Meta doc={doc} />
      </aside>
    </div>
  );
}

/** The most similar images in each embedding space the image has a vector in (doc.embeddings: space -> id). */
function Similar({ type, doc }: { type: string; doc: Doc }) {
  const spaces = Object.keys(doc.embeddings ?? {});
  const [space, setSpace] = useState(spaces[0]);
  const similar = useLoad(
    () =>
      space ? api<string[][]>("POST", "/v1/similarity_search/similarity_search/", { ids: [doc.id], similar_asset_count: 12, index_name: space, asset_type: type }) : Promise.resolve([[]]),
    [doc.id, space],
  );
  if (!spaces.length) return null;
  return (
    <section class="similar">
      <h2>
        Similar in{" "}
        <select name="similar-space" value={space} onChange={(e) => setSpace(e.currentTarget.value)}>
          {spaces.map((sp) => (
            <option key={sp}>{sp}</option>
          ))}
        </select>
      </h2>
      <Show loaded={similar}>
        {([ids]) => (
          <div class="strip" data-testid="similar">
            {(ids ?? []).map((id) => (
              <a key={id} href={`/app/${type}?${type === "images" ? "image" : "object"}=${encodeURIComponent(id)}`} data-id={id}>
                <img src={thumb(type, id, "tiny")} alt={id} />
              </a>
            ))}
          </div>
        )}
      </Show>
    </section>
  );
}

const slug = (s: string) => s.replace(/[^a-zA-Z0-9_-]/g, "_");

function ShapeView({ s, r }: { s: Shape; r: number }) {
  const e = s.entity;
  const c = colour(s.label);
  const pts: Doc[] = e.coordinates ?? [];
  const common = { "data-label": s.label, "data-provider": s.provider, "data-type": s.type, class: "shape" } as any;
  const title = <title>{`${s.label} (${s.provider}${s.confidence !== null ? `, ${s.confidence}` : ""})`}</title>;
  if (s.type === "two_d_bounding_box" && pts.length) {
    const xs = pts.map((p) => p.x);
    const ys = pts.map((p) => p.y);
    const x = Math.min(...xs);
    const y = Math.min(...ys);
    return (
      <rect {...common} x={x} y={y} width={Math.max(...xs) - x} height={Math.max(...ys) - y} stroke={c} fill="none" stroke-width={2} vector-effect="non-scaling-stroke">
        {title}
      </rect>
    );
  }
  if (s.type === "segmentation" && e.mask_id) {
    return (
      <image {...common} href={mediaUrl(`/v1/annotations/${encodeURIComponent(s.annotationId)}/masks/${encodeURIComponent(e.mask_id)}`)} x={0} y={0} width="100%" height="100%" opacity={0.45} filter={`url(#tint-${slug(s.label)})`} style={{ mixBlendMode: "normal" }}>
        {title}
      </image>
    );
  }
  if ((s.type === "polygon" || s.type === "polyline" || s.type === "line") && pts.length) {
    const points = pts.map((p) => `${p.x},${p.y}`).join(" ");
    return s.type === "polygon" ? (
      <polygon {...common} points={points} stroke={c} fill={c} fill-opacity={0.2} vector-effect="non-scaling-stroke">
        {title}
      </polygon>
    ) : (
      <polyline {...common} points={points} stroke={c} fill="none" stroke-width={2} vector-effect="non-scaling-stroke">
        {title}
      </polyline>
    );
  }
  if (s.type === "ellipse" && e.ellipse) {
    const el = e.ellipse;
    return (
      <ellipse {...common} cx={el.centre_x} cy={el.centre_y} rx={el.radius_x} ry={el.radius_y} transform={`rotate(${el.rotation ?? 0} ${el.centre_x} ${el.centre_y})`} stroke={c} fill="none" stroke-width={2} vector-effect="non-scaling-stroke">
        {title}
      </ellipse>
    );
  }
  if (s.type === "two_d_cuboid" && pts.length >= 8) {
    // front face, back face, and the edges between them
    const face = (ps: Doc[]) => ps.map((p) => `${p.x},${p.y}`).join(" ");
    return (
      <g {...common} stroke={c} fill="none" stroke-width={2}>
        {title}
        <polygon points={face(pts.slice(0, 4))} vector-effect="non-scaling-stroke" />
        <polygon points={face(pts.slice(4, 8))} vector-effect="non-scaling-stroke" />
        {[0, 1, 2, 3].map((k) => (
          <line key={k} x1={pts[k].x} y1={pts[k].y} x2={pts[k + 4].x} y2={pts[k + 4].y} vector-effect="non-scaling-stroke" />
        ))}
      </g>
    );
  }
  // points, and poses: keypoints (those with visibility 0 are not labelled: not drawn) and their skeleton
  const keypoints: Doc[] = e.keypoints ?? (s.type === "point" ? [{ left: e.left ?? pts[0]?.x, top: e.top ?? pts[0]?.y }] : []);
  const shown = (k: Doc) => k && k.attributes?.visibility !== 0 && k.left !== undefined;
  if (keypoints.length) {
    return (
      <g {...common}>
        {title}
        {(e.connections ?? []).map((cn: Doc, i: number) => {
          const a = keypoints[cn.start_index];
          const b = keypoints[cn.end_index];
          return shown(a) && shown(b) ? <line key={`c${i}`} x1={a.left} y1={a.top} x2={b.left} y2={b.top} stroke={c} stroke-width={2} vector-effect="non-scaling-stroke" /> : null;
        })}
        {keypoints.map((k, i) => (shown(k) ? <circle key={i} cx={k.left} cy={k.top} r={r} fill={c} data-x={k.left} data-y={k.top} /> : null))}
      </g>
    );
  }
  return null;
}
