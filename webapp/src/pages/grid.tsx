import { useEffect, useRef, useState } from "preact/hooks";
import { thumb } from "../api";
import { PAGE_PARAM } from "./sets";

const CELL = 140; // px, square cells (132 px thumbnails)
const OVERSCAN = 2; // rows above and below the viewport

/** A virtualized thumbnail grid: only the rows in view (plus a few) are in the DOM, so 100,000 ids scroll as
 * smoothly as 100; images load as their rows come into view. */
export function Grid(props: { type: string; ids: string[]; selected: Set<string>; onToggle: (id: string) => void; onSettled?: () => void }) {
  const { type, ids, selected, onToggle } = props;
  const box = useRef<HTMLDivElement>(null);
  // "settled": the thumbnails in view have loaded (or 1.5 s passed): the page then loads what can wait
  const loadedImages = useRef(0);
  const settled = useRef(false);
  const settle = () => {
    if (!settled.current) {
      settled.current = true;
      props.onSettled?.();
    }
  };
  useEffect(() => {
    const t = setTimeout(settle, 1500);
    return () => clearTimeout(t);
  }, []);
  const [view, setView] = useState({ top: 0, height: 800, width: 1000 });
  useEffect(() => {
    const el = box.current!;
    const measure = () => setView({ top: el.scrollTop, height: el.clientHeight, width: el.clientWidth });
    measure();
    let frame = 0;
    const onScroll = () => {
      if (!frame) frame = requestAnimationFrame(() => ((frame = 0), measure()));
    };
    el.addEventListener("scroll", onScroll, { passive: true });
    window.addEventListener("resize", measure);
    return () => {
      el.removeEventListener("scroll", onScroll);
      window.removeEventListener("resize", measure);
    };
  }, []);
  const columns = Math.max(1, Math.floor(view.width / CELL));
  const rows = Math.ceil(ids.length / columns);
  const first = Math.max(0, Math.floor(view.top / CELL) - OVERSCAN);
  const last = Math.min(rows, Math.ceil((view.top + view.height) / CELL) + OVERSCAN);
  const inView = Math.min(ids.length, columns * Math.max(1, Math.floor(view.height / CELL)));
  if (inView === 0 || type !== "images") setTimeout(settle, 0);
  const onLoad = () => {
    loadedImages.current += 1;
    if (loadedImages.current >= inView) settle();
  };
  const cells = [];
  for (let r = first; r < last; r++) {
    for (let c = 0; c < columns; c++) {
      const k = r * columns + c;
      if (k >= ids.length) break;
      const id = ids[k];
      cells.push(
        <div class={`cell${selected.has(id) ? " selected" : ""}`} key={id} style={{ top: r * CELL, left: c * CELL }} data-id={id}>
          <a href={`/app/${PAGE_PARAM[type] ?? `${type}?id=`}${encodeURIComponent(id)}`} title={id}>
            {type === "images" || type === "objects" ? <img src={thumb(type, id)} alt={id} decoding="async" onLoad={onLoad} onError={onLoad} /> : <span class="tile">{id}</span>}
          </a>
          <input type="checkbox" class="pick" checked={selected.has(id)} onChange={() => onToggle(id)} aria-label={`select ${id}`} />
        </div>,
      );
    }
  }
  return (
    <div class="grid" ref={box} data-testid="grid" data-total={ids.length}>
      <div style={{ height: rows * CELL, position: "relative" }}>{cells}</div>
    </div>
  );
}
