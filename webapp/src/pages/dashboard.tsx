import { api, type Doc, type JobDocument } from "../api";
import { Show, useLoad, when } from "../ui";
import { JobRow } from "./jobs";

const TYPES = ["images", "videos", "lidars", "sessions", "annotations", "objects", "sets"];

async function loadDashboard() {
  const counts = await Promise.all(
    TYPES.map((t) => api<{ count: number }>("POST", `/v1/${t}/count/`, {}).then((r) => [t, r.count] as const)),
  );
  const recent = (type: string) =>
    api<Doc[]>("POST", `/v1/${type}/meta/?size=8&sort_field=created_at&sort_order=desc`, {});
  const [sets, sessions, running, failed] = await Promise.all([
    recent("sets"),
    recent("sessions"),
    api<JobDocument[]>("GET", "/v1/jobs/?status=running&limit=20"),
    // a job that stopped on an error is "aborted" (FACTS 8); "failed" is kept for other servers' vocabulary
    Promise.all(["aborted", "failed"].map((st) => api<JobDocument[]>("GET", `/v1/jobs/?status=${st}&limit=20`))),
  ]);
  return { counts, sets, sessions, running, failed: failed.flat() };
}

/** The organization's overview. scenebase has one dashboard: a named one (`display_dashboard(name)`) shows the same
 * overview under its name. */
export function Dashboard({ name }: { name?: string | null }) {
  const loaded = useLoad(loadDashboard, []);
  return (
    <Show loaded={loaded}>
      {(d) => (
        <div class="dashboard">
          <h1 data-testid="dashboard-title">{name ? `Dashboard: ${name}` : "Dashboard"}</h1>
          <div class="cards">
            {d.counts.map(([t, n]) => (
              <div class="card" key={t} data-testid={`count-${t}`}>
                <div class="big">{n.toLocaleString()}</div>
                <div>{t}</div>
              </div>
            ))}
          </div>
          <div class="columns">
            <section>
              <h2>Recent sets</h2>
              <ul data-testid="recent-sets">
                {d.sets.map((s) => (
                  <li key={s.id}>
                    <a href={`/app/sets?set=${encodeURIComponent(s.id)}`}>{s.name}</a>{" "}
                    <span class="muted">
                      {s.assets_type} · {when(s.created_at)}
                    </span>
                  </li>
                ))}
              </ul>
              <h2>Recent sessions</h2>
              <ul data-testid="recent-sessions">
                {d.sessions.map((s) => (
                  <li key={s.id}>
                    <a href={`/app/sessions?session_uid=${encodeURIComponent(s.id)}`}>{s.session_name}</a>{" "}
                    <span class="muted">{when(s.start_time)}</span>
                  </li>
                ))}
              </ul>
            </section>
            <section>
              <h2>Running jobs</h2>
              {d.running.length ? d.running.map((j) => <JobRow job={j} key={j.id} />) : <p class="muted">None.</p>}
              <h2>Failed jobs</h2>
              {d.failed.length ? d.failed.map((j) => <JobRow job={j} key={j.id} />) : <p class="muted">None.</p>}
            </section>
          </div>
        </div>
      )}
    </Show>
  );
}
