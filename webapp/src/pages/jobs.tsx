import { useEffect, useState } from "preact/hooks";
import { api, type JobDocument } from "../api";
import { Show, useLoad, when } from "../ui";

function state(job: JobDocument): string {
  if (job.status === "failed" || job.status === "aborted") return "failed";
  if (job.partial || (job.failed_count ?? 0) > 0) return "partial";
  return String(job.status);
}

export function JobRow({ job }: { job: JobDocument }) {
  return (
    <div class={`job ${state(job)}`} data-testid="job-row" data-status={job.status}>
      <a href={`/app/jobs?job=${encodeURIComponent(job.id)}`}>{job.job_type}</a>
      <span class="muted">{job.description}</span>
      <progress max={100} value={job.progress ?? 0} />
      <span>{state(job)}</span>
      <span class="muted">{job.stage}</span>
    </div>
  );
}

export function JobsList() {
  const [status, setStatus] = useState(new URLSearchParams(location.search).get("status") ?? "");
  const loaded = useLoad(() => api<JobDocument[]>("GET", `/v1/jobs/?limit=200${status ? `&status=${status}` : ""}`), [status]);
  useEffect(() => {
    const t = setInterval(loaded.reload, 3000); // progress of running jobs
    return () => clearInterval(t);
  }, [status]);
  return (
    <div>
      <h1>Jobs</h1>
      <label>
        Status{" "}
        <select
          value={status}
          onChange={(e) => {
            setStatus(e.currentTarget.value);
            history.replaceState(null, "", e.currentTarget.value ? `?status=${e.currentTarget.value}` : "?");
          }}
        >
          {["", "queued", "running", "finished", "failed", "aborted", "cancelled"].map((s) => (
            <option value={s} key={s}>
              {s || "any"}
            </option>
          ))}
        </select>
      </label>
      <Show loaded={loaded}>
        {(jobs) => <div data-testid="jobs">{jobs.length ? jobs.map((j) => <JobRow job={j} key={j.id} />) : <p>No jobs.</p>}</div>}
      </Show>
    </div>
  );
}

export function JobPage({ id }: { id: string }) {
  const loaded = useLoad(() => api<JobDocument>("GET", `/v1/jobs/${encodeURIComponent(id)}`), [id]);
  useEffect(() => {
    const t = setInterval(() => {
      if (loaded.data && ["queued", "running"].includes(String(loaded.data.status))) loaded.reload();
    }, 2000);
    return () => clearInterval(t);
  }, [id, loaded.data?.status]);
  return (
    <Show loaded={loaded}>
      {(job) => (
        <div class={`jobpage ${state(job)}`} data-testid="job">
          <h1>
            Job {job.job_type} <span class="muted">{job.id}</span>
          </h1>
          <p>
            <b data-testid="job-status">{state(job)}</b> · stage {job.stage} · created {when(job.created_at)} · finished{" "}
            {when(job.finished_at)}
          </p>
          <progress max={100} value={job.progress ?? 0} /> {Math.round(job.progress ?? 0)} %
          <p>{job.description}</p>
          <h2>Notes</h2>
          <ul data-testid="job-notes">
            {(job.notes ?? []).map((n: any, k: number) => (
              <li key={k}>{typeof n === "string" ? n : JSON.stringify(n)}</li>
            ))}
          </ul>
          <h2>Result</h2>
          <pre>{JSON.stringify(job.result, null, 1)}</pre>
        </div>
      )}
    </Show>
  );
}
