import { useEffect, useRef, useState } from "preact/hooks";
import { api, mediaUrl, type Doc } from "../api";
import { Meta, Problem, Show, useLoad } from "../ui";

/** A decoded rendition (src/scenebase/media/pointcloud_rendition.py): n points of float32 x, y, z, c. */
type Cloud = { n: number; skip: number; column4: number; points: Float32Array; colours: Uint32Array };

export function parseRendition(buf: ArrayBuffer): Cloud {
  const view = new DataView(buf);
  const magic = String.fromCharCode(...new Uint8Array(buf, 0, 4));
  if (magic !== "SBPC") throw new Error(`not a point-cloud rendition (magic ${JSON.stringify(magic)})`);
  const n = view.getUint32(8, true);
  if (buf.byteLength < 16 + 16 * n) throw new Error(`rendition truncated: ${n} points need ${16 + 16 * n} bytes, got ${buf.byteLength}`);
  return { n, skip: view.getUint32(12, true), column4: view.getUint8(5), points: new Float32Array(buf, 16, 4 * n), colours: new Uint32Array(buf, 16, 4 * n) };
}

async function loadLidar(id: string) {
  const doc = await api<Doc>("GET", `/v1/lidars/meta/${encodeURIComponent(id)}`);
  const tags = Object.keys(doc.thumbnails ?? {}).filter((t) => t.startsWith("skip_"));
  // the densest stored rendition up to ~1M points; the server makes skip_10 on demand when none is stored
  const finite = doc.finite_points ?? doc.num_points ?? 0;
  const pick = tags.map((t) => Number(t.slice(5))).sort((a, b) => a - b).find((s) => finite / s <= 1_000_000) ?? 10;
  const resp = await fetch(mediaUrl(`/v1/lidars/${encodeURIComponent(doc.id)}/thumbnail/skip_${pick}`));
  if (!resp.ok) throw new Error(`rendition skip_${pick} of ${doc.id}: HTTP ${resp.status} ${await resp.text()}`);
  return { doc, cloud: parseRendition(await resp.arrayBuffer()) };
}

export function LidarPage({ id }: { id: string | null }) {
  if (!id) return <Problem text="No LIDAR id in the URL (?lidar=<id>)." />;
  const loaded = useLoad(() => loadLidar(id), [id]);
  return (
    <Show loaded={loaded}>
      {({ doc, cloud }) => (
        <div class="imagepage">
          <div class="stage">
            <h1>{doc.id}</h1>
            <PointCloud cloud={cloud} />
          </div>
          <aside>
            <Meta doc={doc} />
          </aside>
        </div>
      )}
    </Show>
  );
}

const VERTEX = `attribute vec3 p; attribute vec3 c; uniform mat4 m; uniform float size; varying vec3 v;
void main() { gl_Position = m * vec4(p, 1.0); gl_PointSize = size; v = c; }`;
const FRAGMENT = `precision mediump float; varying vec3 v; void main() { gl_FragColor = vec4(v, 1.0); }`;

