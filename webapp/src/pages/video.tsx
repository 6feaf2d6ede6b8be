import { useRef, useState } from "preact/hooks";
import { api, file, mediaUrl, type Doc } from "../api";
import { Meta, Problem, Show, useLoad } from "../ui";

export function VideoPage({ id }: { id: string | null }) {
  if (!id) return <Problem text="No video id in the URL (?video=<id>)." />;
  const loaded = useLoad(() => api<Doc>("GET", `/v1/videos/meta/${encodeURIComponent(id)}`), [id]);
  return <Show loaded={loaded}>{(doc) => <VideoView doc={doc} />}</Show>;
}

function VideoView({ doc }: { doc: Doc }) {
  const renditions = Object.keys(doc.thumbnails ?? {}).filter((t) => t.startsWith("video_"));
  const [source, setSource] = useState("original");
  const [time, setTime] = useState(0);
  const player = useRef<HTMLVideoElement>(null);
  const duration = Number(doc.duration ?? doc.length ?? 0);
  const src = source === "original" ? file("videos", doc.id) : mediaUrl(`/v1/videos/${encodeURIComponent(doc.id)}/rendition/${source}`);
  const seek = (t: number) => {
    if (player.current) player.current.currentTime = Math.max(0, Math.min(t, duration || t));
  };
  return (
    <div class="imagepage">
      <div class="stage">
        <h1>{doc.id}</h1>
        <video ref={player} src={src} controls preload="metadata" data-testid="video" onTimeUpdate={(e) => setTime(e.currentTarget.currentTime)} />
        <div class="seek">
          <button onClick={() => seek((player.current?.currentTime ?? time) - 1)}>−1 s</button>
          <input type="range" min={0} max={duration || 1} step={0.04} value={time} name="seek" onInput={(e) => seek(Number(e.currentTarget.value))} />
          <button onClick={() => seek((player.current?.currentTime ?? time) + 1)}>+1 s</button>
          <span data-testid="video-time">
            {time.toFixed(2)} / {duration.toFixed(2)} s
          </span>
          <select value={source} onChange={(e) => setSource(e.currentTarget.value)} name="rendition">
            <option value="original">original</option>
            {renditions.map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
        </div>
      </div>
      <aside>
        <Meta doc={doc} />
      </aside>
    </div>
  );
}