function colours(cloud: Cloud, mode: string): Float32Array {
  const out = new Float32Array(cloud.n * 3);
  const { points, colours: bits } = cloud;
  let lo = Infinity;
  let hi = -Infinity;
  const value = (i: number) => (mode === "height" ? points[4 * i + 2] : points[4 * i + 3]);
  for (let i = 0; i < cloud.n; i++) {
    const v = value(i);
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  for (let i = 0; i < cloud.n; i++) {
    if (mode === "rgb") {
      const b = bits[4 * i + 3];
      out.set([((b >> 16) & 255) / 255, ((b >> 8) & 255) / 255, (b & 255) / 255], 3 * i);
    } else {
      const t = hi > lo ? (value(i) - lo) / (hi - lo) : 0.5; // blue (low) to red (high)
      out.set([Math.min(1, 2 * t), 1 - Math.abs(2 * t - 1), Math.min(1, 2 - 2 * t) * (1 - t)], 3 * i);
    }
  }
  return out;
}

function PointCloud({ cloud }: { cloud: Cloud }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const modes = ["height", ...(cloud.column4 === 1 ? ["intensity"] : []), ...(cloud.column4 === 2 ? ["rgb"] : [])];
  const [mode, setMode] = useState(modes[0]);
  const [camera, setCamera] = useState({ yaw: 0.6, pitch: 0.5, zoom: 1 });
  const gl = useRef<{ ctx: WebGLRenderingContext; prog: WebGLProgram; colour: WebGLBuffer; centre: number[]; radius: number } | null>(null);
  useEffect(() => {
    const ctx = canvas.current!.getContext("webgl", { antialias: false, preserveDrawingBuffer: true }) // kept: tests read the pixels back;
    if (!ctx) return;
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
    const xyz = new Float32Array(cloud.n * 3);
    const lo = [Infinity, Infinity, Infinity];
    const hi = [-Infinity, -Infinity, -Infinity];
    for (let i = 0; i < cloud.n; i++)
      for (let a = 0; a < 3; a++) {
        const v = cloud.points[4 * i + a];
        xyz[3 * i + a] = v;
        lo[a] = Math.min(lo[a], v);
        hi[a] = Math.max(hi[a], v);
      }
    const buffer = ctx.createBuffer()!;
    ctx.bindBuffer(ctx.ARRAY_BUFFER, buffer);
    ctx.bufferData(ctx.ARRAY_BUFFER, xyz, ctx.STATIC_DRAW);
    const p = ctx.getAttribLocation(prog, "p");
    ctx.enableVertexAttribArray(p);
    ctx.vertexAttribPointer(p, 3, ctx.FLOAT, false, 0, 0);
    const colour = ctx.createBuffer()!;
    const centre = lo.map((l, a) => (l + hi[a]) / 2);
    const radius = Math.max(1e-6, ...hi.map((h, a) => (h - lo[a]) / 2));
    gl.current = { ctx, prog, colour, centre, radius };
  }, [cloud]);
  useEffect(() => {
    const g = gl.current;
    if (!g) return;
    const { ctx, prog } = g;
    ctx.bindBuffer(ctx.ARRAY_BUFFER, g.colour);
    ctx.bufferData(ctx.ARRAY_BUFFER, colours(cloud, mode), ctx.STATIC_DRAW);
    const c = ctx.getAttribLocation(prog, "c");
    ctx.enableVertexAttribArray(c);
    ctx.vertexAttribPointer(c, 3, ctx.FLOAT, false, 0, 0);
  }, [cloud, mode]);
  useEffect(() => {
    const g = gl.current;
    if (!g) return;
    const { ctx, prog, centre, radius } = g;
    const el = canvas.current!;
    ctx.viewport(0, 0, el.width, el.height);
    ctx.clearColor(0.07, 0.08, 0.1, 1);
    ctx.clear(ctx.COLOR_BUFFER_BIT);
    // orthographic view: rotate about z (yaw) then tilt (pitch), scale the cloud into the unit cube
    const s = camera.zoom / radius;
    const cy = Math.cos(camera.yaw), sy = Math.sin(camera.yaw), cp = Math.cos(camera.pitch), sp = Math.sin(camera.pitch);
    const aspect = el.height / el.width;
    const r = [cy * aspect, sy * cp, sy * sp * 0.1, -sy * aspect, cy * cp, cy * sp * 0.1, 0, sp, -cp * 0.1];
    const t = [0, 1, 2].map((row) => -(r[row] * centre[0] + r[3 + row] * centre[1] + r[6 + row] * centre[2]) * s);
    const m = new Float32Array([r[0] * s, r[1] * s, r[2] * s, 0, r[3] * s, r[4] * s, r[5] * s, 0, r[6] * s, r[7] * s, r[8] * s, 0, t[0], t[1], t[2], 1]);
    ctx.uniformMatrix4fv(ctx.getUniformLocation(prog, "m"), false, m);
    ctx.uniform1f(ctx.getUniformLocation(prog, "size"), 2);
    ctx.drawArrays(ctx.POINTS, 0, cloud.n);
  }, [cloud, mode, camera]);
  const drag = useRef<{ x: number; y: number } | null>(null);
  return (
    <div>
      <canvas
        ref={canvas}
        width={960}
        height={600}
        class="cloud"
        data-testid="pointcloud"
        data-points={cloud.n}
        data-skip={cloud.skip}
        onMouseDown={(e) => (drag.current = { x: e.clientX, y: e.clientY })}
        onMouseUp={() => (drag.current = null)}
        onMouseLeave={() => (drag.current = null)}
        onMouseMove={(e) => {
          if (!drag.current) return;
          const dx = e.clientX - drag.current.x;
          const dy = e.clientY - drag.current.y;
          drag.current = { x: e.clientX, y: e.clientY };
          setCamera((c) => ({ ...c, yaw: c.yaw + dx * 0.01, pitch: Math.max(-1.5, Math.min(1.5, c.pitch + dy * 0.01)) }));
        }}
        onWheel={(e) => {
          e.preventDefault();
          setCamera((c) => ({ ...c, zoom: Math.max(0.1, Math.min(50, c.zoom * Math.exp(-e.deltaY * 0.001))) }));
        }}
      />
      <p>
        {cloud.n.toLocaleString()} points (every {cloud.skip}
        {cloud.skip === 1 ? "st" : "th"} point) · colour by{" "}
        <select value={mode} onChange={(e) => setMode(e.currentTarget.value)} name="colour">
          {modes.map((m) => (
            <option key={m}>{m}</option>
          ))}
        </select>{" "}
        · drag to turn, wheel to zoom
      </p>
    </div>
  );
}
